// The health families of /metrics. Every verdict comes from the failover
// rule (server/failover.hpp), as answer() and /status read it.
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "server/failover.hpp"
#include "server/metrics.hpp"
#include "server/prometheus.hpp"
#include "zones/name.hpp"

namespace steerdns::server {

namespace {

// The `check` label: the check's type, or "none" for a VIP without a check.
// Not its URL: editing a path must not rename the series.
std::string_view check_label(const health::VipStatus& s) {
  return s.check ? health::check_type_name(s.check->type) : std::string_view("none");
}

// Calls F(geo name index, region index, region state, family, status) for
// every VIP of every geo name that the prober has in use.
template <class F>
void each_vip(const World& world, const health::Table& table, const health::Status& status, F&& f) {
  const auto& names = world.zones.geo_names();
  for (std::size_t i = 0; i < names.size() && i < world.geo_health.size(); ++i)
    for (std::size_t r = 0; r < names[i]->regions.size(); ++r) {
      const RegionHealth& h = world.geo_health[i].regions[r];
      const RegionState st = region_state(world, table, *names[i], r);
      for (Family family : kFamilies)
        for (std::uint32_t slot : family == Family::a ? h.a : h.aaaa) {
          if (slot >= status.vips.size() || !status.vips[slot].in_use) continue;
          f(i, r, st, family, slot, status.vips[slot]);
        }
    }
}

}  // namespace

void render_health(prometheus::Text& w, const World& world, const health::Table& table,
                   const health::Status& status, const health::ProbeStats& probes) {
  const auto& names = world.zones.geo_names();
  std::vector<std::string> owners;
  for (const zones::GeoName* g : names) owners.push_back(zones::name_to_text(g->owner));

  w.family("steerdns_region_up", "gauge",
           "1 when a region is served (forced up, or at least its threshold of VIPs up and not forced down): "
           "a failure and a drain both read 0; steerdns_override tells a drain.");
  for (std::size_t i = 0; i < names.size(); ++i)
    for (std::size_t r = 0; r < names[i]->regions.size(); ++r)
      w.sample("steerdns_region_up", {{"name", owners[i]}, {"region", names[i]->regions[r].name}},
               region_state(world, table, *names[i], r).up() ? "1" : "0");

  w.family("steerdns_all_down", "gauge",
           "1 when, for at least one preference list of the geo name (its default list or a cidr, country "
           "or continent rule's), no region is served now: those clients are answered by the all-down "
           "policy.");
  for (std::size_t i = 0; i < names.size(); ++i)
    w.sample("steerdns_all_down", {{"name", owners[i]}}, all_down_now(world, table, *names[i]) ? "1" : "0");

  w.family("steerdns_vip_up", "gauge",
           "1 when the VIP's check passes (rise/fall applied; a VIP without a check, check \"none\", counts "
           "as up); overrides aside. check: the check's type (http, https, tcp) or none.");
  each_vip(world, table, status,
           [&](std::size_t i, std::size_t r, const RegionState&, Family, std::uint32_t,
               const health::VipStatus& s) {
             w.sample("steerdns_vip_up",
                      {{"name", owners[i]},
                       {"region", names[i]->regions[r].name},
                       {"vip", s.vip},
                       {"check", check_label(s)}},
                      s.up ? "1" : "0");
           });

  w.family("steerdns_vip_served", "gauge",
           "1 when the VIP is in its region's answers now, whenever the region answers: health and "
           "overrides (the VIP's and its region's) applied, as the failover rule does; the all-down policy "
           "aside. Whether the region answers: steerdns_region_up.");
  each_vip(world, table, status,
           [&](std::size_t i, std::size_t r, const RegionState& st, Family family, std::uint32_t slot,
               const health::VipStatus& s) {
             w.sample("steerdns_vip_served",
                      {{"name", owners[i]}, {"region", names[i]->regions[r].name}, {"vip", s.vip}},
                      vip_served(st, family, table, slot) ? "1" : "0");
           });

  w.family("steerdns_vip_transitions_total", "counter",
           "Probed changes of a VIP's state (rise/fall applied), by the check's type and the state reached "
           "(to: up, down); the first result of a new check is not one, nor are overrides.");
  {
    // One series per (VIP, check type): the prober counts every check of a
    // type on a VIP together (health::VipStatus::transitions).
    std::set<std::pair<std::string, std::string_view>> seen;
    for (const health::VipStatus& s : status.vips) {
      if (!s.in_use || !seen.emplace(s.vip, check_label(s)).second) continue;
      w.sample("steerdns_vip_transitions_total", {{"vip", s.vip}, {"check", check_label(s)}, {"to", "up"}},
               s.transitions[0]);
      w.sample("steerdns_vip_transitions_total", {{"vip", s.vip}, {"check", check_label(s)}, {"to", "down"}},
               s.transitions[1]);
    }
  }

  w.family("steerdns_override", "gauge",
           "Regions and VIPs an operator forced up or down (the state file or the admin API); a drain is "
           "state=\"down\".");
  for (const auto& [name, overridden] : status.overrides.regions)
    w.sample("steerdns_override",
             {{"kind", "region"}, {"target", name}, {"state", health::override_name(overridden)}}, "1");
  for (const auto& [name, overridden] : status.overrides.vips)
    w.sample("steerdns_override",
             {{"kind", "vip"}, {"target", name}, {"state", health::override_name(overridden)}}, "1");

  w.family(
      "steerdns_state_file_problems", "gauge",
      "What the operators' state file holds that is not applied: kind=\"entry\" (bad entries and a file "
      "that cannot be read, kept at their last good state) and kind=\"unknown\" (overrides of a region or "
      "VIP no geo name has, ignored). 0 and 0: the file is good.");
  w.sample("steerdns_state_file_problems", {{"kind", "entry"}}, status.state_problems.size());
  w.sample("steerdns_state_file_problems", {{"kind", "unknown"}}, status.ignored.size());

  w.family("steerdns_probe_duration_seconds", "histogram", "Duration of health probes, by check type.");
  for (std::size_t t = 0; t < probes.duration.size(); ++t) {
    const auto& h = probes.duration[t];
    std::array<std::uint64_t, health::ProbeStats::kBuckets.size() + 1> counts{};
    for (std::size_t b = 0; b < counts.size(); ++b) counts[b] = h.counts[b].load(std::memory_order_relaxed);
    w.histogram("steerdns_probe_duration_seconds",
                {"type", health::check_type_name(static_cast<health::CheckType>(t))},
                health::ProbeStats::kBuckets, counts,
                static_cast<double>(h.sum_us.load(std::memory_order_relaxed)) / 1e6);
  }
  w.family("steerdns_probe_failures_total", "counter", "Failed health probes, by reason.");
  for (std::size_t r = 1; r < health::kReasonCount; ++r)
    w.sample("steerdns_probe_failures_total",
             {{"reason", health::reason_name(static_cast<health::Reason>(r))}},
             probes.failures[r].load(std::memory_order_relaxed));
}

}  // namespace steerdns::server
