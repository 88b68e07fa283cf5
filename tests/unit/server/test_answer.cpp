// answer() driven with queries built by ldns and hand-crafted malformed
// packets; replies are parsed back with ldns, the reference parser.
#include <doctest/doctest.h>

#include <random>

#include "fixture.hpp"

using namespace steerdns;
using steerdns::test::ask;
using steerdns::test::make_query;
using steerdns::test::QueryOptions;

namespace {

std::string big_txt(int records, int size) {
  std::string out = "[";
  for (int i = 0; i < records; ++i)
    out += (i ? ", " : "") + std::string("\"") + std::to_string(i) + std::string(size - 3, 'x') + "\"";
  return out + "]";
}

const std::string kZone = R"(zone: example.com
ttl: 3600
soa: {mname: ns1, rname: hostmaster, serial: 7, minimum: 300}
ns: [ns1, ns2]
records:
  "@": {MX: 10 mail, TXT: "v=spf1 -all"}
  ns1: {A: 127.0.0.1}
  ns2: {A: 127.0.0.2}
  mail: {A: 127.0.0.25}
  www: {A: [127.0.0.10, 127.0.0.11]}
  c1: {CNAME: c2}
  c2: {CNAME: www}
  out: {CNAME: www.example.net.}
  dangling: {CNAME: nothing}
  tosub: {CNAME: host.sub}
  loop1: {CNAME: loop2}
  loop2: {CNAME: loop1}
  "*.wild": {A: 127.0.0.20}
  real.wild: {A: 127.0.0.21}
  a.b.deep: {A: 127.0.0.30}
  sub: {NS: [ns1.sub, ns.example.net.]}
  ns1.sub: {A: 127.0.0.40}
  big: {TXT: )" + big_txt(15, 200) +
                          R"(}
  medium: {TXT: )" + big_txt(4, 200) +
                          R"(}
)";

const server::World& world() {
  static auto w = test::world_from(
      {kZone, "zone: example.net\nsoa: {mname: ns, rname: h}\nns: [ns]\nrecords: {ns: {A: 127.0.0.53}}\n"});
  return *w;
}

std::vector<std::uint8_t> header(std::uint16_t qd, std::uint16_t an, std::uint16_t ns, std::uint16_t ar,
                                 std::uint8_t flags2 = 0) {
  return {0xab,
          0xcd,
          flags2,
          0,
          static_cast<std::uint8_t>(qd >> 8),
          static_cast<std::uint8_t>(qd),
          static_cast<std::uint8_t>(an >> 8),
          static_cast<std::uint8_t>(an),
          static_cast<std::uint8_t>(ns >> 8),
          static_cast<std::uint8_t>(ns),
          static_cast<std::uint8_t>(ar >> 8),
          static_cast<std::uint8_t>(ar)};
}

void append(std::vector<std::uint8_t>& p, std::initializer_list<int> bytes) {
  for (int b : bytes) p.push_back(static_cast<std::uint8_t>(b));
}

// "www.example.com A IN" in wire form.
void append_question(std::vector<std::uint8_t>& p) {
  append(p, {3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1});
}

// A root-owned OPT record with payload 1232 and the given rdata length.
void append_opt(std::vector<std::uint8_t>& p, int rdlen = 0) {
  append(p, {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, rdlen});
}

std::uint16_t rcode_of(const std::vector<std::uint8_t>& query) {
  std::vector<std::uint8_t> out(512);
  auto info = server::answer(world(), query, out, server::Transport::udp);
  REQUIRE(info.size >= 12);
  CHECK(out[0] == query[0]);
  CHECK(out[1] == query[1]);
  CHECK((out[2] & 0x80) != 0);
  return out[3] & 0x0F;
}

}  // namespace

