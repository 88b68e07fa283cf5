// The main config file (YAML) and building a world from it. Load-time only:
// throws common::LoadError with file:line:reason.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "health/monitor.hpp"
#include "server/world.hpp"

namespace steerdns::server {

struct ListenAddress {
  sockaddr_storage address{};
  socklen_t address_size = 0;
  std::string text;  // as written, e.g. "[::1]:5353"
  bool udp = true;
  bool tcp = true;
};

struct TcpLimits {
  unsigned max_connections = 1024;
  std::chrono::milliseconds idle_timeout{5000};
  unsigned max_pipelined = 64;
};

struct Config {
  std::string path;
  std::vector<ListenAddress> listen;
  unsigned workers = 0;  // resolved: never 0 after load_config()
  std::uint16_t edns_payload = 1232;
  TcpLimits tcp;
  std::vector<std::string> zone_files;  // resolved against the config's folder
  std::string geoip_database;           // resolved; the built-in database when not configured
  std::string state_file;  // resolved; empty: no operator overrides
  std::string log_level = "info";
  bool query_log = false;
};

Config load_config(const std::string& path);

// Loads and compiles every zone the config names. With a MONITOR (serve),
// the world's checks are applied to it (new ones get a first probe before
// this returns) and the world records their health slots; without (check,
// explain), checks are only read and every VIP counts as up.
std::shared_ptr<const World> build_world(const Config& config, health::Monitor* monitor = nullptr);

// Parses "127.0.0.1:53" or "[::1]:53"; false when it is neither.
bool parse_socket_address(const std::string& text, ListenAddress& out);

}  // namespace steerdns::server
