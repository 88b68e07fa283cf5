// Response rate limiting: buckets by network, kind and question; slip;
// exemptions; log_only; the slip response itself.
#include <doctest/doctest.h>

#include <arpa/inet.h>

#include "fixture.hpp"
#include "server/rate_limit.hpp"

using namespace steerdns;
using server::RateAction;
using server::RateLimitConfig;
using server::RateLimiter;
using server::ResponseKind;
using test::make_query;

namespace {

const server::World& world() {
  static auto w = test::world_from({R"(zone: example.com
soa: {mname: ns1, rname: hostmaster, serial: 1}
ns: [ns1]
records:
  ns1: {A: 127.0.0.1}
  www: {A: 127.0.0.10}
  mail: {A: 127.0.0.25}
  sub: {NS: ns.example.net.}
)"});
  return *w;
}

sockaddr_storage address(const char* text) {
  sockaddr_storage s{};
  if (std::string(text).find(':') != std::string::npos) {
    auto& a = reinterpret_cast<sockaddr_in6&>(s);
    a.sin6_family = AF_INET6;
    REQUIRE(inet_pton(AF_INET6, text, &a.sin6_addr) == 1);
  } else {
    auto& a = reinterpret_cast<sockaddr_in&>(s);
    a.sin_family = AF_INET;
    REQUIRE(inet_pton(AF_INET, text, &a.sin_addr) == 1);
  }
  return s;
}

struct Response {
  std::vector<std::uint8_t> wire;
  server::AnswerInfo info;
};

Response respond(const std::string& name, ldns_rr_type type = LDNS_RR_TYPE_A) {
  Response r;
  r.wire.resize(512);
  r.info = server::answer(world(), make_query(name, type), r.wire, server::Transport::udp);
  r.wire.resize(r.info.size);
  return r;
}

// Sends N copies of R from CLIENT at NOW_MS; counts each action.
std::array<int, 3> send(RateLimiter& rrl, const char* client, const Response& r, int n,
                        std::uint64_t now_ms = 5000) {
  std::array<int, 3> counts{};
  const auto from = address(client);
  for (int i = 0; i < n; ++i) ++counts[static_cast<int>(rrl.check(from, r.wire, r.info, now_ms).action)];
  return counts;
}

RateLimitConfig config(unsigned rate, unsigned slip = 2) {
  RateLimitConfig c;
  c.responses_per_second = c.nxdomains_per_second = c.errors_per_second = rate;
  c.slip = slip;
  return c;
}

}  // namespace

TEST_CASE("rate limit: response kinds") {
  CHECK(server::classify_response(respond("www.example.com").wire, respond("www.example.com").info) ==
        ResponseKind::answer);
  const auto nodata = respond("www.example.com", LDNS_RR_TYPE_MX);
  CHECK(server::classify_response(nodata.wire, nodata.info) == ResponseKind::nodata);
  const auto nx = respond("nope.example.com");
  CHECK(server::classify_response(nx.wire, nx.info) == ResponseKind::nxdomain);
  const auto referral = respond("host.sub.example.com");
  CHECK(server::classify_response(referral.wire, referral.info) == ResponseKind::referral);
  const auto refused = respond("example.org");
  CHECK(server::classify_response(refused.wire, refused.info) == ResponseKind::error);
}

TEST_CASE("rate limit: over the rate, every second limited response slips, the others drop") {
  RateLimiter rrl(config(10, 2));
  const auto r = respond("www.example.com");
  const auto counts = send(rrl, "192.0.2.1", r, 30);
  CHECK(counts[static_cast<int>(RateAction::pass)] == 10);
  CHECK(counts[static_cast<int>(RateAction::slip)] == 10);
  CHECK(counts[static_cast<int>(RateAction::drop)] == 10);
  // The next second starts a new count.
  CHECK(send(rrl, "192.0.2.1", r, 10, 6000)[static_cast<int>(RateAction::pass)] == 10);
}

TEST_CASE("rate limit: slip 0 drops all, slip 1 slips all") {
  const auto r = respond("www.example.com");
  RateLimiter drop_all(config(5, 0));
  CHECK(send(drop_all, "192.0.2.1", r, 20)[static_cast<int>(RateAction::drop)] == 15);
  RateLimiter slip_all(config(5, 1));
  CHECK(send(slip_all, "192.0.2.1", r, 20)[static_cast<int>(RateAction::slip)] == 15);
}

TEST_CASE("rate limit: a network shares a bucket, another network has its own") {
  RateLimiter rrl(config(10));
  const auto r = respond("www.example.com");
  send(rrl, "192.0.2.1", r, 10);
  // Same /24: already at the rate.
  CHECK(send(rrl, "192.0.2.200", r, 1)[static_cast<int>(RateAction::pass)] == 0);
  // An IPv4-mapped IPv6 source is that IPv4 client.
  CHECK(send(rrl, "::ffff:192.0.2.9", r, 1)[static_cast<int>(RateAction::pass)] == 0);
  // Another /24 and another IPv6 /56 are not.
  CHECK(send(rrl, "192.0.3.1", r, 10)[static_cast<int>(RateAction::pass)] == 10);
  send(rrl, "2001:db8:0:100::1", r, 10);
  CHECK(send(rrl, "2001:db8:0:1ff::2", r, 1)[static_cast<int>(RateAction::pass)] == 0);
  CHECK(send(rrl, "2001:db8:0:200::1", r, 1)[static_cast<int>(RateAction::pass)] == 1);
}

TEST_CASE("rate limit: answers are counted by question, NXDOMAIN by zone") {
  RateLimiter rrl(config(5));
  send(rrl, "192.0.2.1", respond("www.example.com"), 5);
  CHECK(send(rrl, "192.0.2.1", respond("www.example.com"), 1)[static_cast<int>(RateAction::pass)] == 0);
  // Another name, or the same name in other letter case counted as the same.
  CHECK(send(rrl, "192.0.2.1", respond("mail.example.com"), 5)[static_cast<int>(RateAction::pass)] == 5);
  CHECK(send(rrl, "192.0.2.1", respond("WWW.Example.COM"), 1)[static_cast<int>(RateAction::pass)] == 0);
  // Random names that do not exist share the zone's NXDOMAIN bucket.
  int passed = 0;
  for (int i = 0; i < 20; ++i)
    passed += send(rrl, "192.0.2.1", respond("random" + std::to_string(i) + ".example.com"), 1)[0];
  CHECK(passed == 5);
}

TEST_CASE("rate limit: separate rates per kind; a kind at 0 is not limited") {
  RateLimitConfig c = config(0);
  c.nxdomains_per_second = 3;
  RateLimiter rrl(c);
  CHECK(send(rrl, "192.0.2.1", respond("www.example.com"), 100)[0] == 100);
  CHECK(send(rrl, "192.0.2.1", respond("nope.example.com"), 10)[0] == 3);
}

TEST_CASE("rate limit: exempt networks and log_only") {
  RateLimitConfig c = config(2);
  c.exempt.push_back(*geoip::parse_network("198.51.100.0/24"));
  RateLimiter rrl(c);
  const auto r = respond("www.example.com");
  CHECK(send(rrl, "198.51.100.7", r, 50)[0] == 50);
  CHECK(send(rrl, "192.0.2.1", r, 50)[0] == 2);

  RateLimitConfig lo = config(2);
  lo.log_only = true;
  RateLimiter logging(lo);
  int limited = 0;
  const auto from = address("192.0.2.1");
  for (int i = 0; i < 10; ++i) {
    const auto v = logging.check(from, r.wire, r.info, 1000);
    CHECK(v.action == RateAction::pass);
    limited += v.limited;
    if (i == 2) CHECK(v.started);
  }
  CHECK(limited == 8);
}

TEST_CASE("rate limit: the slip response is the question with TC=1 and no records") {
  auto r = respond("www.example.com");
  REQUIRE(r.info.size > 0);
  const std::size_t size = server::slip_response(r.wire, r.info.size);
  ldns_pkt* pkt = nullptr;
  REQUIRE(ldns_wire2pkt(&pkt, r.wire.data(), size) == LDNS_STATUS_OK);
  CHECK(ldns_pkt_tc(pkt));
  CHECK(ldns_pkt_qr(pkt));
  CHECK(ldns_pkt_id(pkt) == 0x1234);
  CHECK(ldns_pkt_qdcount(pkt) == 1);
  CHECK(ldns_pkt_ancount(pkt) == 0);
  CHECK(ldns_pkt_nscount(pkt) == 0);
  CHECK(ldns_pkt_arcount(pkt) == 0);
  ldns_pkt_free(pkt);
  CHECK(size == 12 + 17 + 4);
}

TEST_CASE("rate limit: geo answers by question and answered region, at their own rate") {
  RateLimitConfig c = config(2);
  c.geo_answers_per_second = 6;
  RateLimiter rrl(c);
  auto paris = respond("www.example.com");
  paris.info.geo = 0;
  paris.info.region = 0;
  CHECK(server::classify_response(paris.wire, paris.info) == ResponseKind::geo_answer);
  auto virginia = paris;
  virginia.info.region = 1;
  CHECK(send(rrl, "192.0.2.1", paris, 10)[static_cast<int>(RateAction::pass)] == 6);
  CHECK(send(rrl, "192.0.2.1", virginia, 10)[static_cast<int>(RateAction::pass)] == 6);
  // Static answers keep theirs.
  CHECK(send(rrl, "192.0.2.1", respond("www.example.com"), 10)[static_cast<int>(RateAction::pass)] == 2);
}

TEST_CASE("rate limit: a query with a valid server cookie is never limited; a client cookie alone is") {
  RateLimiter rrl(config(3));
  auto proven = respond("www.example.com");
  proven.info.cookie = server::CookieState::valid;
  CHECK(send(rrl, "192.0.2.1", proven, 50)[static_cast<int>(RateAction::pass)] == 50);
  auto first = respond("mail.example.com");
  first.info.cookie = server::CookieState::client_only;
  CHECK(send(rrl, "192.0.2.1", first, 10)[static_cast<int>(RateAction::pass)] == 3);
}