TEST_CASE("authoritative answers: AA, no RA, id and RD copied") {
  auto r = ask(world(), make_query("example.com.", LDNS_RR_TYPE_SOA, {.rd = true}));
  CHECK(r.rcode() == LDNS_RCODE_NOERROR);
  CHECK(ldns_pkt_aa(r.pkt));
  CHECK_FALSE(ldns_pkt_ra(r.pkt));
  CHECK(ldns_pkt_rd(r.pkt));
  CHECK(ldns_pkt_id(r.pkt) == 0x1234);
  CHECK(r.count(LDNS_SECTION_ANSWER) == 1);
  auto a = ask(world(), make_query("www.example.com.", LDNS_RR_TYPE_A));
  CHECK_FALSE(ldns_pkt_rd(a.pkt));
  CHECK(a.count(LDNS_SECTION_ANSWER) == 2);
  CHECK(a.rr(LDNS_SECTION_ANSWER, 0) == "www.example.com.\t3600\tIN\tA\t127.0.0.10");
}

TEST_CASE("NXDOMAIN and NODATA carry the SOA with the negative TTL") {
  auto nx = ask(world(), make_query("nope.example.com.", LDNS_RR_TYPE_A));
  CHECK(nx.rcode() == LDNS_RCODE_NXDOMAIN);
  CHECK(ldns_pkt_aa(nx.pkt));
  REQUIRE(nx.count(LDNS_SECTION_AUTHORITY) == 1);
  CHECK(nx.rr(LDNS_SECTION_AUTHORITY, 0).rfind("example.com.\t300\tIN\tSOA\t", 0) == 0);
  auto nodata = ask(world(), make_query("www.example.com.", LDNS_RR_TYPE_AAAA));
  CHECK(nodata.rcode() == LDNS_RCODE_NOERROR);
  CHECK(nodata.count(LDNS_SECTION_ANSWER) == 0);
  CHECK(nodata.count(LDNS_SECTION_AUTHORITY) == 1);
  auto ent = ask(world(), make_query("b.deep.example.com.", LDNS_RR_TYPE_A));
  CHECK(ent.rcode() == LDNS_RCODE_NOERROR);
  CHECK(ent.count(LDNS_SECTION_AUTHORITY) == 1);
  auto below_leaf = ask(world(), make_query("x.www.example.com.", LDNS_RR_TYPE_A));
  CHECK(below_leaf.rcode() == LDNS_RCODE_NXDOMAIN);
}

TEST_CASE("REFUSED outside our zones and for other classes") {
  auto r = ask(world(), make_query("example.org.", LDNS_RR_TYPE_A));
  CHECK(r.rcode() == LDNS_RCODE_REFUSED);
  CHECK_FALSE(ldns_pkt_aa(r.pkt));
  auto ch = ask(world(), make_query("example.com.", LDNS_RR_TYPE_TXT, {.qclass = LDNS_RR_CLASS_CH}));
  CHECK(ch.rcode() == LDNS_RCODE_REFUSED);
  auto axfr = ask(world(), make_query("example.com.", LDNS_RR_TYPE_AXFR), server::Transport::tcp);
  CHECK(axfr.rcode() == LDNS_RCODE_REFUSED);
}

TEST_CASE("referrals: NS in authority, glue in additional, no AA") {
  for (const char* name : {"host.sub.example.com.", "sub.example.com.", "ns1.sub.example.com."}) {
    CAPTURE(name);
    auto r = ask(world(), make_query(name, LDNS_RR_TYPE_A));
    CHECK(r.rcode() == LDNS_RCODE_NOERROR);
    CHECK_FALSE(ldns_pkt_aa(r.pkt));
    CHECK(r.count(LDNS_SECTION_ANSWER) == 0);
    CHECK(r.count(LDNS_SECTION_AUTHORITY) == 2);
    REQUIRE(r.count(LDNS_SECTION_ADDITIONAL) == 1);
    CHECK(r.rr(LDNS_SECTION_ADDITIONAL, 0) == "ns1.sub.example.com.\t3600\tIN\tA\t127.0.0.40");
  }
  auto ds = ask(world(), make_query("sub.example.com.", LDNS_RR_TYPE_DS));
  CHECK(ldns_pkt_aa(ds.pkt));
  CHECK(ds.count(LDNS_SECTION_AUTHORITY) == 1);
}

