#include "server/region_log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "common/log.hpp"
#include "server/failover.hpp"
#include "server/metrics.hpp"
#include "zones/name.hpp"

namespace steerdns::server {

namespace {

// Where the clients of REGION go now: the first region serving on the list
// of a client standing at REGION's location (every region, nearest first),
// as the classifier orders it; or the all-down policy.
std::string failover_target(const zones::GeoName& geo, const GeoHealth& health, const health::Table& table,
                            std::size_t region) {
  const zones::GeoRegion& from = geo.regions[region];
  std::vector<geoip::RegionIndex> list(geo.regions.size());
  std::iota(list.begin(), list.end(), geoip::RegionIndex{0});
  const geoip::Coordinates here{from.latitude, from.longitude};
  std::stable_sort(list.begin(), list.end(), [&](auto a, auto b) {
    const auto& ra = geo.regions[a];
    const auto& rb = geo.regions[b];
    return geoip::distance_km(here, {ra.latitude, ra.longitude}) <
           geoip::distance_km(here, {rb.latitude, rb.longitude});
  });
  const Ask ask = from.a_vips.empty() && !from.aaaa_vips.empty() ? Ask::aaaa : Ask::a;
  const Choice c = choose_region(geo, health, table, list, ask);
  const std::string policy(all_down_name(geo.all_down));
  if (!c.all_down) return geo.regions[c.region].name;
  if (c.region == Choice::kNoRegion) return "none (all-down policy " + policy + ")";
  return geo.regions[c.region].name + " (all-down policy " + policy + ")";
}

}  // namespace

void RegionLog::observe(const World& world, const health::Table& table) {
  std::lock_guard lock(mutex_);
  std::map<std::string, bool> regions, all_down;
  const auto& names = world.zones.geo_names();
  for (std::size_t i = 0; i < names.size() && i < world.geo_health.size(); ++i) {
    const zones::GeoName& geo = *names[i];
    const GeoHealth& health = world.geo_health[i];
    const std::string owner = zones::name_to_text(geo.owner);
    for (std::size_t r = 0; r < geo.regions.size(); ++r) {
      const zones::GeoRegion& region = geo.regions[r];
      const RegionState st = region_state(world, table, geo, r);
      const std::string key = owner + " " + region.name;
      const bool up = st.up();
      regions[key] = up;
      auto last = region_up_.find(key);
      if (last == region_up_.end() ? up : last->second == up) continue;
      const std::string counts = fmt::format("{} of {} VIPs up", st.total_served(), st.total_vips());
      if (up) {
        common::event(spdlog::level::info,
                      fmt::format("health: region {} of {} up: {} (threshold {})", region.name, owner, counts,
                                  st.threshold),
                      {{"name", owner},
                       {"region", region.name},
                       {"state", "up"},
                       {"vips_up", std::to_string(st.total_served())},
                       {"vips_total", std::to_string(st.total_vips())},
                       {"threshold", std::to_string(st.threshold)}});
        continue;
      }
      const std::string why = st.overridden == health::Override::down ? "forced down"
                              : st.total_served() < st.threshold
                                  ? fmt::format("{}, below threshold {}", counts, st.threshold)
                                  : counts + ", none of its address family";
      const std::string target = failover_target(geo, health, table, r);
      common::event(spdlog::level::warn,
                    fmt::format("health: region {} of {} down: {}; its clients fail over to {}", region.name,
                                owner, why, target),
                    {{"name", owner},
                     {"region", region.name},
                     {"state", "down"},
                     {"vips_up", std::to_string(st.total_served())},
                     {"vips_total", std::to_string(st.total_vips())},
                     {"threshold", std::to_string(st.threshold)},
                     {"failover", target}});
    }
    const bool now = all_down_now(world, table, geo);
    all_down[owner] = now;
    auto last = all_down_.find(owner);
    if (last == all_down_.end() ? !now : last->second == now) continue;
    const std::string policy(all_down_name(geo.all_down));
    if (now)
      common::event(
          spdlog::level::err,
          fmt::format("health: all-down policy {} fired for {}: no region on some clients' list is up",
                      policy, owner),
          {{"name", owner}, {"policy", policy}, {"state", "fired"}});
    else
      common::event(spdlog::level::info, fmt::format("health: all-down policy of {} cleared", owner),
                    {{"name", owner}, {"policy", policy}, {"state", "cleared"}});
  }
  region_up_ = std::move(regions);
  all_down_ = std::move(all_down);
}

}  // namespace steerdns::server
