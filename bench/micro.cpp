// micro: Google Benchmark micro-benchmarks of the DNS hot path, answer()
// and the geo classifier, on the example zone (examples/zones/example.com.yaml)
// compiled against the built-in world database, with a health table as the
// prober would publish it.
//
//   build/bench/micro [--benchmark_filter=REGEX] [--benchmark_repetitions=N]
//
// Queries are built as bytes the way dig sends them: RD and AD set, an OPT
// record (payload 1232) with a client COOKIE option and, for the ECS cases,
// an EDNS Client Subnet option before it. Geo cases rotate through 4096
// distinct client subnets (80% IPv4 /24, 20% IPv6 /48 in 2000::/3, fixed
// seed, only networks the database places), so the classifier's binary
// search touches memory the way real traffic does. Setup answers every
// packet once and aborts if the answer is not the one meant to be measured.
#include <benchmark/benchmark.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "geoip/geoip.hpp"
#include "health/registry.hpp"
#include "server/answer.hpp"
#include "server/failover.hpp"
#include "server/world.hpp"
#include "zones/zone.hpp"

namespace {

using namespace steerdns;

constexpr std::size_t kClients = 4096;
constexpr std::uint16_t kTypeA = 1, kTypeOpt = 41;
constexpr std::uint16_t kOptionEcs = 8, kOptionCookie = 10;

// ----------------------------------------------------------------------------
// Setup checks: a benchmark must never silently measure an error path.

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "micro: setup check failed: %s\n", what.c_str());
  std::abort();
}

void expect(bool ok, const std::string& what) {
  if (!ok) fail(what);
}

// ----------------------------------------------------------------------------
// Packets, as dig sends them.

struct Ecs {
  std::uint16_t family = 0;  // 1 = IPv4, 2 = IPv6
  std::uint8_t source = 0;   // SOURCE PREFIX-LENGTH
  std::array<std::uint8_t, 16> address{};
};

void put16(std::vector<std::uint8_t>& q, std::uint16_t v) {
  q.push_back(static_cast<std::uint8_t>(v >> 8));
  q.push_back(static_cast<std::uint8_t>(v));
}

// NAME is presentation text without the trailing dot ("www.example.com").
std::vector<std::uint8_t> make_query(std::string_view name, std::uint16_t qtype, const Ecs* ecs,
                                     std::uint16_t id) {
  std::vector<std::uint8_t> q;
  put16(q, id);
  q.push_back(0x01);  // RD
  q.push_back(0x20);  // AD (dig sets it by default)
  put16(q, 1);        // QDCOUNT
  put16(q, 0);
  put16(q, 0);
  put16(q, 1);  // ARCOUNT: OPT
  for (std::size_t start = 0; start < name.size();) {
    std::size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    q.push_back(static_cast<std::uint8_t>(dot - start));
    q.insert(q.end(), name.begin() + static_cast<long>(start), name.begin() + static_cast<long>(dot));
    start = dot + 1;
  }
  q.push_back(0);
  put16(q, qtype);
  put16(q, 1);  // IN
  // OPT: root owner, type, payload 1232, extended rcode 0, version 0, flags 0.
  q.push_back(0);
  put16(q, kTypeOpt);
  put16(q, 1232);
  q.insert(q.end(), {0, 0, 0, 0});
  const std::size_t rdlen_at = q.size();
  put16(q, 0);
  if (ecs != nullptr) {
    const std::size_t bytes = (ecs->source + 7u) / 8u;
    put16(q, kOptionEcs);
    put16(q, static_cast<std::uint16_t>(4 + bytes));
    put16(q, ecs->family);
    q.push_back(ecs->source);
    q.push_back(0);  // SCOPE PREFIX-LENGTH: 0 in queries
    q.insert(q.end(), ecs->address.begin(), ecs->address.begin() + static_cast<long>(bytes));
  }
  // A client cookie (RFC 7873), 8 octets, as dig adds by default.
  put16(q, kOptionCookie);
  put16(q, 8);
  q.insert(q.end(), {0x5e, 0x3a, 0x91, 0x0c, 0x7d, 0x42, 0xe8, 0x13});
  const std::size_t rdlen = q.size() - rdlen_at - 2;
  q[rdlen_at] = static_cast<std::uint8_t>(rdlen >> 8);
  q[rdlen_at + 1] = static_cast<std::uint8_t>(rdlen);
  return q;
}