TEST_CASE("CNAME chains are followed inside the zone") {
  auto r = ask(world(), make_query("c1.example.com.", LDNS_RR_TYPE_A));
  REQUIRE(r.count(LDNS_SECTION_ANSWER) == 4);
  CHECK(r.rr(LDNS_SECTION_ANSWER, 0) == "c1.example.com.\t3600\tIN\tCNAME\tc2.example.com.");
  CHECK(r.rr(LDNS_SECTION_ANSWER, 1) == "c2.example.com.\t3600\tIN\tCNAME\twww.example.com.");
  CHECK(r.rr(LDNS_SECTION_ANSWER, 2) == "www.example.com.\t3600\tIN\tA\t127.0.0.10");
  auto only = ask(world(), make_query("c1.example.com.", LDNS_RR_TYPE_CNAME));
  CHECK(only.count(LDNS_SECTION_ANSWER) == 1);
  auto out = ask(world(), make_query("out.example.com.", LDNS_RR_TYPE_A));
  CHECK(out.rcode() == LDNS_RCODE_NOERROR);
  CHECK(out.count(LDNS_SECTION_ANSWER) == 1);
  auto dangling = ask(world(), make_query("dangling.example.com.", LDNS_RR_TYPE_A));
  CHECK(dangling.rcode() == LDNS_RCODE_NXDOMAIN);  // RFC 6604: the last name's rcode
  CHECK(dangling.count(LDNS_SECTION_ANSWER) == 1);
  // A chain into a delegation ends in the referral; AA as the first name decided.
  auto tosub = ask(world(), make_query("tosub.example.com.", LDNS_RR_TYPE_A));
  CHECK(tosub.rcode() == LDNS_RCODE_NOERROR);
  CHECK(ldns_pkt_aa(tosub.pkt));
  CHECK(tosub.count(LDNS_SECTION_ANSWER) == 1);
  CHECK(tosub.count(LDNS_SECTION_AUTHORITY) == 2);
  CHECK(tosub.count(LDNS_SECTION_ADDITIONAL) == 1);
  auto loop = ask(world(), make_query("loop1.example.com.", LDNS_RR_TYPE_A));
  CHECK(loop.rcode() == LDNS_RCODE_NOERROR);
  CHECK(loop.count(LDNS_SECTION_ANSWER) == 8);
}

TEST_CASE("wildcards synthesise answers owned by the query name") {
  auto r = ask(world(), make_query("a.b.wild.example.com.", LDNS_RR_TYPE_A));
  REQUIRE(r.count(LDNS_SECTION_ANSWER) == 1);
  CHECK(r.rr(LDNS_SECTION_ANSWER, 0) == "a.b.wild.example.com.\t3600\tIN\tA\t127.0.0.20");
  CHECK(ldns_pkt_aa(r.pkt));
  auto real = ask(world(), make_query("real.wild.example.com.", LDNS_RR_TYPE_A));
  CHECK(real.rr(LDNS_SECTION_ANSWER, 0) == "real.wild.example.com.\t3600\tIN\tA\t127.0.0.21");
  auto nodata = ask(world(), make_query("x.wild.example.com.", LDNS_RR_TYPE_AAAA));
  CHECK(nodata.rcode() == LDNS_RCODE_NOERROR);
  CHECK(nodata.count(LDNS_SECTION_AUTHORITY) == 1);
  // Below an existing name the wildcard does not apply (RFC 4592 §2.2.1).
  auto blocked = ask(world(), make_query("x.real.wild.example.com.", LDNS_RR_TYPE_A));
  CHECK(blocked.rcode() == LDNS_RCODE_NXDOMAIN);
}

TEST_CASE("additional section: MX targets we serve") {
  auto r = ask(world(), make_query("example.com.", LDNS_RR_TYPE_MX));
  CHECK(r.count(LDNS_SECTION_ANSWER) == 1);
  REQUIRE(r.count(LDNS_SECTION_ADDITIONAL) == 1);
  CHECK(r.rr(LDNS_SECTION_ADDITIONAL, 0) == "mail.example.com.\t3600\tIN\tA\t127.0.0.25");
  auto ns = ask(world(), make_query("example.com.", LDNS_RR_TYPE_NS));
  CHECK(ns.count(LDNS_SECTION_ANSWER) == 2);
  CHECK(ns.count(LDNS_SECTION_ADDITIONAL) == 2);
}

