// Failover: which region of a geo name answers a client, with which of its
// VIPs, and why. The one rule, read by answer() for every geo answer and by
// /status, /explain and the metrics for what they report, so that the
// operator's view and the answers cannot disagree.
//
// Pure and allocation-free: any thread, any number at once, on a pinned
// world and health table.
#pragma once

#include <cstdint>
#include <span>

#include "geoip/geoip.hpp"
#include "health/registry.hpp"
#include "health/table.hpp"
#include "server/world.hpp"
#include "zones/zone.hpp"

namespace steerdns::server {

// The address family an answer is made of.
enum class Family : std::uint8_t { a, aaaa };
inline constexpr Family kFamilies[] = {Family::a, Family::aaaa};
const char* family_name(Family f) noexcept;  // "A", "AAAA"

// What a query asks of a geo name: one family, or ANY, answered with one
// family per region (A when the region has IPv4 VIPs, else AAAA).
enum class Ask : std::uint8_t { a, aaaa, any };
Family family_for(Ask ask, const zones::GeoRegion& region) noexcept;

// A region as a health table has it now.
struct RegionState {
  unsigned vips[2] = {0, 0};    // by Family
  unsigned served[2] = {0, 0};  // VIPs served (health::Table::serves), by Family
  unsigned threshold = 1;
  health::Override overridden = health::Override::none;

  unsigned total_vips() const noexcept { return vips[0] + vips[1]; }
  unsigned total_served() const noexcept { return served[0] + served[1]; }
  // Answers of family F may come from this region: it is overridden up; or
  // it is not overridden down, has at least `threshold` VIPs served (both
  // families count) and a served VIP of F, or no VIP of F at all (then the
  // answer is NODATA, as it is without health).
  bool serves(Family f) const noexcept;
  // The region is up for /status and steerdns_region_up: it serves a family
  // of which it has VIPs (or, having none, it is not overridden down).
  bool up() const noexcept;
};

RegionState region_state(const zones::GeoRegion& region, const RegionHealth& health,
                         const health::Table& table) noexcept;
// The same for region REGION (index into GEO.regions) of a world's geo name.
RegionState region_state(const World& world, const health::Table& table, const zones::GeoName& geo,
                         std::size_t region) noexcept;

// Which VIPs of the chosen region's family answer.
enum class VipRule : std::uint8_t {
  served,               // the VIPs served (health::Table::serves)
  not_overridden_down,  // every VIP but those overridden down (overridden up with none up; all-down answers)
};

// The rule for the VIPs of family F when a region in state ST answers:
// served, or not_overridden_down for a region overridden up with no VIP of F
// served. choose_region puts it in Choice::vips.
VipRule vip_rule(const RegionState& st, Family f) noexcept;
// RULE admits VIP SLOT into an answer.
bool admits(VipRule rule, const health::Table& table, std::uint32_t slot) noexcept;
// VIP SLOT, of family F in a region in state ST, is in that region's answers
// now, when the region answers (the all-down policy aside): the region is not
// overridden down and vip_rule admits the VIP. What /status (a VIP's
// `served`) and steerdns_vip_served report.
bool vip_served(const RegionState& st, Family f, const health::Table& table, std::uint32_t slot) noexcept;

struct Choice {
  static constexpr std::uint8_t kNoRegion = UINT8_MAX;
  // Index into GeoName::regions; kNoRegion: a negative answer (NODATA) or
  // SERVFAIL, as servfail says.
  std::uint8_t region = kNoRegion;
  Family family = Family::a;
  VipRule vips = VipRule::served;
  // Not the client's first region with every VIP served (or an all-down
  // answer): the degraded TTL applies.
  bool degraded = false;
  bool all_down = false;  // no region on the list serves: the all-down policy chose
  bool servfail = false;  // the all-down policy answers SERVFAIL
};

// Walks LIST, the client's preference list: the first region that serves
// the asked family answers. When none does, the geo name's all-down policy
// decides (serve-nearest: the first region not wholly overridden down;
// fallback: its region unless that is overridden down; nodata; servfail).
Choice choose_region(const zones::GeoName& geo, const GeoHealth& health, const health::Table& table,
                     std::span<const geoip::RegionIndex> list, Ask ask) noexcept;

// Some preference list of GEO (its default list, or a list of one of its
// cidr, country or continent rules; the distance orders hold every region,
// as the default list does) has no region that serves A, AAAA or ANY now:
// choose_region answers those clients by the all-down policy. What
// steerdns_all_down reports.
bool all_down_now(const World& world, const health::Table& table, const zones::GeoName& geo) noexcept;

}  // namespace steerdns::server
