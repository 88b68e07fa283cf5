// answer() beyond the records: DNS Cookies (BADCOOKIE over UDP only), NSID
// and the CHAOS identity names, TSIG without keys (NOTAUTH, BADKEY), QCLASS
// ANY, CD on NOTIMP and edns-tcp-keepalive. Replies parsed with ldns.
#include <doctest/doctest.h>

#include "fixture.hpp"
#include "server/cookie.hpp"

using namespace steerdns;
using steerdns::test::add_option;
using steerdns::test::ask;
using steerdns::test::make_query;
using steerdns::test::reply_option;

namespace {

const std::string kZone = R"(zone: example.com
soa: {mname: ns1, rname: hostmaster, serial: 7, minimum: 300}
ns: [ns1]
records:
  ns1: {A: 127.0.0.1}
  www: {A: 127.0.0.10}
)";

std::shared_ptr<server::World> make_world(bool cookies = true) {
  auto w = test::world_from({kZone});
  w->identity = "ns1.test";
  w->version = "steerdns 9";
  w->cookies.enabled = cookies;
  w->cookies.current = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  w->tcp_keepalive = 37;
  return w;
}

const std::vector<std::uint8_t> kClient = {0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8};
constexpr std::uint32_t kNow = 1'800'000'000;

std::vector<std::uint8_t> with_cookie(const std::vector<std::uint8_t>& server = {}) {
  auto q = make_query("www.example.com.", LDNS_RR_TYPE_A, {.edns = true});
  auto data = kClient;
  data.insert(data.end(), server.begin(), server.end());
  add_option(q, server::kOptionCookie, data);
  return q;
}

}  // namespace

TEST_CASE("Cookies: a client cookie gets a server cookie; echoed, it is valid; a wrong one is BADCOOKIE") {
  const auto world = make_world();
  const sockaddr_storage from = test::source("127.0.0.1");
  auto first = ask(*world, with_cookie(), server::Transport::udp, &from, kNow);
  CHECK(first.rcode() == LDNS_RCODE_NOERROR);
  CHECK(first.count(LDNS_SECTION_ANSWER) == 1);
  CHECK(first.info.cookie == server::CookieState::client_only);
  const auto cookie = reply_option(first, server::kOptionCookie);
  REQUIRE(cookie.has_value());
  REQUIRE(cookie->size() == 24);
  CHECK(std::equal(kClient.begin(), kClient.end(), cookie->begin()));
  const std::vector<std::uint8_t> server_cookie(cookie->begin() + 8, cookie->end());

  auto second = ask(*world, with_cookie(server_cookie), server::Transport::udp, &from, kNow + 5);
  CHECK(second.rcode() == LDNS_RCODE_NOERROR);
  CHECK(second.info.cookie == server::CookieState::valid);
  CHECK(second.count(LDNS_SECTION_ANSWER) == 1);
  CHECK(*reply_option(second, server::kOptionCookie) == *cookie);  // fresh: returned as is

  auto wrong = server_cookie;
  wrong[15] ^= 1;
  auto bad = ask(*world, with_cookie(wrong), server::Transport::udp, &from, kNow);
  CHECK(bad.info.rcode == server::rcode::BADCOOKIE);
  CHECK(bad.info.cookie == server::CookieState::invalid);
  CHECK(bad.count(LDNS_SECTION_ANSWER) == 0);
  CHECK(*reply_option(bad, server::kOptionCookie) == *cookie);  // the right one, to retry with
  // Over TCP the address is proven: answered, with a good cookie.
  auto tcp = ask(*world, with_cookie(wrong), server::Transport::tcp, &from, kNow);
  CHECK(tcp.rcode() == LDNS_RCODE_NOERROR);
  CHECK(tcp.count(LDNS_SECTION_ANSWER) == 1);
  // From another address the cookie is not valid.
  const sockaddr_storage other = test::source("127.0.0.2");
  CHECK(ask(*world, with_cookie(server_cookie), server::Transport::udp, &other, kNow).info.rcode ==
        server::rcode::BADCOOKIE);

  // A malformed cookie option is FORMERR; with cookies off, cookies are ignored.
  auto q = make_query("www.example.com.", LDNS_RR_TYPE_A, {.edns = true});
  add_option(q, server::kOptionCookie, {1, 2, 3});
  CHECK(ask(*world, q, server::Transport::udp, &from, kNow).rcode() == LDNS_RCODE_FORMERR);
  const auto off = make_world(false);
  auto ignored = ask(*off, with_cookie(wrong), server::Transport::udp, &from, kNow);
  CHECK(ignored.rcode() == LDNS_RCODE_NOERROR);
  CHECK_FALSE(reply_option(ignored, server::kOptionCookie).has_value());
  CHECK(ignored.info.cookie == server::CookieState::none);
}