TEST_CASE("ANY is answered with one rrset (RFC 8482)") {
  auto r = ask(world(), make_query("example.com.", LDNS_RR_TYPE_ANY));
  CHECK(r.rcode() == LDNS_RCODE_NOERROR);
  REQUIRE(r.count(LDNS_SECTION_ANSWER) >= 1);
  const auto type = ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_answer(r.pkt), 0));
  for (std::size_t i = 0; i < r.count(LDNS_SECTION_ANSWER); ++i)
    CHECK(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_answer(r.pkt), i)) == type);
}

TEST_CASE("EDNS: OPT with our payload, BADVERS, none without EDNS") {
  auto r = ask(world(), make_query("www.example.com.", LDNS_RR_TYPE_A, {.edns = true, .payload = 4096}));
  CHECK(ldns_pkt_edns(r.pkt));
  CHECK(ldns_pkt_edns_udp_size(r.pkt) == 1232);
  auto plain = ask(world(), make_query("www.example.com.", LDNS_RR_TYPE_A));
  CHECK_FALSE(ldns_pkt_edns(plain.pkt));
  auto v1 = ask(world(), make_query("www.example.com.", LDNS_RR_TYPE_A, {.edns = true, .version = 1}));
  CHECK(v1.info.rcode == server::rcode::BADVERS);
  CHECK(ldns_pkt_edns_extended_rcode(v1.pkt) == 1);
  CHECK(ldns_pkt_edns_version(v1.pkt) == 0);
  CHECK(v1.count(LDNS_SECTION_ANSWER) == 0);
  CHECK_FALSE(ldns_pkt_edns_do(r.pkt));
  auto with_do = make_query("www.example.com.", LDNS_RR_TYPE_A, {.edns = true});
  with_do[with_do.size() - 4] |= 0x80;  // the OPT is last: DO is the top bit of its flags
  auto d = ask(world(), with_do);
  CHECK(ldns_pkt_edns_do(d.pkt));  // copied (RFC 3225 §3)
}

TEST_CASE("truncation: TC over UDP when the answer does not fit, whole over TCP") {
  auto udp = ask(world(), make_query("big.example.com.", LDNS_RR_TYPE_TXT, {.edns = true, .payload = 4096}));
  CHECK(ldns_pkt_tc(udp.pkt));
  CHECK(udp.count(LDNS_SECTION_ANSWER) == 0);
  CHECK(ldns_pkt_edns(udp.pkt));  // the OPT survives truncation
  CHECK(udp.wire.size() <= 1232);
  auto tcp = ask(world(), make_query("big.example.com.", LDNS_RR_TYPE_TXT), server::Transport::tcp);
  CHECK_FALSE(ldns_pkt_tc(tcp.pkt));
  CHECK(tcp.count(LDNS_SECTION_ANSWER) == 15);
  auto fits = ask(world(),
                  make_query("medium.example.com.", LDNS_RR_TYPE_TXT, {.edns = true, .payload = 1232}));
  CHECK_FALSE(ldns_pkt_tc(fits.pkt));
  CHECK(fits.count(LDNS_SECTION_ANSWER) == 4);
  auto small = ask(world(), make_query("medium.example.com.", LDNS_RR_TYPE_TXT));
  CHECK(ldns_pkt_tc(small.pkt));
  CHECK(small.wire.size() <= 512);
  auto tiny_payload = ask(world(), make_query("medium.example.com.", LDNS_RR_TYPE_TXT,
                                              {.edns = true, .payload = 100}));
  CHECK(ldns_pkt_tc(tiny_payload.pkt));  // payloads below 512 count as 512
}

