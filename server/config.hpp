// The main config file (YAML). Load-time only:
// throws common::LoadError with file:line:reason.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/log.hpp"
#include "server/cookie.hpp"
#include "server/dnstap.hpp"
#include "server/rate_limit.hpp"

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
  // Open connections from one client: one IPv4 address or IPv6 /64.
  unsigned max_connections_per_client = 32;
  // With no message in progress: close after this long without an answer.
  std::chrono::milliseconds idle_timeout{5000};
  // From the first octet of a message (its length) to its last.
  std::chrono::milliseconds query_timeout{2000};
  unsigned max_pipelined = 64;
  bool operator==(const TcpLimits&) const = default;
};

// The admin HTTP API (server/admin.hpp).
struct AdminConfig {
  bool enabled = false;  // the config has an admin section
  std::string host = "127.0.0.1";
  std::uint16_t port = 8053;
  std::string text = "127.0.0.1:8053";
  // Mutating calls (POST, PUT, DELETE) need "Authorization: Bearer TOKEN";
  // GETs need nothing. Without admin.token_file, serve makes the token in
  // the state file's folder (token_made); without either, mutations are
  // refused. token_file is required when the listener is not on loopback.
  std::string token;
  std::string token_file;   // resolved: configured, or made beside the state file
  bool token_made = false;  // token_file is steerdns's own (kMadeTokenName)
  std::string token_error;  // ctl: why the made token could not be read
};

// The name of the token steerdns makes beside the state file.
inline constexpr const char* kMadeTokenName = "admin-token";

// serve, before dropping privileges: when ADMIN.token_made, reads the token
// file or, when missing, writes a new random one (mode 0640; owner and group
// those of USER when running as root, so members of its group can use ctl).
// Throws std::runtime_error naming the file.
void make_admin_token(AdminConfig& admin, const std::string& user);

struct Config {
  std::string path;
  std::vector<ListenAddress> listen;
  unsigned workers = 0;  // resolved: never 0 after load_config()
  std::uint16_t edns_payload = 1232;
  // Receive buffer of each UDP socket, in bytes: queries a burst leaves
  // queued while a worker is busy. 0 = the system's default (rmem_default).
  std::uint32_t udp_receive_buffer = 0;
  TcpLimits tcp;
  RateLimitConfig rate_limit;  // UDP response rate limiting; off unless configured
  // DNS Cookies: on by default, with a secret made at start (kept across
  // reloads) unless server.cookies.secret_file names one.
  CookieSecrets cookies;
  std::string cookie_secret_file;  // resolved; empty: the process's own secret
  // NSID and CH TXT id.server/hostname.bind (default: the host name; empty:
  // not answered); CH TXT version.bind when set.
  std::string identity;
  std::string version;
  std::vector<std::string> zone_files;  // resolved against the config's folder
  std::string geoip_database;           // resolved; the built-in database when not configured
  bool geoip_builtin = true;            // geoip.database is not configured
  std::string state_file;               // resolved; empty: no operator overrides
  AdminConfig admin;
  // Started as root (to bind port 53): switch to this user after binding.
  std::string user;
  std::string log_level = "info";
  common::LogFormat log_format = common::LogFormat::text;  // logging.format
  bool query_log = false;
  DnstapConfig dnstap;  // logging.dnstap; off unless configured
};

Config load_config(const std::string& path);

// The admin API's address: TEXT as "HOST:PORT" into ADMIN's host, port and
// text; false when it is not one.
bool parse_admin_address(const std::string& text, AdminConfig& admin);
// The bearer token: the first line of PATH, trailing blanks removed. Throws
// std::runtime_error naming PATH when it cannot be read.
std::string read_token_file(const std::string& path);

// Parses "127.0.0.1:53" or "[::1]:53"; false when it is neither.
bool parse_socket_address(const std::string& text, ListenAddress& out);

}  // namespace steerdns::server
