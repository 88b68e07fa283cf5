// Helpers for server/ unit tests: queries built and answers parsed with ldns
// (the reference parser), a world compiled from zone text; temporary files
// from ../temp_dir.hpp.
#pragma once

#include "common/ldns.hpp"

#include <arpa/inet.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../temp_dir.hpp"
#include "server/answer.hpp"
#include "server/world.hpp"
#include "zones/zone.hpp"

namespace steerdns::test {

inline std::shared_ptr<server::World> world_from(const std::vector<std::string>& zone_texts,
                                                 std::uint16_t edns_payload = 1232) {
  TempDir dir;
  std::vector<std::unique_ptr<zones::Zone>> zones;
  for (std::size_t i = 0; i < zone_texts.size(); ++i)
    zones.push_back(zones::load_zone(dir.write("z" + std::to_string(i) + ".yaml", zone_texts[i])));
  auto world = std::make_shared<server::World>();
  world->zones = zones::ZoneTable(std::move(zones));
  world->edns_payload = edns_payload;
  return world;
}

struct QueryOptions {
  bool edns = false;
  std::uint16_t payload = 1232;
  std::uint8_t version = 0;
  bool rd = false;
  std::uint16_t qclass = LDNS_RR_CLASS_IN;
};

inline std::vector<std::uint8_t> make_query(const std::string& name, ldns_rr_type type, QueryOptions o = {}) {
  ldns_pkt* pkt = nullptr;
  REQUIRE(ldns_pkt_query_new_frm_str(&pkt, name.c_str(), type, static_cast<ldns_rr_class>(o.qclass),
                                     o.rd ? LDNS_RD : 0) == LDNS_STATUS_OK);
  ldns_pkt_set_id(pkt, 0x1234);
  if (o.edns) {
    ldns_pkt_set_edns_udp_size(pkt, o.payload);
    ldns_pkt_set_edns_version(pkt, o.version);
    // ldns writes OPT only when some EDNS field is non-default.
    if (o.payload == 0) ldns_pkt_set_edns_do(pkt, true);
  }
  std::uint8_t* wire = nullptr;
  std::size_t size = 0;
  REQUIRE(ldns_pkt2wire(&wire, pkt, &size) == LDNS_STATUS_OK);
  std::vector<std::uint8_t> out(wire, wire + size);
  free(wire);
  ldns_pkt_free(pkt);
  return out;
}

// The answer, parsed by ldns; owns the packet.
struct Reply {
  server::AnswerInfo info;
  std::vector<std::uint8_t> wire;
  ldns_pkt* pkt = nullptr;
  Reply() = default;
  Reply(const Reply&) = delete;
  Reply(Reply&& o) noexcept : info(o.info), wire(std::move(o.wire)), pkt(o.pkt) { o.pkt = nullptr; }
  ~Reply() {
    if (pkt) ldns_pkt_free(pkt);
  }
  ldns_pkt_rcode rcode() const { return ldns_pkt_get_rcode(pkt); }
  std::size_t count(ldns_pkt_section s) const { return ldns_pkt_section_count(pkt, s); }
  ldns_rr_list* section(ldns_pkt_section s) const {
    switch (s) {
      case LDNS_SECTION_ANSWER: return ldns_pkt_answer(pkt);
      case LDNS_SECTION_AUTHORITY: return ldns_pkt_authority(pkt);
      default: return ldns_pkt_additional(pkt);
    }
  }
  // "owner ttl type rdata" of record I of section S, lower-cased text.
  std::string rr(ldns_pkt_section s, std::size_t i) const {
    char* text = ldns_rr2str(ldns_rr_list_rr(section(s), i));
    std::string out(text);
    free(text);
    while (!out.empty() && (out.back() == '\n')) out.pop_back();
    return out;
  }
};

inline Reply ask(const server::World& world, const health::Table& table,
                 const std::vector<std::uint8_t>& query, server::Transport transport = server::Transport::udp,
                 const sockaddr_storage* source = nullptr, std::uint32_t now = 0) {
  Reply r;
  r.wire.resize(server::kMaxTcpMessage);
  r.info = server::answer(world, table, query, r.wire, transport, source, now);
  r.wire.resize(r.info.size);
  if (r.info.size > 0) REQUIRE(ldns_wire2pkt(&r.pkt, r.wire.data(), r.wire.size()) == LDNS_STATUS_OK);
  return r;
}

inline Reply ask(const server::World& world, const std::vector<std::uint8_t>& query,
                 server::Transport transport = server::Transport::udp,
                 const sockaddr_storage* source = nullptr, std::uint32_t now = 0) {
  static const health::Table all_up;
  return ask(world, all_up, query, transport, source, now);
}

// Appends an EDNS option (CODE, DATA) to the OPT record of QUERY, a query
// from make_query(..., {.edns = true}) whose only record is its OPT.
inline void add_option(std::vector<std::uint8_t>& query, std::uint16_t code,
                       const std::vector<std::uint8_t>& data) {
  std::size_t pos = 12;
  while (query[pos] != 0) pos += 1 + query[pos];
  const std::size_t rdlength_at = pos + 1 + 4 + 9;  // root, QTYPE QCLASS; OPT's owner TYPE CLASS TTL
  REQUIRE(query.size() >= rdlength_at + 2);
  const std::size_t rdlength = (query[rdlength_at] << 8 | query[rdlength_at + 1]) + 4 + data.size();
  query[rdlength_at] = static_cast<std::uint8_t>(rdlength >> 8);
  query[rdlength_at + 1] = static_cast<std::uint8_t>(rdlength);
  const std::uint8_t head[4] = {static_cast<std::uint8_t>(code >> 8), static_cast<std::uint8_t>(code),
                                static_cast<std::uint8_t>(data.size() >> 8),
                                static_cast<std::uint8_t>(data.size())};
  query.insert(query.end(), head, head + 4);
  query.insert(query.end(), data.begin(), data.end());
}

// The data of option CODE in R's OPT record; nullopt when it has none.
inline std::optional<std::vector<std::uint8_t>> reply_option(const Reply& r, std::uint16_t code) {
  ldns_rdf* rdf = ldns_pkt_edns_data(r.pkt);
  if (rdf == nullptr) return std::nullopt;
  const std::uint8_t* d = ldns_rdf_data(rdf);
  const std::size_t size = ldns_rdf_size(rdf);
  for (std::size_t at = 0; at + 4 <= size;) {
    const std::size_t len = d[at + 2] << 8 | d[at + 3];
    if ((d[at] << 8 | d[at + 1]) == code) return std::vector<std::uint8_t>(d + at + 4, d + at + 4 + len);
    at += 4 + len;
  }
  return std::nullopt;
}

// A query with ECS ADDRESS/SOURCE (family by the address's form).
inline std::vector<std::uint8_t> ecs_query(const std::string& name, ldns_rr_type type,
                                           const std::string& address, int source) {
  auto q = make_query(name, type, {.edns = true});
  std::uint8_t bytes[16] = {};
  const bool v6 = address.find(':') != std::string::npos;
  REQUIRE(inet_pton(v6 ? AF_INET6 : AF_INET, address.c_str(), bytes) == 1);
  const std::size_t len = (source + 7) / 8;
  std::vector<std::uint8_t> option = {0,
                                      8,
                                      0,
                                      static_cast<std::uint8_t>(4 + len),
                                      0,
                                      static_cast<std::uint8_t>(v6 ? 2 : 1),
                                      static_cast<std::uint8_t>(source),
                                      0};
  option.insert(option.end(), bytes, bytes + len);
  q[q.size() - 1] = static_cast<std::uint8_t>(option.size());  // OPT rdlength (was 0)
  q.insert(q.end(), option.begin(), option.end());
  return q;
}

inline sockaddr_storage source(const char* v4) {
  sockaddr_storage ss{};
  auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
  sin->sin_family = AF_INET;
  inet_pton(AF_INET, v4, &sin->sin_addr);
  return ss;
}

inline std::vector<std::string> addresses(const Reply& r) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < r.count(LDNS_SECTION_ANSWER); ++i) {
    ldns_rr* rr = ldns_rr_list_rr(ldns_pkt_answer(r.pkt), i);
    if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_A && ldns_rr_get_type(rr) != LDNS_RR_TYPE_AAAA) continue;
    char* text = ldns_rdf2str(ldns_rr_rdf(rr, 0));
    out.emplace_back(text);
    free(text);
  }
  return out;
}

// SCOPE PREFIX-LENGTH of the reply's ECS option (-1 when there is none).
inline int scope_of(const Reply& r) {
  ldns_rdf* data = ldns_pkt_edns_data(r.pkt);
  if (data == nullptr || ldns_rdf_size(data) < 8) return -1;
  return ldns_rdf_data(data)[7];
}

}  // namespace steerdns::test
