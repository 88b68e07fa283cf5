// answer() must not allocate (DESIGN.md: the hot path is allocation-free).
// This binary's global operator new counts calls on the current thread.
#include <doctest/doctest.h>

#include <cstdlib>
#include <new>

#include "fixture.hpp"

namespace {
thread_local std::size_t allocations = 0;
}

void* operator new(std::size_t size) {
  ++allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using namespace steerdns;

TEST_CASE("answer() allocates nothing, whatever the query") {
  const std::string zone = R"(zone: example.com
soa: {mname: ns1, rname: h}
ns: [ns1, ns2]
records:
  ns1: {A: 127.0.0.1}
  www: {A: [127.0.0.10, 127.0.0.11]}
  c: {CNAME: www}
  "*.w": {TXT: hello}
  sub: {NS: ns.sub}
  ns.sub: {A: 127.0.0.2}
)";
  auto world = test::world_from({zone});
  std::vector<std::vector<std::uint8_t>> queries;
  for (const char* name : {"www.example.com.", "c.example.com.", "x.w.example.com.",
                           "nope.example.com.", "a.sub.example.com.", "example.org."})
    for (ldns_rr_type type : {LDNS_RR_TYPE_A, LDNS_RR_TYPE_TXT, LDNS_RR_TYPE_ANY, LDNS_RR_TYPE_NS})
      queries.push_back(test::make_query(name, type, {.edns = true}));
  auto garbage = queries.front();
  garbage[5] = 3;  // QDCOUNT 3
  queries.push_back(garbage);
  std::vector<std::uint8_t> out(server::kMaxTcpMessage);

  const std::size_t before = allocations;
  std::size_t answered = 0;
  for (const auto& q : queries)
    for (auto transport : {server::Transport::udp, server::Transport::tcp})
      answered += server::answer(*world, q, out, transport).size > 0;
  CHECK(allocations == before);
  CHECK(answered == 2 * queries.size());
}
