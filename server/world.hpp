// The world: the immutable snapshot of everything compiled from config that
// answer() reads. Built off the workers (start-up, reload), then published.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "zones/zone.hpp"

namespace steerdns::server {

struct World {
  zones::ZoneTable zones;
  // Our EDNS UDP payload: the largest UDP answer we send to EDNS clients.
  std::uint16_t edns_payload = 1232;
};

}  // namespace steerdns::server
