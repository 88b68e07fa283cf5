// The world: the immutable snapshot of everything compiled from config that
// answer() reads. Built off the workers (start-up, reload), then published.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "geoip/geoip.hpp"
#include "zones/zone.hpp"

namespace steerdns::server {

struct World {
  zones::ZoneTable zones;
  // Our EDNS UDP payload: the largest UDP answer we send to EDNS clients.
  std::uint16_t edns_payload = 1232;
  // Loaded only when some zone has geo names; kept for explanations.
  std::shared_ptr<const geoip::Database> geo_database;
  // The policy and compiled classifier of each geo name, by GeoName::id.
  std::vector<geoip::Policy> geo_policies;
  std::vector<geoip::Classifier> classifiers;
};

// Loads the GeoIP database at DATABASE_PATH and compiles every geo name of
// WORLD.zones into WORLD's classifiers. Throws common::LoadError (file:line of
// a bad override, or the database's path). Does nothing without geo names.
void compile_geo(World& world, const std::string& database_path);

}  // namespace steerdns::server
