// `serial: auto` with memory: the last serial given to each zone, kept in
// the state folder (serials.yaml beside health.state_file), so that a
// changed zone file gets a greater serial (RFC 1982) while the same content
// keeps its serial across reloads, restarts and plain copies. See
// zones::AutoSerial for the rule. Without a state file there is no memory:
// the serial is candidate(digest, 0), the same everywhere for one content.
//
// Thread contract: one SerialMemory per world build (the main thread at
// start, the reload builder after).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "zones/zone.hpp"

namespace steerdns::server {

class SerialMemory : public zones::AutoSerial {
 public:
  // Reads PATH (a missing file: no memory yet; a bad one: a warning, and
  // none). An empty PATH: no memory at all.
  explicit SerialMemory(std::string path);
  std::uint32_t serial(const std::string& apex, std::uint64_t digest) override;
  // Writes what this build gave (only serve does; check reads). Logs a
  // warning when it cannot.
  void save() const;

 private:
  std::string path_;
  std::map<std::string, std::pair<std::uint64_t, std::uint32_t>> last_;  // apex -> digest, serial
};

// serials.yaml in the folder of STATE_FILE; empty when STATE_FILE is.
std::string serials_path(const std::string& state_file);

}  // namespace steerdns::server
