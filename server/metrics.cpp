#include "server/metrics.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "server/dnstap.hpp"
#include "server/failover.hpp"
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

// Prometheus text format: label values escape backslash, quote and newline.
std::string escape(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

// The shortest text that reads back as V.
std::string number(double v) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, ec == std::errc() ? end : buf);
}

class Writer {
 public:
  void family(const char* name, const char* type, const char* help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  // LABELS: name, value pairs.
  void sample(std::string_view name, std::initializer_list<std::pair<const char*, std::string_view>> labels,
              const std::string& value) {
    out_ += name;
    if (labels.size() > 0) {
      out_ += '{';
      bool first = true;
      for (const auto& [label, v] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += label;
        out_ += "=\"";
        out_ += escape(v);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  void sample(std::string_view name, std::initializer_list<std::pair<const char*, std::string_view>> labels,
              std::uint64_t value) {
    sample(name, labels, std::to_string(value));
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

const char* check_type_name(health::CheckType t) {
  return t == health::CheckType::https ? "https" : t == health::CheckType::http ? "http" : "tcp";
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

std::string render_metrics(const Metrics& m, const World& world, std::uint64_t generation,
                           const health::Table& table, const health::Status& status,
                           const health::ProbeStats& probes) {
  Writer w;
  w.family("steerdns_build_info", "gauge",
           "The running build: version and compiler, and the identity this instance answers with.");
  w.sample("steerdns_build_info",
           {{"version", STEERDNS_VERSION}, {"compiler", __VERSION__}, {"identity", world.identity}}, "1");
  w.family("steerdns_start_time_seconds", "gauge", "When the server started, in seconds since the epoch.");
  w.sample("steerdns_start_time_seconds", {}, number(m.start_time));

  w.family(
      "steerdns_queries_total", "counter",
      "Queries answered, by transport, query type and response code (rcode \"dropped\": no answer sent).");
  for (int t = 0; t < 2; ++t)
    for (std::size_t q = 0; q < kQtypeBuckets; ++q)
      for (std::size_t r = 0; r < kRcodeBuckets; ++r) {
        std::uint64_t n = 0;
        for (const auto& worker : m.workers) n += worker->queries[t][q][r].load(std::memory_order_relaxed);
        if (n == 0) continue;
        const std::string qtype = qtype_label(q);
        w.sample("steerdns_queries_total",
                 {{"transport", t ? "tcp" : "udp"}, {"qtype", qtype}, {"rcode", rcode_label(r)}}, n);
      }
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
  w.sample("steerdns_tcp_connections", {}, m.tcp_connections.load(std::memory_order_relaxed));

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
           "Answers given by the all-down policy: no region on the client's list was up.");
  for (std::size_t i = 0; counted && i < names.size(); ++i)
    w.sample("steerdns_all_down_total", {{"name", owners[i]}, {"policy", all_down_name(names[i]->all_down)}},
             m.geo.total(world.geo_counters[i].all_down));

  w.family(
      "steerdns_region_up", "gauge",
      "1 when a region is served (forced up, or at least its threshold of VIPs up and not forced down).");
  for (std::size_t i = 0; i < names.size(); ++i)
    for (std::size_t r = 0; r < names[i]->regions.size(); ++r)
      w.sample("steerdns_region_up", {{"name", owners[i]}, {"region", names[i]->regions[r].name}},
               region_state(world, table, *names[i], r).up() ? "1" : "0");

  w.family("steerdns_vip_up", "gauge",
           "1 when the VIP's check passes (rise/fall applied; a VIP without a check counts as up); overrides "
           "aside.");
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i >= world.geo_health.size()) break;
    for (std::size_t r = 0; r < names[i]->regions.size(); ++r) {
      const zones::GeoRegion& region = names[i]->regions[r];
      const RegionHealth& h = world.geo_health[i].regions[r];
      auto emit = [&](const std::vector<zones::GeoVip>& vips, const std::vector<std::uint32_t>& slots) {
        for (std::size_t v = 0; v < vips.size() && v < slots.size(); ++v) {
          const std::uint32_t slot = slots[v];
          if (slot >= status.vips.size() || !status.vips[slot].in_use) continue;
          const health::VipStatus& s = status.vips[slot];
          const std::string check = s.check ? s.check->describe(s.vip) : "none";
          w.sample("steerdns_vip_up",
                   {{"name", owners[i]}, {"region", region.name}, {"vip", s.vip}, {"check", check}},
                   s.up ? "1" : "0");
        }
      };
      emit(region.a_vips, h.a);
      emit(region.aaaa_vips, h.aaaa);
    }
  }
  w.family("steerdns_override", "gauge",
           "Regions and VIPs an operator forced up or down (the state file or the admin API).");
  for (const auto& [name, overridden] : status.overrides.regions)
    w.sample("steerdns_override",
             {{"kind", "region"}, {"target", name}, {"state", health::override_name(overridden)}}, "1");
  for (const auto& [name, overridden] : status.overrides.vips)
    w.sample("steerdns_override",
             {{"kind", "vip"}, {"target", name}, {"state", health::override_name(overridden)}}, "1");

  w.family("steerdns_probe_duration_seconds", "histogram", "Duration of health probes, by check type.");
  for (std::size_t t = 0; t < probes.duration.size(); ++t) {
    const auto& h = probes.duration[t];
    const char* type = check_type_name(static_cast<health::CheckType>(t));
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b <= health::ProbeStats::kBuckets.size(); ++b) {
      cumulative += h.counts[b].load(std::memory_order_relaxed);
      const std::string le = b < health::ProbeStats::kBuckets.size() ? number(health::ProbeStats::kBuckets[b])
                                                                     : "+Inf";
      w.sample("steerdns_probe_duration_seconds_bucket", {{"type", type}, {"le", le}}, cumulative);
    }
    w.sample("steerdns_probe_duration_seconds_sum", {{"type", type}},
             number(static_cast<double>(h.sum_us.load(std::memory_order_relaxed)) / 1e6));
    w.sample("steerdns_probe_duration_seconds_count", {{"type", type}},
             h.count.load(std::memory_order_relaxed));
  }
  w.family("steerdns_probe_failures_total", "counter", "Failed health probes, by reason.");
  for (std::size_t r = 1; r < health::kReasonCount; ++r)
    w.sample("steerdns_probe_failures_total",
             {{"reason", health::reason_name(static_cast<health::Reason>(r))}},
             probes.failures[r].load(std::memory_order_relaxed));

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
  w.sample("steerdns_zones", {}, world.zones.zones().size());
  w.family("steerdns_records", "gauge", "Records served.");
  w.sample("steerdns_records", {}, world.zones.record_count());
  return w.take();
}

}  // namespace steerdns::server