TEST_CASE("Identity: NSID when asked, CH TXT id.server, hostname.bind and version.bind") {
  const auto world = make_world();
  auto q = make_query("www.example.com.", LDNS_RR_TYPE_A, {.edns = true});
  add_option(q, server::kOptionNsid, {});
  auto r = ask(*world, q);
  const auto nsid = reply_option(r, server::kOptionNsid);
  REQUIRE(nsid.has_value());
  CHECK(std::string(nsid->begin(), nsid->end()) == "ns1.test");
  CHECK_FALSE(reply_option(ask(*world, make_query("www.example.com.", LDNS_RR_TYPE_A, {.edns = true})),
                           server::kOptionNsid)
                  .has_value());

  for (const char* name : {"id.server.", "hostname.bind.", "ID.Server."}) {
    auto id = ask(*world, make_query(name, LDNS_RR_TYPE_TXT, {.qclass = LDNS_RR_CLASS_CH}));
    CHECK_MESSAGE(id.rcode() == LDNS_RCODE_NOERROR, name);
    REQUIRE(id.count(LDNS_SECTION_ANSWER) == 1);
    CHECK(id.rr(LDNS_SECTION_ANSWER, 0).find("0\tCH\tTXT\t\"ns1.test\"") != std::string::npos);
  }
  auto version = ask(*world, make_query("version.bind.", LDNS_RR_TYPE_TXT, {.qclass = LDNS_RR_CLASS_CH}));
  REQUIRE(version.count(LDNS_SECTION_ANSWER) == 1);
  CHECK(version.rr(LDNS_SECTION_ANSWER, 0).find("\"steerdns 9\"") != std::string::npos);
  auto nodata = ask(*world, make_query("id.server.", LDNS_RR_TYPE_A, {.qclass = LDNS_RR_CLASS_CH}));
  CHECK(nodata.rcode() == LDNS_RCODE_NOERROR);
  CHECK(nodata.count(LDNS_SECTION_ANSWER) == 0);
  CHECK(ask(*world, make_query("other.bind.", LDNS_RR_TYPE_TXT, {.qclass = LDNS_RR_CLASS_CH})).rcode() ==
        LDNS_RCODE_REFUSED);

  // Without a version (the default) version.bind is not answered; without
  // an identity, neither NSID nor id.server.
  auto quiet = make_world();
  quiet->version.clear();
  quiet->identity.clear();
  CHECK(ask(*quiet, make_query("version.bind.", LDNS_RR_TYPE_TXT, {.qclass = LDNS_RR_CLASS_CH})).rcode() ==
        LDNS_RCODE_REFUSED);
  CHECK(ask(*quiet, make_query("id.server.", LDNS_RR_TYPE_TXT, {.qclass = LDNS_RR_CLASS_CH})).rcode() ==
        LDNS_RCODE_REFUSED);
  CHECK_FALSE(reply_option(ask(*quiet, q), server::kOptionNsid).has_value());
}

