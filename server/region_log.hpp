// Region-level log lines: what an operator watching the journal needs when
// health or an override moves clients. On every new health table or world:
//
//   health: region paris of artifacts.example.com down: 1 of 4 VIPs up,
//           below threshold 2; its clients fail over to virginia
//   health: region paris of artifacts.example.com up: 4 of 4 VIPs up (threshold 2)
//   health: all-down policy serve-nearest fired for artifacts.example.com: ...
//   health: all-down policy of artifacts.example.com cleared
//
// Each is a common::event with the fields name, region, vips_up,
// vips_total, threshold, failover, policy. VIP transitions are the
// prober's lines (health/probe.cpp).
//
// Thread contract: observe() from any thread (it locks); the prober calls
// it after each table it publishes, the reloader after each world.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "health/table.hpp"
#include "server/world.hpp"

namespace steerdns::server {

class RegionLog {
 public:
  // Compares every region of WORLD (up or down, as /status says) and every
  // geo name's all-down state under TABLE with the last call's, and logs
  // each change. The first call logs only what is down or all-down.
  void observe(const World& world, const health::Table& table);

 private:
  std::mutex mutex_;
  std::map<std::string, bool> region_up_;  // by "owner region"
  std::map<std::string, bool> all_down_;   // by owner
};

}  // namespace steerdns::server