TEST_CASE("the question keeps its case and names are compressed") {
  auto query = make_query("WwW.ExAmPlE.cOm.", LDNS_RR_TYPE_A);
  auto r = ask(world(), query);
  REQUIRE(r.wire.size() > query.size());
  CHECK(std::equal(query.begin() + 12, query.end(), r.wire.begin() + 12));
  // Answer owners point at the question (offset 12).
  CHECK(r.wire[query.size()] == 0xC0);
  CHECK(r.wire[query.size() + 1] == 12);
  auto mx = ask(world(), make_query("example.com.", LDNS_RR_TYPE_MX));
  // header 12 + question 17 + MX (2 + 10 + 2 + "mail"+ptr 7) + A (mail ptr 2 + 14)
  CHECK(mx.wire.size() == 12 + 17 + 21 + 16);
}

TEST_CASE("malformed queries: FORMERR, NOTIMP, or silence") {
  std::vector<std::uint8_t> out(512);
  SUBCASE("shorter than a header: dropped") {
    auto p = header(1, 0, 0, 0);
    p.resize(5);
    CHECK(server::answer(world(), p, out, server::Transport::udp).size == 0);
  }
  SUBCASE("responses are never answered") {
    auto p = header(1, 0, 0, 0, 0x80);
    append_question(p);
    CHECK(server::answer(world(), p, out, server::Transport::udp).size == 0);
  }
  SUBCASE("other opcodes: NOTIMP") {
    for (int opcode : {1, 2, 4, 5, 15}) {
      auto p = header(1, 0, 0, 0, static_cast<std::uint8_t>(opcode << 3));
      append_question(p);
      CHECK(rcode_of(p) == server::rcode::NOTIMP);
    }
  }
  SUBCASE("QDCOUNT other than 1") {
    CHECK(rcode_of(header(0, 0, 0, 0)) == server::rcode::FORMERR);
    auto p = header(2, 0, 0, 0);
    append_question(p);
    append_question(p);
    CHECK(rcode_of(p) == server::rcode::FORMERR);
  }
  SUBCASE("truncated question") {
    auto p = header(1, 0, 0, 0);
    append_question(p);
    for (std::size_t cut = 13; cut < p.size(); ++cut) {
      auto q = p;
      q.resize(cut);
      CHECK(rcode_of(q) == server::rcode::FORMERR);
    }
  }
  SUBCASE("bad labels: 64 octets, a pointer, a pointer loop, extended label types") {
    auto p = header(1, 0, 0, 0);
    p.push_back(64);
    p.insert(p.end(), 64, 'a');
    append(p, {0, 0, 1, 0, 1});
    CHECK(rcode_of(p) == server::rcode::FORMERR);
    auto loop = header(1, 0, 0, 0);
    append(loop, {0xC0, 12, 0, 1, 0, 1});
    CHECK(rcode_of(loop) == server::rcode::FORMERR);
    auto ext = header(1, 0, 0, 0);
    append(ext, {0x41, 1, 0, 0, 1, 0, 1});
    CHECK(rcode_of(ext) == server::rcode::FORMERR);
  }
  SUBCASE("a name longer than 255 octets") {
    auto p = header(1, 0, 0, 0);
    for (int i = 0; i < 5; ++i) {
      p.push_back(60);
      p.insert(p.end(), 60, 'a');
    }
    append(p, {0, 0, 1, 0, 1});
    CHECK(rcode_of(p) == server::rcode::FORMERR);
  }
  SUBCASE("OPT: duplicated, non-root owner, outside additional, overrunning options") {
    auto dup = header(1, 0, 0, 2);
    append_question(dup);
    append_opt(dup);
    append_opt(dup);
    CHECK(rcode_of(dup) == server::rcode::FORMERR);
    auto owner = header(1, 0, 0, 1);
    append_question(owner);
    append(owner, {1, 'x', 0});
    append_opt(owner);
    owner.erase(owner.end() - 11);  // replace the root label by the name above
    CHECK(rcode_of(owner) == server::rcode::FORMERR);
    auto in_answer = header(1, 1, 0, 0);
    append_question(in_answer);
    append_opt(in_answer);
    CHECK(rcode_of(in_answer) == server::rcode::FORMERR);
    auto overrun = header(1, 0, 0, 1);
    append_question(overrun);
    append_opt(overrun, 6);
    append(overrun, {0, 8, 0, 9, 1, 2});  // option says 9 octets, 2 follow
    CHECK(rcode_of(overrun) == server::rcode::FORMERR);
    auto short_rr = header(1, 0, 0, 1);
    append_question(short_rr);
    append(short_rr, {0, 0, 41, 4});
    CHECK(rcode_of(short_rr) == server::rcode::FORMERR);
  }
  SUBCASE("unknown EDNS options are ignored") {
    auto p = header(1, 0, 0, 1);
    append_question(p);
    append_opt(p, 6);
    append(p, {0xfd, 0xe9, 0, 2, 0xab, 0xcd});
    CHECK(rcode_of(p) == server::rcode::NOERROR);
  }
}