TEST_CASE("TSIG without keys: NOTAUTH with an unsigned BADKEY TSIG (RFC 8945 §5.2)") {
  const auto world = make_world();
  auto q = make_query("www.example.com.", LDNS_RR_TYPE_A);
  // Key "k.", algorithm hmac-sha256., Time Signed, Fudge 300, a 4-octet MAC,
  // Original ID 0x1234, Error 0, no Other Data.
  std::vector<std::uint8_t> tsig = {1, 'k', 0, 0, 250, 0, 255, 0, 0, 0, 0};
  std::vector<std::uint8_t> rdata = {11, 'h', 'm', 'a', 'c', '-', 's', 'h', 'a', '2', '5', '6', 0};
  rdata.insert(rdata.end(),
               {0, 0, 0x6b, 0x49, 0xd2, 0x00, 0x01, 0x2c, 0, 4, 9, 9, 9, 9, 0x12, 0x34, 0, 0, 0, 0});
  tsig.push_back(static_cast<std::uint8_t>(rdata.size() >> 8));
  tsig.push_back(static_cast<std::uint8_t>(rdata.size()));
  tsig.insert(tsig.end(), rdata.begin(), rdata.end());
  q.insert(q.end(), tsig.begin(), tsig.end());
  q[11] = 1;  // ARCOUNT
  auto r = ask(*world, q);
  CHECK(r.rcode() == LDNS_RCODE_NOTAUTH);
  CHECK(r.count(LDNS_SECTION_ANSWER) == 0);
  ldns_rr* rr = ldns_pkt_tsig(r.pkt);
  REQUIRE(rr != nullptr);
  CHECK(ldns_rr_get_class(rr) == LDNS_RR_CLASS_ANY);
  CHECK(ldns_rr_ttl(rr) == 0);
  // ldns reads MAC Size and MAC as one field.
  REQUIRE(ldns_rr_rd_count(rr) == 7);
  auto field = [&](std::size_t i) {
    char* text = ldns_rdf2str(ldns_rr_rdf(rr, i));
    std::string out(text);
    free(text);
    return out;
  };
  CHECK(field(0) == "hmac-sha256.");
  CHECK(field(1).rfind("1800000000", 0) == 0);  // Time Signed and Fudge copied
  CHECK(field(2) == "300");
  CHECK(ldns_rdf_size(ldns_rr_rdf(rr, 3)) == 2);               // MAC Size 0: unsigned
  CHECK(ldns_rdf2native_int16(ldns_rr_rdf(rr, 4)) == 0x1234);  // Original ID
  CHECK(ldns_rdf2native_int16(ldns_rr_rdf(rr, 5)) == 17);      // BADKEY

  // Not the last record: FORMERR.
  auto misplaced = make_query("www.example.com.", LDNS_RR_TYPE_A, {.edns = true});
  const std::size_t question_end = misplaced.size() - 11;
  misplaced.insert(misplaced.begin() + static_cast<long>(question_end), tsig.begin(), tsig.end());
  misplaced[11] = 2;
  CHECK(ask(*world, misplaced).rcode() == LDNS_RCODE_FORMERR);
}

TEST_CASE("QCLASS ANY is answered from IN; CD is not copied on NOTIMP; keepalive only over TCP") {
  const auto world = make_world();
  auto any = ask(*world, make_query("www.example.com.", LDNS_RR_TYPE_A, {.qclass = LDNS_RR_CLASS_ANY}));
  CHECK(any.rcode() == LDNS_RCODE_NOERROR);
  REQUIRE(any.count(LDNS_SECTION_ANSWER) == 1);
  CHECK(any.rr(LDNS_SECTION_ANSWER, 0).find("\tIN\tA\t127.0.0.10") != std::string::npos);
  CHECK(ask(*world, make_query("www.example.com.", LDNS_RR_TYPE_A, {.qclass = LDNS_RR_CLASS_HS})).rcode() ==
        LDNS_RCODE_REFUSED);

  auto notimp = make_query("www.example.com.", LDNS_RR_TYPE_A);
  notimp[2] = static_cast<std::uint8_t>(notimp[2] | (5 << 3));  // opcode 5 (UPDATE)
  notimp[3] |= 0x10;                                            // CD
  auto n = ask(*world, notimp);
  CHECK(n.rcode() == LDNS_RCODE_NOTIMPL);
  CHECK_FALSE(ldns_pkt_cd(n.pkt));
  auto cd = make_query("www.example.com.", LDNS_RR_TYPE_A);
  cd[3] |= 0x10;
  CHECK(ldns_pkt_cd(ask(*world, cd).pkt));  // a QUERY keeps it (RFC 6840 §5.9)

  auto q = make_query("www.example.com.", LDNS_RR_TYPE_A, {.edns = true});
  add_option(q, server::kOptionKeepalive, {});
  const auto tcp = reply_option(ask(*world, q, server::Transport::tcp), server::kOptionKeepalive);
  REQUIRE(tcp.has_value());
  CHECK(*tcp == std::vector<std::uint8_t>{0, 37});
  CHECK_FALSE(reply_option(ask(*world, q, server::Transport::udp), server::kOptionKeepalive).has_value());
  auto with_timeout = make_query("www.example.com.", LDNS_RR_TYPE_A, {.edns = true});
  add_option(with_timeout, server::kOptionKeepalive, {0, 10});
  CHECK(ask(*world, with_timeout, server::Transport::tcp).rcode() == LDNS_RCODE_FORMERR);
  CHECK(ask(*world, with_timeout, server::Transport::udp).rcode() == LDNS_RCODE_NOERROR);  // ignored
}

