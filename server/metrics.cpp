#include "server/metrics.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>

#include "server/dnstap.hpp"
#include "server/process.hpp"
#include "server/prometheus.hpp"
#include "server/text.hpp"
#include "zones/name.hpp"

#ifndef STEERDNS_VERSION
#define STEERDNS_VERSION "0.0.0"
#endif

namespace steerdns::server {

namespace {

// Bucket of each qtype below 256, built at compile time: counting a query
// is one load, not a scan of kCountedQtypes (CAA, 257, is the only counted
// type above 255).
constexpr auto kQtypeBucketOf = [] {
  std::array<std::uint8_t, 256> table{};
  table.fill(static_cast<std::uint8_t>(kCountedQtypes.size()));  // other
  for (std::size_t i = 0; i < kCountedQtypes.size(); ++i)
    if (kCountedQtypes[i] < 256) table[kCountedQtypes[i]] = static_cast<std::uint8_t>(i);
  table[0] = static_cast<std::uint8_t>(kCountedQtypes.size() + 1);  // none: no question
  return table;
}();
constexpr std::size_t kCaaBucket = [] {
  std::size_t i = 0;
  while (kCountedQtypes[i] != 257) ++i;
  return i;
}();
static_assert(std::count_if(kCountedQtypes.begin(), kCountedQtypes.end(), [](auto t) { return t > 255; }) ==
              1);

std::size_t qtype_bucket(std::uint16_t qtype) noexcept {
  if (qtype < 256) return kQtypeBucketOf[qtype];
  return qtype == 257 ? kCaaBucket : kCountedQtypes.size();
}

std::size_t rcode_bucket(const AnswerInfo& info) noexcept {
  if (info.size == 0) return 10;
  if (info.rcode <= rcode::REFUSED) return info.rcode;
  if (info.rcode == rcode::NOTAUTH) return 6;
  if (info.rcode == rcode::BADVERS) return 7;
  return info.rcode == rcode::BADCOOKIE ? 8 : 9;
}

std::string qtype_label(std::size_t bucket) {
  if (bucket < kCountedQtypes.size()) return qtype_text(kCountedQtypes[bucket]);
  return bucket == kCountedQtypes.size() ? "other" : "none";
}

const char* rcode_label(std::size_t bucket) {
  static const char* const names[kRcodeBuckets] = {"NOERROR",   "FORMERR", "SERVFAIL", "NXDOMAIN",
                                                   "NOTIMP",    "REFUSED", "NOTAUTH",  "BADVERS",
                                                   "BADCOOKIE", "other",   "dropped"};
  return names[bucket];
}

}  // namespace

std::string_view all_down_name(zones::AllDown policy) noexcept {
  switch (policy) {
    case zones::AllDown::serve_nearest: return "serve-nearest";
    case zones::AllDown::fallback: return "fallback";
    case zones::AllDown::nodata: return "nodata";
    case zones::AllDown::servfail: return "servfail";
  }
  return "?";
}

void WorkerCounters::count(Transport transport, const AnswerInfo& info) noexcept {
  bump(queries[transport == Transport::tcp][qtype_bucket(info.qtype)][rcode_bucket(info)]);
  if (info.truncated) bump(truncated);
  if (info.cookie != CookieState::none) bump(cookies[static_cast<std::size_t>(info.cookie) - 1]);
}

std::uint64_t WorkerCounters::total(Transport transport) const noexcept {
  std::uint64_t n = 0;
  for (const auto& by_rcode : queries[transport == Transport::tcp])
    for (const auto& cell : by_rcode) n += cell.load(std::memory_order_relaxed);
  return n;
}

GeoCounters::GeoCounters(unsigned workers) {
  for (unsigned i = 0; i < workers; ++i)
    columns_.push_back(std::make_unique<std::atomic<std::uint64_t>[]>(kCapacity + 1));
}

std::uint32_t GeoCounters::slot(const std::string& key) {
  std::lock_guard lock(mutex_);
  if (auto it = slots_.find(key); it != slots_.end()) return it->second;
  if (slots_.size() >= kCapacity) {
    spdlog::warn("metrics: more than {} geo counters; '{}' is not counted", kCapacity, key);
    return kCapacity;
  }
  const auto slot = static_cast<std::uint32_t>(slots_.size());
  slots_.emplace(key, slot);
  return slot;
}

std::uint64_t GeoCounters::total(std::uint32_t slot) const noexcept {
  std::uint64_t n = 0;
  for (const auto& column : columns_) n += column[slot].load(std::memory_order_relaxed);
  return n;
}

Metrics::Metrics(unsigned n) : geo(n) {
  for (unsigned i = 0; i < n; ++i) workers.push_back(std::make_unique<WorkerCounters>());
  start_time = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void Metrics::assign(World& world) {
  world.geo_counters.clear();
  for (const zones::GeoName* g : world.zones.geo_names()) {
    const std::string owner = zones::name_to_text(g->owner);
    GeoCounterSlots& s = world.geo_counters.emplace_back();
    for (const zones::GeoRegion& r : g->regions)
      s.regions.push_back(geo.slot(owner +
                                   "\x1f"
                                   "answer\x1f" +
                                   r.name));
    s.none = geo.slot(owner +
                      "\x1f"
                      "none");
    s.degraded = geo.slot(owner +
                          "\x1f"
                          "degraded");
    s.all_down = geo.slot(owner +
                          "\x1f"
                          "all-down\x1f" +
                          std::string(all_down_name(g->all_down)));
  }
}

namespace {

// The geo names' answer counters: answers by region, degraded, all-down.
void render_geo_counters(prometheus::Text& w, const Metrics& m, const World& world) {
  const auto& names = world.zones.geo_names();
  std::vector<std::string> owners;
  for (const zones::GeoName* g : names) owners.push_back(zones::name_to_text(g->owner));
  const bool counted = world.geo_counters.size() == names.size();
  w.family("steerdns_geo_answers_total", "counter",
           "Answers of each geo name by the region answered (\"none\": NODATA or SERVFAIL by policy).");
  for (std::size_t i = 0; counted && i < names.size(); ++i) {
    const GeoCounterSlots& s = world.geo_counters[i];
    for (std::size_t r = 0; r < names[i]->regions.size(); ++r)
      w.sample("steerdns_geo_answers_total", {{"name", owners[i]}, {"region", names[i]->regions[r].name}},
               m.geo.total(s.regions[r]));
    w.sample("steerdns_geo_answers_total", {{"name", owners[i]}, {"region", "none"}}, m.geo.total(s.none));
  }
  w.family("steerdns_geo_degraded_answers_total", "counter",
           "Geo answers not from the client's first region with every VIP up (they carry the degraded TTL).");
  for (std::size_t i = 0; counted && i < names.size(); ++i)
    w.sample("steerdns_geo_degraded_answers_total", {{"name", owners[i]}},
             m.geo.total(world.geo_counters[i].degraded));
  w.family("steerdns_all_down_total", "counter",
           "Answers given by the all-down policy: no region on the client's list was served.");
  for (std::size_t i = 0; counted && i < names.size(); ++i)
    w.sample("steerdns_all_down_total", {{"name", owners[i]}, {"policy", all_down_name(names[i]->all_down)}},
             m.geo.total(world.geo_counters[i].all_down));
}

void render_queries(prometheus::Text& w, const Metrics& m) {
  w.family("steerdns_queries_total", "counter",
           "Queries answered, by transport, query type and response code (rcode \"dropped\": no answer "
           "sent). Cells never counted are left out, but qtype A and AAAA with rcode NOERROR are always "
           "there, from 0, for each transport.");
  static const std::size_t kAlways[] = {qtype_bucket(1), qtype_bucket(28)};  // A, AAAA
  for (int t = 0; t < 2; ++t)
    for (std::size_t q = 0; q < kQtypeBuckets; ++q)
      for (std::size_t r = 0; r < kRcodeBuckets; ++r) {
        std::uint64_t n = 0;
        for (const auto& worker : m.workers) n += worker->queries[t][q][r].load(std::memory_order_relaxed);
        const bool always = r == rcode::NOERROR && (q == kAlways[0] || q == kAlways[1]);
        if (n == 0 && !always) continue;
        const std::string qtype = qtype_label(q);
        w.sample("steerdns_queries_total",
                 {{"transport", t ? "tcp" : "udp"}, {"qtype", qtype}, {"rcode", rcode_label(r)}}, n);
      }
}

void render_answer_durations(prometheus::Text& w, const Metrics& m) {
  w.family("steerdns_answer_duration_seconds", "histogram",
           "Time from a query's receipt in userspace to its answer handed to the kernel, by transport. "
           "udp: per receive batch (up to 64 queries), from recvmmsg returning to sendmmsg returning; each "
           "answer of the batch observes that batch's duration. tcp: per message, from the read that "
           "completed it to uv_write returning. Answers not sent are not observed.");
  static constexpr auto kBounds = [] {
    std::array<double, kAnswerBucketsNs.size()> b{};
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<double>(kAnswerBucketsNs[i]) / 1e9;
    return b;
  }();
  for (int t = 0; t < 2; ++t) {
    std::array<std::uint64_t, kAnswerBucketsNs.size() + 1> counts{};
    std::uint64_t sum_ns = 0;
    for (const auto& worker : m.workers) {
      const AnswerDurations& d = worker->answer_duration[t];
      for (std::size_t b = 0; b < counts.size(); ++b)
        counts[b] += d.counts[b].load(std::memory_order_relaxed);
      sum_ns += d.sum_ns.load(std::memory_order_relaxed);
    }
    w.histogram("steerdns_answer_duration_seconds", {"transport", t ? "tcp" : "udp"}, kBounds, counts,
                static_cast<double>(sum_ns) / 1e9);
  }
}

}  // namespace

std::string render_metrics(const Metrics& m, const World& world, std::uint64_t generation,
                           const health::Table& table, const health::Status& status,
                           const health::ProbeStats& probes) {
  using prometheus::number;
  prometheus::Text w;
  render_process(w);
  w.family("steerdns_build_info", "gauge",
           "The running build: version and compiler, and the identity this instance answers with.");
  w.sample("steerdns_build_info",
           {{"version", STEERDNS_VERSION}, {"compiler", __VERSION__}, {"identity", world.identity}}, "1");
  w.family("steerdns_start_time_seconds", "gauge", "When the server started, in seconds since the epoch.");
  w.sample("steerdns_start_time_seconds", {}, number(m.start_time));

  render_queries(w, m);
  render_answer_durations(w, m);
  auto sum = [&](auto field) {
    std::uint64_t n = 0;
    for (const auto& worker : m.workers) n += (worker.get()->*field).load(std::memory_order_relaxed);
    return n;
  };
  w.family("steerdns_cookies_total", "counter",
           "Queries with a DNS Cookie, by state: client (a client cookie alone), valid (our server cookie), "
           "invalid (not ours, or stale: BADCOOKIE over UDP).");
  {
    static constexpr const char* kStates[] = {"client", "valid", "invalid"};
    for (std::size_t i = 0; i < 3; ++i) {
      std::uint64_t n = 0;
      for (const auto& worker : m.workers) n += worker->cookies[i].load(std::memory_order_relaxed);
      w.sample("steerdns_cookies_total", {{"state", kStates[i]}}, n);
    }
  }
  w.family("steerdns_truncated_answers_total", "counter", "UDP answers sent truncated (TC=1).");
  w.sample("steerdns_truncated_answers_total", {}, sum(&WorkerCounters::truncated));
  w.family("steerdns_send_errors_total", "counter",
           "Answers that could not be sent (socket buffer full, errors).");
  w.sample("steerdns_send_errors_total", {}, sum(&WorkerCounters::send_errors));
  w.family(
      "steerdns_tcp_refused_total", "counter",
      "TCP connections closed at once, by the limit reached: the server's (max_connections) or the client's "
      "(max_connections_per_client).");
  w.sample("steerdns_tcp_refused_total", {{"limit", "server"}}, sum(&WorkerCounters::tcp_refused));
  w.sample("steerdns_tcp_refused_total", {{"limit", "client"}}, sum(&WorkerCounters::tcp_client_refused));
  w.family("steerdns_tcp_timeouts_total", "counter",
           "TCP connections closed by a timeout: idle (no query) or query (a message begun but not finished "
           "in time).");
  w.sample("steerdns_tcp_timeouts_total", {{"timeout", "idle"}}, sum(&WorkerCounters::tcp_idle_timeouts));
  w.sample("steerdns_tcp_timeouts_total", {{"timeout", "query"}}, sum(&WorkerCounters::tcp_query_timeouts));
  w.family("steerdns_tcp_accept_errors_total", "counter",
           "TCP connections the kernel could not hand over (accept failed: EMFILE at the "
           "descriptor limit, ENFILE, ENOBUFS, ...); after a resource error the listener pauses "
           "briefly and the connections wait.");
  w.sample("steerdns_tcp_accept_errors_total", {}, sum(&WorkerCounters::tcp_accept_errors));
  w.family(
      "steerdns_rate_limited_total", "counter",
      "UDP responses over their rate (server.rate_limit), by response kind and action: slip (sent empty with "
      "TC=1), drop, or log (log_only: sent as usual).");
  for (std::size_t k = 0; k < kResponseKinds; ++k)
    for (std::size_t a = 0; a < kRateActions; ++a) {
      std::uint64_t n = 0;
      for (const auto& worker : m.workers) n += worker->rate_limited[k][a].load(std::memory_order_relaxed);
      static constexpr const char* kActions[kRateActions] = {"log", "slip", "drop"};
      w.sample("steerdns_rate_limited_total",
               {{"kind", response_kind_name(static_cast<ResponseKind>(k))}, {"action", kActions[a]}}, n);
    }
  if (m.dnstap != nullptr) {
    w.family("steerdns_dnstap_frames_total", "counter",
             "dnstap frames queued for the writer, or dropped because its queue was full (the reader "
             "is slow or not connected).");
    w.sample("steerdns_dnstap_frames_total", {{"result", "queued"}}, m.dnstap->queued());
    w.sample("steerdns_dnstap_frames_total", {{"result", "dropped"}}, m.dnstap->dropped());
  }
  w.family("steerdns_tcp_connections", "gauge", "TCP connections open now.");
  w.sample("steerdns_tcp_connections", {}, std::uint64_t{m.tcp_connections.load(std::memory_order_relaxed)});

  render_geo_counters(w, m, world);
  render_health(w, world, table, status, probes);

  w.family("steerdns_geoip_build_timestamp_seconds", "gauge",
           "When the GeoIP database the geo names use was built (its metadata's build_epoch), in seconds "
           "since the epoch; source: builtin (the database shipped with steerdns) or file (geoip.database). "
           "No sample without geo names (no database is loaded).");
  if (world.geo_database)
    w.sample("steerdns_geoip_build_timestamp_seconds",
             {{"source", world.geo_database_builtin ? "builtin" : "file"}},
             world.geo_database->build_epoch());

  const ReloadStats& rs = m.reloads;
  w.family("steerdns_reloads_total", "counter", "Reloads (SIGHUP or POST /v1/reload), by result.");
  w.sample("steerdns_reloads_total", {{"result", "success"}}, rs.succeeded.load());
  w.sample("steerdns_reloads_total", {{"result", "failure"}}, rs.failed.load());
  w.family("steerdns_last_reload_success", "gauge", "1 when the last reload succeeded (or none was tried).");
  w.sample("steerdns_last_reload_success", {}, rs.last_ok.load() ? "1" : "0");
  w.family("steerdns_last_reload_timestamp_seconds", "gauge",
           "When the last reload finished, in seconds since the epoch (0: none yet).");
  w.sample("steerdns_last_reload_timestamp_seconds", {}, number(rs.last_time.load()));
  w.family("steerdns_last_reload_duration_seconds", "gauge", "How long the last reload took.");
  w.sample("steerdns_last_reload_duration_seconds", {}, number(rs.last_duration.load()));
  w.family("steerdns_world_generation", "gauge",
           "Worlds published since start (1: the first; each successful reload adds one).");
  w.sample("steerdns_world_generation", {}, generation + 1);
  w.family("steerdns_zones", "gauge", "Zones served.");
  w.sample("steerdns_zones", {}, std::uint64_t{world.zones.zones().size()});
  w.family("steerdns_records", "gauge", "Records served.");
  w.sample("steerdns_records", {}, std::uint64_t{world.zones.record_count()});
  return w.take();
}

}  // namespace steerdns::server