TEST_CASE("random packets never crash and every reply parses") {
  std::mt19937 rng(20261121);
  auto valid = make_query("www.example.com.", LDNS_RR_TYPE_A, {.edns = true});
  std::vector<std::uint8_t> out(server::kMaxTcpMessage);
  int replies = 0;
  for (int i = 0; i < 20000; ++i) {
    std::vector<std::uint8_t> p = valid;
    if (i % 2) {  // flip a few bytes of a valid query
      for (int k = 0; k < 1 + i % 4; ++k) p[rng() % p.size()] = static_cast<std::uint8_t>(rng());
      p.resize(1 + rng() % (p.size() + 8), 0);
    } else {  // noise behind a plausible header
      p.resize(12 + rng() % 64);
      for (std::size_t k = 2; k < p.size(); ++k) p[k] = static_cast<std::uint8_t>(rng());
      p[2] &= 0x7f;
    }
    const auto info = server::answer(world(), p, out,
                                     i % 3 ? server::Transport::udp : server::Transport::tcp);
    if (info.size == 0) continue;
    ++replies;
    ldns_pkt* pkt = nullptr;
    REQUIRE(ldns_wire2pkt(&pkt, out.data(), info.size) == LDNS_STATUS_OK);
    ldns_pkt_free(pkt);
  }
  CHECK(replies > 1000);
}

namespace {
// A query for www.example.com A with one OPT carrying OPTION (code, then data).
std::vector<std::uint8_t> query_with_option(std::initializer_list<std::vector<std::uint8_t>> options) {
  auto p = header(1, 0, 0, 1);
  append_question(p);
  std::size_t rdlen = 0;
  for (const auto& o : options) rdlen += o.size();
  append_opt(p, static_cast<int>(rdlen));
  for (const auto& o : options) p.insert(p.end(), o.begin(), o.end());
  return p;
}

std::vector<std::uint8_t> ecs_option(std::uint16_t family, std::uint8_t source, std::uint8_t scope,
                                     std::vector<std::uint8_t> address) {
  const auto len = static_cast<std::uint8_t>(4 + address.size());
  std::vector<std::uint8_t> o = {0, 8, 0, len, 0, static_cast<std::uint8_t>(family), source, scope};
  // One push_back per octet: GCC 12 warns falsely (-Warray-bounds) on a
  // range insert into this vector.
  for (std::uint8_t octet : address) o.push_back(octet);
  return o;
}
}  // namespace