TEST_CASE("What must go back always fits: a long identity and a long TSIG in 512 octets") {
  auto world = make_world();
  world->identity = std::string(255, 'n');
  // A 255-octet question name (four labels of 63, 61): with NSID the OPT
  // would not fit 512 octets; NSID is left out, the answer is whole.
  std::string name;
  for (int i = 0; i < 3; ++i) name += std::string(63, 'a') + ".";
  name += std::string(61, 'b') + ".";
  auto q = make_query(name, LDNS_RR_TYPE_A, {.edns = true, .payload = 512});
  add_option(q, server::kOptionNsid, {});
  add_option(q, server::kOptionCookie, kClient);
  auto r = ask(*world, q);
  REQUIRE(r.pkt != nullptr);
  CHECK(r.wire.size() <= 512);
  CHECK(r.rcode() == LDNS_RCODE_REFUSED);
  CHECK_FALSE(reply_option(r, server::kOptionNsid).has_value());
  CHECK(reply_option(r, server::kOptionCookie).has_value());
  // Over TCP there is room: NSID is there.
  CHECK(reply_option(ask(*world, q, server::Transport::tcp), server::kOptionNsid).has_value());

  // A TSIG with a 255-octet key name and algorithm after that question:
  // over UDP its error record cannot fit, so TC=1 and no TSIG.
  auto signed_query = make_query(name, LDNS_RR_TYPE_A);
  std::vector<std::uint8_t> key;
  for (int i = 0; i < 3; ++i) {
    key.push_back(63);
    key.insert(key.end(), 63, 'k');
  }
  key.push_back(61);
  key.insert(key.end(), 61, 'k');
  key.push_back(0);
  std::vector<std::uint8_t> tsig = key;
  tsig.insert(tsig.end(), {0, 250, 0, 255, 0, 0, 0, 0});
  std::vector<std::uint8_t> rdata = key;  // the algorithm: as long
  rdata.insert(rdata.end(), {0, 0, 0x6b, 0x49, 0xd2, 0x00, 0x01, 0x2c, 0, 0, 0x12, 0x34, 0, 0, 0, 0});
  tsig.push_back(static_cast<std::uint8_t>(rdata.size() >> 8));
  tsig.push_back(static_cast<std::uint8_t>(rdata.size()));
  tsig.insert(tsig.end(), rdata.begin(), rdata.end());
  signed_query.insert(signed_query.end(), tsig.begin(), tsig.end());
  signed_query[11] = 1;
  auto udp = ask(*world, signed_query);
  REQUIRE(udp.pkt != nullptr);
  CHECK(udp.wire.size() <= 512);
  CHECK(udp.rcode() == LDNS_RCODE_NOTAUTH);
  CHECK(ldns_pkt_tc(udp.pkt));
  CHECK(ldns_pkt_tsig(udp.pkt) == nullptr);
  auto tcp = ask(*world, signed_query, server::Transport::tcp);
  CHECK(tcp.rcode() == LDNS_RCODE_NOTAUTH);
  CHECK(ldns_pkt_tsig(tcp.pkt) != nullptr);

  // A key name over 255 octets, or a TSIG of another class: FORMERR.
  auto bad_class = make_query("www.example.com.", LDNS_RR_TYPE_A);
  std::vector<std::uint8_t> short_tsig = {1, 'k', 0, 0, 250, 0, 1, 0, 0, 0, 0, 0, 19, 1, 'a', 0};
  short_tsig.insert(short_tsig.end(), {0, 0, 0, 0, 0, 1, 1, 44, 0, 0, 0x12, 0x34, 0, 0, 0, 0});
  bad_class.insert(bad_class.end(), short_tsig.begin(), short_tsig.end());
  bad_class[11] = 1;
  CHECK(ask(*world, bad_class).rcode() == LDNS_RCODE_FORMERR);
}