sockaddr_storage v4_source(std::uint32_t address) {
  sockaddr_storage ss{};
  auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
  sin->sin_family = AF_INET;
  sin->sin_port = htons(53000);
  sin->sin_addr.s_addr = htonl(address);
  return ss;
}

sockaddr_storage v6_source(geoip::Address6 address) {
  sockaddr_storage ss{};
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(53000);
  for (int i = 0; i < 16; ++i)
    sin6->sin6_addr.s6_addr[i] = static_cast<std::uint8_t>(address >> (8 * (15 - i)));
  return ss;
}

// ----------------------------------------------------------------------------
// Answers, read back just enough to check them.

struct Decoded {
  std::uint16_t rcode = 0;  // extended
  bool aa = false;
  std::uint16_t an = 0, ns = 0, ar = 0;
  std::vector<std::string> addresses;  // A records of the answer section
  int ecs_scope = -1;                  // -1: no ECS option echoed
};

std::uint16_t u16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }

bool skip_name(std::span<const std::uint8_t> m, std::size_t& pos) {
  while (pos < m.size()) {
    const std::uint8_t len = m[pos];
    if ((len & 0xC0) == 0xC0) {
      pos += 2;
      return pos <= m.size();
    }
    pos += 1 + len;
    if (len == 0) return true;
  }
  return false;
}

Decoded decode(std::span<const std::uint8_t> m) {
  Decoded d;
  expect(m.size() >= 12, "answer shorter than a header");
  d.aa = (m[2] & 0x04) != 0;
  d.rcode = m[3] & 0x0F;
  expect(u16(&m[4]) == 1, "answer without its question");
  d.an = u16(&m[6]);
  d.ns = u16(&m[8]);
  d.ar = u16(&m[10]);
  std::size_t pos = 12;
  expect(skip_name(m, pos) && pos + 4 <= m.size(), "bad question in answer");
  pos += 4;
  const std::size_t records = std::size_t{d.an} + d.ns + d.ar;
  for (std::size_t i = 0; i < records; ++i) {
    expect(skip_name(m, pos) && pos + 10 <= m.size(), "bad record in answer");
    const std::uint16_t type = u16(&m[pos]);
    const std::size_t rdlen = u16(&m[pos + 8]);
    const std::size_t rdata = pos + 10;
    expect(rdata + rdlen <= m.size(), "record past the end of the answer");
    if (i < d.an && type == kTypeA && rdlen == 4) {
      char text[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &m[rdata], text, sizeof text);
      d.addresses.emplace_back(text);
    }
    if (type == kTypeOpt) {
      d.rcode = static_cast<std::uint16_t>(d.rcode | m[pos + 4] << 4);
      for (std::size_t at = rdata; at + 4 <= rdata + rdlen;) {
        const std::uint16_t code = u16(&m[at]);
        const std::size_t len = u16(&m[at + 2]);
        if (code == kOptionEcs && len >= 4) d.ecs_scope = m[at + 4 + 3];
        at += 4 + len;
      }
    }
    pos = rdata + rdlen;
  }
  return d;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return "[" + out + "]";
}

// ----------------------------------------------------------------------------
// Clients: distinct subnets worldwide that the database places (the scheme
// of bench/loadgen.cpp: fixed seed, 4 IPv4 /24 for 1 IPv6 /48 in 2000::/3).

struct Client {
  bool v6 = false;
  geoip::Address6 subnet = 0;           // the ECS address (IPv4 in the low 32 bits)
  sockaddr_storage source{};            // a host inside it, for the no-ECS cases
  std::vector<std::uint8_t> ecs_query;  // A artifacts.example.com with ECS
};

bool reserved_v4(std::uint32_t a) {
  const std::uint8_t o1 = a >> 24, o2 = (a >> 16) & 0xff;
  return o1 == 0 || o1 == 10 || o1 == 127 || o1 >= 224 || (o1 == 100 && (o2 & 0xc0) == 64) ||
         (o1 == 169 && o2 == 254) || (o1 == 172 && (o2 & 0xf0) == 16) || (o1 == 192 && o2 == 168);
}

