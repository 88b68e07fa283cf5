// answer() must not allocate (DESIGN.md: the hot path is allocation-free).
// This binary's global operator new counts calls on the current thread.
#include <doctest/doctest.h>

#include <cstdlib>
#include <new>

#include "fixture.hpp"
#include "health/registry.hpp"
#include "server/metrics.hpp"

namespace {
thread_local std::size_t allocations = 0;
}

void* operator new(std::size_t size) {
  ++allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  ++allocations;
  return std::malloc(size == 0 ? 1 : size);
}
void* operator new[](std::size_t size) { return operator new(size); }
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept { return operator new(size, tag); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

using namespace steerdns;

TEST_CASE("answer() allocates nothing, whatever the query") {
  const std::string zone = R"(zone: example.com
soa: {mname: ns1, rname: h}
ns: [ns1, ns2]
records:
  ns1: {A: 127.0.0.1}
  ns2: {A: 127.0.0.3}
  www: {A: [127.0.0.10, 127.0.0.11]}
  c: {CNAME: www}
  "*.w": {TXT: hello}
  sub: {NS: ns.sub}
  ns.sub: {A: 127.0.0.2}
  r: {CNAME: geo}
regions:
  paris: {location: [48.86, 2.35], vips: [127.1.0.1]}
  singapore: {location: [1.29, 103.85], vips: [127.3.0.1, "::1"]}
geo:
  geo: {regions: [paris, singapore], check: {type: tcp, port: 1}}
)";
  auto world = test::world_from({zone});
  world->identity = "ns1.test";
  world->cookies.enabled = true;
  server::compile_geo(*world, STEERDNS_TEST_MMDB);
  // Health: paris's VIP down (failover), and every VIP down (all-down policy).
  health::Registry registry;
  const health::Plan plan = server::plan_health(*world);
  const health::Slots slots = registry.apply(plan).slots;
  server::assign_health(*world, slots);
  registry.record(slots.vips[0], {false, health::Reason::refused, "refused"}, {});
  const health::Table failover = registry.table();
  for (std::uint32_t slot : slots.vips)
    registry.record(slot, {false, health::Reason::refused, "refused"}, {});
  const health::Table all_down = registry.table();
  const health::Table all_up;
  std::vector<std::vector<std::uint8_t>> queries;
  for (const char* name : {"www.example.com.", "c.example.com.", "x.w.example.com.", "nope.example.com.",
                           "a.sub.example.com.", "example.org.", "geo.example.com.", "r.example.com."})
    for (ldns_rr_type type : {LDNS_RR_TYPE_A, LDNS_RR_TYPE_TXT, LDNS_RR_TYPE_ANY, LDNS_RR_TYPE_NS})
      queries.push_back(test::make_query(name, type, {.edns = true}));
  for (auto q : {queries[queries.size() - 1], queries[queries.size() - 5]}) {
    // The same with ECS 193.51.24.0/24 (OPT is last; its rdlength was 0).
    q.back() = 11;
    for (int b : {0, 8, 0, 7, 0, 1, 24, 0, 193, 51, 24}) q.push_back(static_cast<std::uint8_t>(b));
    queries.push_back(q);
  }
  // Cookies (client only, and a bogus server cookie), NSID and keepalive.
  for (const std::vector<std::uint8_t>& cookie :
       {std::vector<std::uint8_t>(8, 7), std::vector<std::uint8_t>(24, 9)}) {
    auto q = test::make_query("geo.example.com.", LDNS_RR_TYPE_A, {.edns = true});
    test::add_option(q, server::kOptionCookie, cookie);
    test::add_option(q, server::kOptionNsid, {});
    test::add_option(q, server::kOptionKeepalive, {});
    queries.push_back(q);
  }
  // CHAOS identity.
  queries.push_back(test::make_query("id.server.", LDNS_RR_TYPE_TXT, {.qclass = LDNS_RR_CLASS_CH}));
  auto garbage = queries.front();
  garbage[5] = 3;  // QDCOUNT 3
  queries.push_back(garbage);
  std::vector<std::uint8_t> out(server::kMaxTcpMessage);

  const std::size_t before = allocations;
  std::size_t answered = 0;
  sockaddr_storage source{};
  source.ss_family = AF_INET;
  for (const health::Table* table : {&all_up, &failover, &all_down})
    for (const auto& q : queries)
      for (auto transport : {server::Transport::udp, server::Transport::tcp})
        answered += server::answer(*world, *table, q, out, transport, &source, 1'800'000'000).size > 0;
  CHECK(allocations == before);
  CHECK(answered == 6 * queries.size());
}

TEST_CASE("counting an answer and its duration allocates nothing") {
  auto world = test::world_from(
      {"zone: example.com\nsoa: {mname: ns1, rname: h}\nns: [ns1]\n"
       "records:\n  ns1: {A: 127.0.0.1}\n"});
  server::Metrics metrics(1);
  metrics.assign(*world);
  server::AnswerInfo info;
  info.qtype = 1;
  info.size = 40;
  const std::size_t before = allocations;
  for (std::uint64_t ns : {1ull, 10'000ull, 49'999'999ull, 1'000'000'000ull}) {
    metrics.count(0, *world, server::Transport::udp, info);
    metrics.workers[0]->answer_duration[0].observe(ns, 64);
    metrics.workers[0]->answer_duration[1].observe(server::monotonic_ns() - ns);
  }
  CHECK(allocations == before);
  CHECK(metrics.workers[0]->total(server::Transport::udp) == 4);
}
