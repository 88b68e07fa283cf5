// fuzz_edns: EDNS(0) option parsing (server/edns.hpp). The input is the
// RDATA of an OPT record: a run of options (code, length, data).
//   1. read_opt_options() alone: what it accepts must be a valid ECS (RFC
//      7871), and it must agree with a plain reference reading (one ECS,
//      one COOKIE of 8 or 16 to 40 octets).
//   2. The same RDATA in the OPT of a query for a geo name and for a static
//      name, through answer(): FORMERR exactly when the options are bad;
//      otherwise the ECS option is echoed (family, source, address) only
//      when one was sent, with a scope within the family's bits, and scope 0
//      for static data.
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz/fixture.hpp"
#include "server/edns.hpp"

using namespace steerdns;

namespace {

// The plain reading: every option fits, at most one ECS, and that one
// valid; at most one COOKIE, of a valid length.
bool reference_ok(const std::uint8_t* data, std::size_t size, int& ecs_count) {
  ecs_count = 0;
  int cookies = 0;
  std::size_t at = 0;
  while (at < size) {
    if (at + 4 > size) return false;
    const unsigned code = data[at] << 8 | data[at + 1];
    const std::size_t len = data[at + 2] << 8 | data[at + 3];
    if (at + 4 + len > size) return false;
    if (code == server::kOptionCookie && (++cookies > 1 || (len != 8 && (len < 16 || len > 40))))
      return false;
    if (code == server::kOptionEcs) {
      if (++ecs_count > 1 || len < 4) return false;
      const std::uint8_t* e = data + at + 4;
      const unsigned family = e[0] << 8 | e[1], source = e[2], scope = e[3];
      const unsigned bits = family == 1 ? 32 : family == 2 ? 128 : 0;
      if (bits == 0 || source > bits || scope != 0 || len - 4 != (source + 7) / 8) return false;
      // No bit set past the prefix (in the last, partial octet).
      for (unsigned b = source; b < (len - 4) * 8; ++b)
        if (e[4 + b / 8] & (0x80 >> (b % 8))) return false;
    }
    at += 4 + len;
  }
  return true;
}

void check_subnet(const server::ClientSubnet& ecs) {
  if (!ecs.present) return;
  if (ecs.family != 1 && ecs.family != 2) fuzz::broken("ECS: a family other than 1 and 2");
  if (ecs.source > ecs.max_bits()) fuzz::broken("ECS: a source prefix longer than the family");
  for (std::size_t i = ecs.address_size(); i < sizeof ecs.address; ++i)
    if (ecs.address[i] != 0) fuzz::broken("ECS: address octets beyond the prefix");
  if (ecs.source % 8 != 0 && (ecs.address[ecs.source / 8] & (0xFF >> (ecs.source % 8))) != 0)
    fuzz::broken("ECS: address bits beyond the prefix");
}

// "NAME A" with EDNS (payload 1232) and OPTIONS as the OPT RDATA.
std::vector<std::uint8_t> query_with(const char* name, const std::uint8_t* options, std::size_t size) {
  std::vector<std::uint8_t> q = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1};
  for (const char* label = name; *label != 0;) {
    const char* dot = std::strchr(label, '.');
    q.push_back(static_cast<std::uint8_t>(dot - label));
    q.insert(q.end(), label, dot);
    label = dot + 1;
  }
  q.insert(q.end(), {0, 0, 1, 0, 1});                     // root, type A, class IN
  q.insert(q.end(), {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0});  // OPT, 1232, rcode/version/flags 0
  q.push_back(static_cast<std::uint8_t>(size >> 8));
  q.push_back(static_cast<std::uint8_t>(size));
  q.insert(q.end(), options, options + size);
  return q;
}

// The ECS option of a reply's OPT RDATA (nullptr and 0 when none).
const std::uint8_t* find_ecs(ldns_pkt* pkt, std::size_t& len) {
  len = 0;
  ldns_rdf* rdf = ldns_pkt_edns_data(pkt);
  if (rdf == nullptr) return nullptr;
  const std::uint8_t* d = ldns_rdf_data(rdf);
  const std::size_t size = ldns_rdf_size(rdf);
  for (std::size_t at = 0; at + 4 <= size;) {
    const unsigned code = d[at] << 8 | d[at + 1];
    const std::size_t l = d[at + 2] << 8 | d[at + 3];
    if (at + 4 + l > size) fuzz::broken("reply: an OPT option overruns its RDATA");
    if (code == server::kOptionEcs) {
      len = l;
      return d + at + 4;
    }
    at += 4 + l;
  }
  return nullptr;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  server::EdnsOptions options;
  const bool ok = server::read_opt_options(data, size, options);
  const server::ClientSubnet& ecs = options.ecs;
  int ecs_count = 0;
  if (ok != reference_ok(data, size, ecs_count))
    fuzz::broken("read_opt_options disagrees with the reference");
  if (ok) {
    check_subnet(ecs);
    if (ecs.present != (ecs_count == 1)) fuzz::broken("ECS present but none sent, or sent and lost");
  }

  // An OPT RDATA longer than a message can carry cannot be sent.
  if (size > 60000) return 0;
  const fuzz::Fixture& f = fuzz::fixture();
  static std::vector<std::uint8_t> out(server::kMaxTcpMessage);
  for (const char* name : {"artifacts.example.com.", "www.example.net."}) {
    const bool geo = name[0] == 'a';
    const auto query = query_with(name, data, size);
    const auto info = server::answer(*f.world, f.tables[0], query, out, server::Transport::tcp,
                                     &f.sources[0]);
    ldns_pkt* pkt = fuzz::check_response(*f.world, query, out, info, server::Transport::tcp);
    if (pkt == nullptr) fuzz::broken("no reply to a query with a valid header and question");
    // Over TCP an edns-tcp-keepalive with a TIMEOUT is FORMERR too.
    if ((info.rcode == server::rcode::FORMERR) != (!ok || options.keepalive_timeout))
      fuzz::broken("FORMERR and the options' validity disagree");
    std::size_t len = 0;
    const std::uint8_t* echoed = find_ecs(pkt, len);
    if (!ok) {
      if (echoed != nullptr) fuzz::broken("ECS echoed in a FORMERR");
    } else if (!ecs.present) {
      if (echoed != nullptr) fuzz::broken("ECS echoed though none was sent");
    } else {
      if (echoed == nullptr) fuzz::broken("ECS sent but not echoed");
      if (len != 4 + ecs.address_size()) fuzz::broken("echoed ECS of another length");
      const unsigned family = echoed[0] << 8 | echoed[1], source = echoed[2], scope = echoed[3];
      if (family != ecs.family || source != ecs.source) fuzz::broken("echoed ECS: family or source changed");
      if (std::memcmp(echoed + 4, ecs.address, ecs.address_size()) != 0)
        fuzz::broken("echoed ECS: address changed");
      if (scope > ecs.max_bits()) fuzz::broken("echoed ECS: scope beyond the family's bits");
      if (!geo && scope != 0) fuzz::broken("echoed ECS: static data with a non-zero scope");
      if (ecs.source == 0 && scope != 0) fuzz::broken("echoed ECS: source 0 with a non-zero scope");
    }
    ldns_pkt_free(pkt);
  }
  return 0;
}