// Draws clients from SEED until KEEP has accepted COUNT of them.
template <class Keep>
std::vector<Client> make_clients(std::uint64_t seed, std::size_t count, const geoip::Database& db,
                                 Keep keep) {
  std::mt19937_64 rng(seed);
  std::set<std::pair<bool, geoip::Address6>> seen;
  std::vector<Client> out;
  for (std::size_t draw = 0; out.size() < count; ++draw) {
    expect(draw < 50'000'000, "could not draw enough client subnets (seed " + std::to_string(seed) + ")");
    Client c;
    c.v6 = out.size() % 5 == 4;
    Ecs ecs;
    if (c.v6) {
      const std::uint64_t hi = (rng() & 0x1fffffffffffull) | 0x200000000000ull;  // a /48 in 2000::/3
      c.subnet = geoip::Address6{hi} << 80;
      const geoip::Address6 host = c.subnet | rng();
      c.source = v6_source(host);
      ecs.family = 2;
      ecs.source = 48;
      for (int b = 0; b < 6; ++b) ecs.address[b] = static_cast<std::uint8_t>(hi >> (8 * (5 - b)));
    } else {
      std::uint32_t a;
      do a = static_cast<std::uint32_t>(rng()) & 0xffffff00u;
      while (reserved_v4(a));
      c.subnet = a;
      c.source = v4_source(a | static_cast<std::uint32_t>(1 + rng() % 254));
      ecs.family = 1;
      ecs.source = 24;
      for (int b = 0; b < 3; ++b) ecs.address[b] = static_cast<std::uint8_t>(a >> (24 - 8 * b));
    }
    if (db.find(c.v6, c.subnet).place == 0) continue;  // unallocated space: no resolver sends it
    if (!keep(c) || !seen.insert({c.v6, c.subnet}).second) continue;
    c.ecs_query = make_query("artifacts.example.com", kTypeA, &ecs, static_cast<std::uint16_t>(out.size()));
    out.push_back(std::move(c));
  }
  return out;
}

// ----------------------------------------------------------------------------
// The world, the health tables and the packets, built once.

struct Fixture {
  std::shared_ptr<server::World> world;
  const zones::GeoName* geo = nullptr;
  std::uint8_t paris = 0, virginia = 0, singapore = 0;
  health::Table all_up, paris_down, all_down;
  sockaddr_storage resolver{};  // the source of ECS queries: a resolver's address

  std::vector<std::uint8_t> www_query;
  std::vector<std::uint8_t> geo_query;  // no ECS
  std::vector<std::vector<std::uint8_t>> nx_queries;
  std::vector<Client> clients;          // worldwide
  std::vector<Client> paris_clients;    // whose first choice is paris
  std::vector<geoip::Address6> v4, v6;  // the clients' subnets, by family

  Fixture();
};

std::uint8_t region_index(const zones::GeoName& geo, const std::string& name) {
  for (std::size_t i = 0; i < geo.regions.size(); ++i)
    if (geo.regions[i].name == name) return static_cast<std::uint8_t>(i);
  fail("the example zone has no region " + name);
}

struct Asked {
  server::AnswerInfo info;
  Decoded d;
};

Asked ask(const Fixture& f, const health::Table& table, const std::vector<std::uint8_t>& query,
          const sockaddr_storage* source) {
  std::array<std::uint8_t, 4096> out{};
  Asked a;
  a.info = server::answer(*f.world, table, query, out, server::Transport::udp, source);
  expect(a.info.size > 0, "answer() dropped a query");
  a.d = decode({out.data(), a.info.size});
  return a;
}

