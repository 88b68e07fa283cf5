// Metrics: the counters workers bump on the hot path, and their rendering
// in the Prometheus text format for the admin API.
//
// Thread contract: each worker writes only its own WorkerCounters and its
// own column of GeoCounters (one writer per cell: a relaxed load and store,
// no locked instruction, no shared cache line between workers). Any thread
// reads them, relaxed; a sum over workers may lag a few queries behind.
// GeoCounters::slot() locks, at load time only. Counters live as long as
// the Metrics object, across reloads: the same (geo name, region) keeps its
// slot, so a reload never resets a Prometheus counter.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "health/prober.hpp"
#include "server/answer.hpp"
#include "server/rate_limit.hpp"
#include "server/world.hpp"

namespace steerdns::server {

// One writer: no lock prefix (a worker owns the cell).
inline void bump(std::atomic<std::uint64_t>& cell, std::uint64_t n = 1) noexcept {
  cell.store(cell.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// Query types with a label of their own; every other type counts as "other",
// a question that could not be read as "none".
inline constexpr std::array<std::uint16_t, 18> kCountedQtypes{1,  2,  5,  6,  12, 15,  16,  28,  33,
                                                              35, 43, 48, 64, 65, 257, 255, 252, 251};
inline constexpr std::size_t kQtypeBuckets = kCountedQtypes.size() + 2;  // + other, none
// NOERROR..REFUSED, NOTAUTH, BADVERS, BADCOOKIE, other, and "dropped" (no
// answer sent).
inline constexpr std::size_t kRcodeBuckets = 11;

// Upper bounds of steerdns_answer_duration_seconds, in nanoseconds: 10 µs
// to 50 ms.
inline constexpr std::array<std::uint64_t, 11> kAnswerBucketsNs{10'000,    25'000,     50'000,    100'000,
                                                                250'000,   500'000,    1'000'000, 2'500'000,
                                                                5'000'000, 10'000'000, 50'000'000};

// CLOCK_MONOTONIC in nanoseconds (the vDSO: no system call).
inline std::uint64_t monotonic_ns() noexcept {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<std::uint64_t>(t.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(t.tv_nsec);
}

// One worker's steerdns_answer_duration_seconds histogram of one transport.
struct AnswerDurations {
  std::array<std::atomic<std::uint64_t>, kAnswerBucketsNs.size() + 1> counts{};  // per bucket, +Inf last
  std::atomic<std::uint64_t> sum_ns{0};

  // N answers that took NS each (a UDP batch: each of its answers). The
  // worker's own: a scan of 11 bounds and two bumps.
  void observe(std::uint64_t ns, std::uint64_t n = 1) noexcept {
    std::size_t b = 0;
    while (b < kAnswerBucketsNs.size() && ns > kAnswerBucketsNs[b]) ++b;
    bump(counts[b], n);
    bump(sum_ns, ns * n);
  }
};

struct alignas(64) WorkerCounters {
  std::array<std::array<std::array<std::atomic<std::uint64_t>, kRcodeBuckets>, kQtypeBuckets>, 2>
      queries{};  // [transport][qtype bucket][rcode bucket]
  std::atomic<std::uint64_t> truncated{0}, send_errors{0}, tcp_refused{0};
  // Queries with a COOKIE option, by what it was worth (CookieState
  // client_only, valid, invalid).
  std::array<std::atomic<std::uint64_t>, 3> cookies{};
  // UDP responses over their rate: [kind][action]; action pass counts what
  // log_only let through.
  std::array<std::array<std::atomic<std::uint64_t>, kRateActions>, kResponseKinds> rate_limited{};
  // TCP connections closed at accept (the client's limit) and by timeout.
  std::atomic<std::uint64_t> tcp_client_refused{0}, tcp_idle_timeouts{0}, tcp_query_timeouts{0};
  // accept() failures (EMFILE at the descriptor limit, ENFILE, ENOBUFS, ...).
  std::atomic<std::uint64_t> tcp_accept_errors{0};
  // From a query's receipt in userspace to its answer handed to the kernel,
  // by transport (udp, tcp).
  std::array<AnswerDurations, 2> answer_duration{};

  void count(Transport transport, const AnswerInfo& info) noexcept;
  std::uint64_t total(Transport transport) const noexcept;
};

// Counters by (geo name, label) that outlive reloads. Capacity is fixed
// (kCapacity slots); keys past it share one uncounted slot, with a warning.
class GeoCounters {
 public:
  static constexpr std::uint32_t kCapacity = 16384;
  explicit GeoCounters(unsigned workers);

  // Load time, any thread: the slot of KEY; the same key, the same slot.
  std::uint32_t slot(const std::string& key);
  // Hot path: WORKER's cell of SLOT.
  void add(unsigned worker, std::uint32_t slot) noexcept { bump(columns_[worker][slot]); }
  std::uint64_t total(std::uint32_t slot) const noexcept;

 private:
  std::vector<std::unique_ptr<std::atomic<std::uint64_t>[]>> columns_;  // per worker, kCapacity + 1
  std::mutex mutex_;
  std::unordered_map<std::string, std::uint32_t> slots_;
};

struct ReloadStats {
  std::atomic<std::uint64_t> succeeded{0}, failed{0};
  std::atomic<double> last_time{0};      // seconds since the epoch; 0: none yet
  std::atomic<double> last_duration{0};  // seconds
  std::atomic<bool> last_ok{true};
  mutable std::mutex mutex;
  std::string last_error;  // under mutex
};

class Dnstap;  // server/dnstap.hpp

struct Metrics {
  explicit Metrics(unsigned workers);

  std::vector<std::unique_ptr<WorkerCounters>> workers;
  GeoCounters geo;
  ReloadStats reloads;
  std::atomic<unsigned> tcp_connections{0};
  double start_time = 0;           // seconds since the epoch
  const Dnstap* dnstap = nullptr;  // set while a runtime with dnstap runs

  // Gives every geo name of WORLD its counter slots (World::geo_counters).
  void assign(World& world);
  // Hot path: counts one answer of WORKER on WORLD.
  void count(unsigned worker, const World& world, Transport transport, const AnswerInfo& info) noexcept {
    workers[worker]->count(transport, info);
    if (info.geo >= world.geo_counters.size()) return;
    const GeoCounterSlots& g = world.geo_counters[info.geo];
    geo.add(worker, info.region == AnswerInfo::kNoRegion ? g.none : g.regions[info.region]);
    if (info.degraded) geo.add(worker, g.degraded);
    if (info.all_down) geo.add(worker, g.all_down);
  }
};

// Every steerdns_* family and the standard process_* ones in the Prometheus
// text format (version 0.0.4). Scrape time: reads /proc (server/process.hpp).
std::string render_metrics(const Metrics& metrics, const World& world, std::uint64_t generation,
                           const health::Table& table, const health::Status& status,
                           const health::ProbeStats& probes);

namespace prometheus {
class Text;  // server/prometheus.hpp
}
// The health families (server/metrics_health.cpp): regions and VIPs served,
// VIPs up and their transitions, all-down now, overrides, probes.
void render_health(prometheus::Text& out, const World& world, const health::Table& table,
                   const health::Status& status, const health::ProbeStats& probes);

// The label and JSON names of an all-down policy: "serve-nearest", ...
std::string_view all_down_name(zones::AllDown policy) noexcept;

}  // namespace steerdns::server