TEST_CASE("EDNS Client Subnet is echoed only when asked, with scope 0 for static data") {
  std::vector<std::uint8_t> out(512);
  auto q = query_with_option({ecs_option(1, 24, 0, {193, 51, 24})});
  auto info = server::answer(world(), q, out, server::Transport::udp);
  REQUIRE(info.rcode == server::rcode::NOERROR);
  out.resize(info.size);
  // The OPT is last: ... rdlength 11, then option 8 of length 7: family 1, /24, scope 0, address.
  const std::vector<std::uint8_t> tail = {0, 11, 0, 8, 0, 7, 0, 1, 24, 0, 193, 51, 24};
  REQUIRE(out.size() > tail.size());
  CHECK(std::equal(tail.begin(), tail.end(), out.end() - tail.size()));

  auto v6 = query_with_option({ecs_option(2, 48, 0, {0x20, 0x01, 0x48, 0x60, 0x48, 0x60})});
  out.assign(512, 0);
  info = server::answer(world(), v6, out, server::Transport::udp);
  CHECK(info.rcode == server::rcode::NOERROR);
  CHECK(out[info.size - 8] == 48);  // source prefix echoed (before scope and 6 address bytes)
  CHECK(out[info.size - 7] == 0);   // scope 0

  // Source prefix 0 (the resolver asks for no tailoring): scope 0, no address.
  auto zero = query_with_option({ecs_option(1, 0, 0, {})});
  out.assign(512, 0);
  info = server::answer(world(), zero, out, server::Transport::udp);
  CHECK(info.rcode == server::rcode::NOERROR);

  // Without ECS in the query, none in the reply.
  auto plain = query_with_option({});
  out.assign(512, 0);
  info = server::answer(world(), plain, out, server::Transport::udp);
  CHECK(out[info.size - 2] == 0);
  CHECK(out[info.size - 1] == 0);
}

TEST_CASE("NOTIMP and FORMERR replies carry OPT when the query's OPT was valid (RFC 6891 §7)") {
  auto notify = query_with_option({});
  notify[2] = 4 << 3;  // opcode NOTIFY
  auto r = ask(world(), notify);
  CHECK(r.rcode() == LDNS_RCODE_NOTIMPL);
  CHECK(ldns_pkt_edns(r.pkt));
  CHECK(r.count(LDNS_SECTION_QUESTION) == 1);
  auto bad_ecs = ask(world(), query_with_option({ecs_option(1, 24, 8, {193, 51, 24})}));
  CHECK(bad_ecs.rcode() == LDNS_RCODE_FORMERR);
  CHECK(ldns_pkt_edns(bad_ecs.pkt));
  auto no_opt = header(1, 0, 0, 0, 4 << 3);
  append_question(no_opt);
  auto plain = ask(world(), no_opt);
  CHECK(plain.rcode() == LDNS_RCODE_NOTIMPL);
  CHECK_FALSE(ldns_pkt_edns(plain.pkt));
}

TEST_CASE("malformed EDNS Client Subnet options are FORMERR (RFC 7871)") {
  CHECK(rcode_of(query_with_option({ecs_option(3, 8, 0, {1})})) == server::rcode::FORMERR);  // family
  CHECK(rcode_of(query_with_option({ecs_option(1, 33, 0, {1, 2, 3, 4, 5})})) == server::rcode::FORMERR);
  CHECK(rcode_of(query_with_option({ecs_option(2, 129, 0, std::vector<std::uint8_t>(17, 0))})) ==
        server::rcode::FORMERR);
  CHECK(rcode_of(query_with_option({ecs_option(1, 24, 0, {193, 51, 24, 0})})) ==
        server::rcode::FORMERR);  // address longer than the prefix needs
  CHECK(rcode_of(query_with_option({ecs_option(1, 24, 0, {193, 51})})) == server::rcode::FORMERR);
  CHECK(rcode_of(query_with_option({ecs_option(1, 20, 0, {193, 51, 24})})) ==
        server::rcode::FORMERR);  // bits set beyond /20
  CHECK(rcode_of(query_with_option({ecs_option(1, 24, 8, {193, 51, 24})})) ==
        server::rcode::FORMERR);  // scope must be 0 in queries
  CHECK(rcode_of(query_with_option({ecs_option(1, 24, 0, {193, 51, 24}),
                                    ecs_option(1, 24, 0, {193, 51, 24})})) == server::rcode::FORMERR);
  CHECK(rcode_of(query_with_option({{0, 8, 0, 2, 0, 1}})) == server::rcode::FORMERR);  // too short
  CHECK(rcode_of(query_with_option({ecs_option(1, 20, 0, {193, 51, 16})})) == server::rcode::NOERROR);
}