Fixture::Fixture() {
  // The example zone as shipped, and the built-in database.
  std::vector<std::unique_ptr<zones::Zone>> zs;
  zs.push_back(zones::load_zone(STEERDNS_SOURCE_DIR "/examples/zones/example.com.yaml"));
  world = std::make_shared<server::World>();
  world->zones = zones::ZoneTable(std::move(zs));
  server::compile_geo(*world, STEERDNS_BENCH_MMDB);
  expect(world->zones.geo_names().size() == 1, "the example zone should have one geo name");
  geo = world->zones.geo_names().front();
  expect(zones::name_to_text(geo->owner) == "artifacts.example.com.", "the geo name is not artifacts");
  paris = region_index(*geo, "paris");
  virginia = region_index(*geo, "virginia");
  singapore = region_index(*geo, "singapore");

  // Health as the prober publishes it: slots from a registry, then tables.
  health::Registry registry;
  const health::Slots slots = registry.apply(server::plan_health(*world)).slots;
  server::assign_health(*world, slots);
  expect(world->geo_health.size() == 1, "no health slots for the geo name");
  all_up = registry.table();
  const health::Result refused{false, health::Reason::refused, "refused"};
  const server::RegionHealth& ph = world->geo_health[0].regions[paris];
  for (const auto* vips : {&ph.a, &ph.aaaa})
    for (std::uint32_t slot : *vips) registry.record(slot, refused, {});
  paris_down = registry.table();
  for (std::uint32_t slot : slots.vips) registry.record(slot, refused, {});
  all_down = registry.table();
  expect(server::region_state(*world, all_up, *geo, paris).up(), "paris not served with every VIP up");
  expect(!server::region_state(*world, paris_down, *geo, paris).up(),
         "paris still served with its VIPs down");
  expect(server::region_state(*world, paris_down, *geo, virginia).up(), "virginia not served");

  resolver = v4_source(0xC633640A);  // 198.51.100.10

  www_query = make_query("www.example.com", kTypeA, nullptr, 1);
  geo_query = make_query("artifacts.example.com", kTypeA, nullptr, 2);
  for (int i = 0; i < 1024; ++i)
    nx_queries.push_back(make_query("nx" + std::to_string(i) + ".example.com", kTypeA, nullptr,
                                    static_cast<std::uint16_t>(i)));

  const geoip::Database& db = *world->geo_database;
  const geoip::Classifier& classifier = world->classifiers[geo->id];
  clients = make_clients(7871, kClients, db, [](const Client&) { return true; });
  paris_clients = make_clients(7872, kClients, db, [&](const Client& c) {
    return classifier.lists()[classifier.classify(c.v6, c.subnet).list].front() == paris;
  });
  for (const auto& c : clients) (c.v6 ? v6 : v4).push_back(c.subnet);

  // --- The answers meant to be measured. ---
  {
    const Asked a = ask(*this, all_up, www_query, &resolver);
    expect(a.d.rcode == server::rcode::NOERROR && a.d.aa &&
               a.d.addresses == std::vector<std::string>{"127.0.0.10"},
           "www.example.com A: got rcode " + std::to_string(a.d.rcode) + " " + join(a.d.addresses));
  }
  // A Paris subnet (193.51.24.0/24, RENATER): paris; with paris down, virginia.
  Ecs paris_ecs{1, 24, {193, 51, 24}};
  const auto paris_query = make_query("artifacts.example.com", kTypeA, &paris_ecs, 3);
  {
    const Asked a = ask(*this, all_up, paris_query, &resolver);
    expect(a.info.region == paris && !a.info.degraded &&
               a.d.addresses == std::vector<std::string>{"127.1.0.1", "127.1.0.2"} && a.d.ecs_scope > 0,
           "193.51.24.0/24 should get paris's VIPs, got " + join(a.d.addresses));
    const Asked b = ask(*this, paris_down, paris_query, &resolver);
    expect(b.info.region == virginia && b.info.degraded &&
               b.d.addresses == std::vector<std::string>{"127.2.0.1", "127.2.0.2"},
           "193.51.24.0/24 with paris down should fail over to virginia, got " + join(b.d.addresses));
    const Asked c = ask(*this, all_down, paris_query, &resolver);
    expect(c.info.all_down && c.info.region == paris &&
               c.d.addresses == std::vector<std::string>{"127.1.0.1", "127.1.0.2"},
           "193.51.24.0/24 with everything down should get paris (serve-nearest), got " +
               join(c.d.addresses));
  }
  // Every rotating packet, once, on the path its benchmark measures.
  unsigned by_region[3] = {}, failover_to[3] = {};
  for (const auto& c : clients) {
    const Asked a = ask(*this, all_up, c.ecs_query, &resolver);
    expect(a.d.rcode == server::rcode::NOERROR && a.info.region != server::AnswerInfo::kNoRegion &&
               a.d.addresses.size() == 2 && !a.info.degraded && a.d.ecs_scope >= 0,
           "geo+ECS answer for a worldwide client");
    ++by_region[a.info.region];
    const Asked b = ask(*this, all_up, geo_query, &c.source);
    expect(b.d.rcode == server::rcode::NOERROR && b.info.region == a.info.region && b.d.ecs_scope == -1 &&
               b.d.addresses.size() == 2,
           "geo answer by source address differs from the one by ECS");
    const Asked d = ask(*this, all_down, c.ecs_query, &resolver);
    expect(d.info.all_down && d.info.region == a.info.region && d.d.addresses.size() == 2,
           "all-down (serve-nearest) answer");
  }
  for (const auto& c : paris_clients) {
    const Asked a = ask(*this, paris_down, c.ecs_query, &resolver);
    expect(a.d.rcode == server::rcode::NOERROR && a.info.degraded && !a.info.all_down &&
               a.info.region != paris && a.info.region != server::AnswerInfo::kNoRegion &&
               a.d.addresses.size() == 2,
           "failover answer for a client of paris");
    ++failover_to[a.info.region];
  }
  for (const auto& q : nx_queries) {
    const Asked a = ask(*this, all_up, q, &resolver);
    expect(a.d.rcode == server::rcode::NXDOMAIN && a.d.ns == 1, "NXDOMAIN answer");
  }
  std::fprintf(stderr,
               "micro: %zu clients (%zu IPv4 /24, %zu IPv6 /48): first choice paris %u, virginia %u, "
               "singapore %u; %zu clients of paris fail over to virginia %u, singapore %u\n",
               clients.size(), v4.size(), v6.size(), by_region[paris], by_region[virginia],
               by_region[singapore], paris_clients.size(), failover_to[virginia], failover_to[singapore]);
}

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

