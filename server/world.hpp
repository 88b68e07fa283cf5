// The world: the immutable snapshot of everything compiled from config that
// answer() reads, and the one place where it is built: zones (zones/), geo
// classifiers (geoip/) and the health slots of their checks (health/) are
// wired together here. Built off the workers (start-up, reload), then
// published (common/publication.hpp); never changed after that.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "geoip/geoip.hpp"
#include "health/prober.hpp"
#include "health/registry.hpp"
#include "server/cookie.hpp"
#include "zones/zone.hpp"

namespace steerdns::server {

struct Config;   // server/config.hpp
struct Metrics;  // server/metrics.hpp

// Where answer() finds a region's health in the health table: slots
// handed out by the prober (health::Prober::apply) for this world, or
// kNoSlot everywhere when it was built without one (every VIP reads up).
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
  // DNS Cookies (server/cookie.hpp): off, or the secrets that make them.
  CookieSecrets cookies;
  // Who answers: NSID (RFC 5001) and CH TXT id.server / hostname.bind;
  // empty: neither is answered. VERSION: CH TXT version.bind / version.server
  // when not empty.
  std::string identity;
  std::string version;
  // The TCP idle timeout in units of 100 ms, for edns-tcp-keepalive (RFC 7828).
  std::uint16_t tcp_keepalive = 50;
  // Loaded only when some zone has geo names; kept for explanations.
  std::shared_ptr<const geoip::Database> geo_database;
  // The database is the built-in one (the config names no geoip.database).
  bool geo_database_builtin = false;
  // The policy and compiled classifier of each geo name, by GeoName::id.
  std::vector<geoip::Policy> geo_policies;
  std::vector<geoip::Classifier> classifiers;
  // By GeoName::id, for every geo name (kNoSlot slots without a prober).
  std::vector<GeoHealth> geo_health;
  // By GeoName::id; empty when built without Metrics (check, explain).
  std::vector<GeoCounterSlots> geo_counters;
};

// Loads and compiles every zone CONFIG names, its geo names and their
// checks. With a PROBER (serve), the world's checks are applied to it (new
// ones get a first probe before this returns) and the world records their
// health slots; without (check, explain), checks are only read and every VIP
// counts as up. With METRICS (serve), the world's geo names get their
// counters. Runs off the workers (start-up, the reload builder). Throws
// common::LoadError (file:line:reason).
std::shared_ptr<const World> build_world(const Config& config, health::Prober* prober = nullptr,
                                         Metrics* metrics = nullptr);

// The steps of build_world, for tests and fuzz targets that build a world
// from zone texts.
//
// Loads the GeoIP database at DATABASE_PATH and compiles every geo name of
// WORLD.zones into WORLD's classifiers, with health slots kNoSlot. Throws
// common::LoadError (file:line of a bad override, or the database's path).
// Does nothing without geo names.
void compile_geo(World& world, const std::string& database_path);

// Reads every check of WORLD's geo names (geo name, region and VIP layers)
// into a plan for the prober. Throws common::LoadError (file:line).
health::Plan plan_health(const World& world);
// Records in WORLD the slots a prober gave for PLAN (same order).
void assign_health(World& world, const health::Slots& slots);

}  // namespace steerdns::server
