#include "server/failover.hpp"

#include <algorithm>

namespace steerdns::server {

namespace {

constexpr std::size_t index_of(Family f) noexcept { return f == Family::a ? 0 : 1; }

health::Override region_override(const health::Table& table, std::uint32_t slot) noexcept {
  const std::uint8_t flags = table.region(slot);
  if (flags & health::Table::kOverriddenDown) return health::Override::down;
  if (flags & health::Table::kOverriddenUp) return health::Override::up;
  return health::Override::none;
}

// Every VIP of REGION (both families) is overridden down.
bool wholly_overridden_down(const RegionHealth& h, const health::Table& table) noexcept {
  for (const auto* slots : {&h.a, &h.aaaa})
    for (std::uint32_t slot : *slots)
      if (!table.overridden_down(slot)) return false;
  return true;
}

}  // namespace

const char* family_name(Family f) noexcept { return f == Family::a ? "A" : "AAAA"; }

Family family_for(Ask ask, const zones::GeoRegion& region) noexcept {
  if (ask == Ask::a || (ask == Ask::any && region.a.count > 0)) return Family::a;
  return Family::aaaa;
}

bool RegionState::serves(Family f) const noexcept {
  if (overridden == health::Override::up) return true;
  if (overridden == health::Override::down) return false;
  const std::size_t i = index_of(f);
  return total_served() >= threshold && (served[i] > 0 || vips[i] == 0);
}

bool RegionState::up() const noexcept {
  for (Family f : kFamilies)
    if (vips[index_of(f)] > 0 && serves(f)) return true;
  return total_vips() == 0 && overridden != health::Override::down;
}

RegionState region_state(const zones::GeoRegion& region, const RegionHealth& health,
                         const health::Table& table) noexcept {
  RegionState st;
  st.threshold = region.threshold;
  st.overridden = region_override(table, health.region_slot);
  const std::vector<std::uint32_t>* slots[2] = {&health.a, &health.aaaa};
  for (std::size_t i = 0; i < 2; ++i) {
    st.vips[i] = static_cast<unsigned>(slots[i]->size());
    for (std::uint32_t slot : *slots[i]) st.served[i] += table.serves(slot);
  }
  return st;
}

RegionState region_state(const World& world, const health::Table& table, const zones::GeoName& geo,
                         std::size_t region) noexcept {
  return region_state(geo.regions[region], world.geo_health[geo.id].regions[region], table);
}

Choice choose_region(const zones::GeoName& geo, const GeoHealth& health, const health::Table& table,
                     std::span<const geoip::RegionIndex> list, Ask ask) noexcept {
  Choice c;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const zones::GeoRegion& r = geo.regions[list[i]];
    const RegionState st = region_state(r, health.regions[list[i]], table);
    const Family f = family_for(ask, r);
    if (!st.serves(f)) continue;
    c.region = list[i];
    c.family = f;
    c.degraded = i > 0 || st.total_served() < st.total_vips();
    // Overridden up with no VIP of the family served: all but those overridden down.
    const std::size_t fi = index_of(f);
    c.vips = st.served[fi] > 0 || st.vips[fi] == 0 ? VipRule::served : VipRule::not_overridden_down;
    return c;
  }

  c.all_down = c.degraded = true;
  c.vips = VipRule::not_overridden_down;
  auto answers = [&](std::uint8_t index) {
    const RegionHealth& h = health.regions[index];
    return region_override(table, h.region_slot) != health::Override::down;
  };
  switch (geo.all_down) {
    case zones::AllDown::serve_nearest:
      for (std::uint8_t index : list) {
        if (!answers(index) || wholly_overridden_down(health.regions[index], table)) continue;
        c.region = index;
        c.family = family_for(ask, geo.regions[index]);
        return c;
      }
      return c;
    case zones::AllDown::fallback:
      if (answers(geo.all_down_region)) {
        c.region = geo.all_down_region;
        c.family = family_for(ask, geo.regions[geo.all_down_region]);
      }
      return c;
    case zones::AllDown::nodata: return c;
    case zones::AllDown::servfail: c.servfail = true; return c;
  }
  return c;
}

bool all_down_now(const zones::GeoName& geo, const GeoHealth& health, const health::Table& table) noexcept {
  // A list is all down when no region on it serves the family asked: the
  // answer choose_region gives is then the policy's.
  auto down = [&](std::span<const geoip::RegionIndex> list) {
    for (const Ask ask : {Ask::a, Ask::aaaa})
      if (choose_region(geo, health, table, list, ask).all_down) return true;
    return false;
  };
  std::uint8_t every[256];
  for (std::size_t i = 0; i < geo.regions.size() && i < 256; ++i) every[i] = static_cast<std::uint8_t>(i);
  if (down({every, std::min<std::size_t>(geo.regions.size(), 256)})) return true;
  if (!geo.default_list.empty() && down(geo.default_list)) return true;
  for (const auto* rules : {&geo.cidr, &geo.country, &geo.continent})
    for (const zones::GeoOverride& rule : *rules)
      if (down(rule.regions)) return true;
  return false;
}

}  // namespace steerdns::server