// ----------------------------------------------------------------------------
// Benchmarks. Each iteration is one answer() (or one classify()), into a
// buffer the size of a worker's UDP buffer.

using Out = std::array<std::uint8_t, 4096>;

void BM_answer_static(benchmark::State& state) {
  const Fixture& f = fixture();
  alignas(64) Out out;
  for (auto _ : state) {
    const auto info = server::answer(*f.world, f.all_up, f.www_query, out, server::Transport::udp,
                                     &f.resolver);
    benchmark::DoNotOptimize(info);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_answer_static);

// Rotates through CLIENTS' ECS packets, with TABLE.
void answer_rotating(benchmark::State& state, const std::vector<Client>& clients,
                     const health::Table& table) {
  const Fixture& f = fixture();
  alignas(64) Out out;
  std::size_t i = 0;
  for (auto _ : state) {
    const auto info = server::answer(*f.world, table, clients[i].ecs_query, out, server::Transport::udp,
                                     &f.resolver);
    benchmark::DoNotOptimize(info);
    if (++i == clients.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_answer_geo_ecs(benchmark::State& state) {
  answer_rotating(state, fixture().clients, fixture().all_up);
}
BENCHMARK(BM_answer_geo_ecs);

void BM_answer_geo_no_ecs(benchmark::State& state) {
  const Fixture& f = fixture();
  alignas(64) Out out;
  std::size_t i = 0;
  for (auto _ : state) {
    const auto info = server::answer(*f.world, f.all_up, f.geo_query, out, server::Transport::udp,
                                     &f.clients[i].source);
    benchmark::DoNotOptimize(info);
    if (++i == f.clients.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_answer_geo_no_ecs);

void BM_answer_nxdomain(benchmark::State& state) {
  const Fixture& f = fixture();
  alignas(64) Out out;
  std::size_t i = 0;
  for (auto _ : state) {
    const auto info = server::answer(*f.world, f.all_up, f.nx_queries[i], out, server::Transport::udp,
                                     &f.resolver);
    benchmark::DoNotOptimize(info);
    if (++i == f.nx_queries.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_answer_nxdomain);

// Clients whose first choice is paris, with paris's VIPs down: the walk
// skips paris and answers with the next region, degraded.
void BM_answer_failover(benchmark::State& state) {
  answer_rotating(state, fixture().paris_clients, fixture().paris_down);
}
BENCHMARK(BM_answer_failover);

// Every VIP down: the whole list is walked, then serve-nearest answers.
void BM_answer_all_down(benchmark::State& state) {
  answer_rotating(state, fixture().clients, fixture().all_down);
}
BENCHMARK(BM_answer_all_down);

void classify_rotating(benchmark::State& state, bool v6, const std::vector<geoip::Address6>& addresses) {
  const Fixture& f = fixture();
  const geoip::Classifier& classifier = f.world->classifiers[f.geo->id];
  std::size_t i = 0;
  for (auto _ : state) {
    const geoip::Classification c = classifier.classify(v6, addresses[i]);
    benchmark::DoNotOptimize(c);
    if (++i == addresses.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["blocks"] = static_cast<double>(classifier.block_count(v6));
}

void BM_classify_v4(benchmark::State& state) { classify_rotating(state, false, fixture().v4); }
BENCHMARK(BM_classify_v4);

void BM_classify_v6(benchmark::State& state) { classify_rotating(state, true, fixture().v6); }
BENCHMARK(BM_classify_v6);

// No BM_parse_only: the query parser (parse_query) is internal to
// server/answer.cpp, not a public function.

}  // namespace

BENCHMARK_MAIN();
