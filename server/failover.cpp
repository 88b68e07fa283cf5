#include "server/failover.hpp"

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

VipRule vip_rule(const RegionState& st, Family f) noexcept {
  // Overridden up with no VIP of the family served: all but those overridden down.
  const std::size_t i = index_of(f);
  if (st.overridden == health::Override::up && st.served[i] == 0 && st.vips[i] > 0)
    return VipRule::not_overridden_down;
  return VipRule::served;
}

bool admits(VipRule rule, const health::Table& table, std::uint32_t slot) noexcept {
  return rule == VipRule::served ? table.serves(slot) : !table.overridden_down(slot);
}

bool vip_served(const RegionState& st, Family f, const health::Table& table, std::uint32_t slot) noexcept {
  return st.overridden != health::Override::down && admits(vip_rule(st, f), table, slot);
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
    c.vips = vip_rule(st, f);
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

bool all_down_now(const World& world, const health::Table& table, const zones::GeoName& geo) noexcept {
  if (geo.id >= world.geo_policies.size() || geo.id >= world.geo_health.size()) return false;
  const geoip::Policy& policy = world.geo_policies[geo.id];
  const GeoHealth& health = world.geo_health[geo.id];
  auto all_down = [&](const geoip::PreferenceList& list) {
    for (Ask ask : {Ask::a, Ask::aaaa, Ask::any})
      if (choose_region(geo, health, table, list, ask).all_down) return true;
    return false;
  };
  if (all_down(policy.default_list)) return true;
  for (const auto& [network, list] : policy.cidr)
    if (all_down(list)) return true;
  for (const auto* rules : {&policy.country, &policy.continent})
    for (const auto& [code, list] : *rules)
      if (all_down(list)) return true;
  return false;
}

}  // namespace steerdns::server
