// The world: the immutable snapshot of everything compiled from config that
// answer() reads. Built off the workers (start-up, reload), then published.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "geoip/geoip.hpp"
#include "health/registry.hpp"
#include "zones/zone.hpp"

namespace steerdns::server {

// Where answer() finds a region's health in the health table: slots
// handed out by the prober (health::Prober::apply) for this world.
struct RegionHealth {
  std::uint32_t region_slot = health::Table::kNoSlot;
  std::vector<std::uint32_t> a, aaaa;  // VIP slots, in the order of GeoRegion's records
};

struct GeoHealth {
  std::vector<RegionHealth> regions;  // as GeoName::regions
};

// Where a geo name's answers are counted (server/metrics.hpp).
struct GeoCounterSlots {
  std::vector<std::uint32_t> regions;  // answered by each region, as GeoName::regions
  std::uint32_t none = 0;              // answered by no region (NODATA, SERVFAIL)
  std::uint32_t degraded = 0;          // degraded answers (degraded TTL)
  std::uint32_t all_down = 0;          // all-down policy firings
};

struct World {
  zones::ZoneTable zones;
  // Our EDNS UDP payload: the largest UDP answer we send to EDNS clients.
  std::uint16_t edns_payload = 1232;
  // Loaded only when some zone has geo names; kept for explanations.
  std::shared_ptr<const geoip::Database> geo_database;
  // The policy and compiled classifier of each geo name, by GeoName::id.
  std::vector<geoip::Policy> geo_policies;
  std::vector<geoip::Classifier> classifiers;
  // By GeoName::id; empty when no prober was given (every VIP counts as up).
  std::vector<GeoHealth> geo_health;
  // By GeoName::id; empty when built without Metrics (check, explain).
  std::vector<GeoCounterSlots> geo_counters;
};

// A region of a geo name as the health table has it now, whatever family
// is asked: served when forced up, or not forced down with at least its
// threshold of VIPs up. For /status, /explain and metrics; answer() itself
// also weighs the asked family.
struct RegionState {
  unsigned vips = 0;
  unsigned up = 0;  // VIPs up (probed up or forced up), not forced down
  health::Override overridden = health::Override::none;
  bool served = false;
};
RegionState region_state(const World& world, const health::Table& table, const zones::GeoName& geo,
                         std::size_t region);

// Loads the GeoIP database at DATABASE_PATH and compiles every geo name of
// WORLD.zones into WORLD's classifiers. Throws common::LoadError (file:line of
// a bad override, or the database's path). Does nothing without geo names.
void compile_geo(World& world, const std::string& database_path);

// Reads every check of WORLD's geo names (geo name, region and VIP layers)
// into a plan for the prober. Throws common::LoadError (file:line).
health::Plan plan_health(const World& world);
// Records in WORLD the slots a prober gave for PLAN (same order).
void assign_health(World& world, const health::Slots& slots);

}  // namespace steerdns::server
