#include "server/config.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "common/load_error.hpp"
#include "server/metrics.hpp"

namespace steerdns::server {

using common::fail_at;
using common::LoadError;
using common::YamlDoc;
namespace fs = std::filesystem;

bool parse_admin_address(const std::string& text, AdminConfig& admin) {
  ListenAddress at;
  if (!parse_socket_address(text, at)) return false;
  admin.text = text;
  admin.host = text.front() == '[' ? text.substr(1, text.find(']') - 1) : text.substr(0, text.rfind(':'));
  admin.port = ntohs(at.address.ss_family == AF_INET
                         ? reinterpret_cast<const sockaddr_in&>(at.address).sin_port
                         : reinterpret_cast<const sockaddr_in6&>(at.address).sin6_port);
  return true;
}

std::string read_token_file(const std::string& path) {
  // Only a regular file, and only its first line up to kMax octets: a path
  // such as /dev/zero filled memory, and a FIFO or /dev/stdin would block.
  constexpr std::size_t kMax = 4096;
  std::error_code ec;
  const bool regular = fs::is_regular_file(path, ec);
  if (ec) throw std::runtime_error("cannot read '" + path + "': " + ec.message());
  if (!regular) throw std::runtime_error("cannot read '" + path + "': not a regular file");
  std::ifstream file(path);
  if (!file) throw std::runtime_error("cannot read '" + path + "': " + std::strerror(errno));
  std::string token(kMax + 1, '\0');
  file.read(token.data(), static_cast<std::streamsize>(token.size()));
  token.resize(static_cast<std::size_t>(file.gcount()));
  const auto newline = token.find('\n');
  if (newline == std::string::npos && token.size() > kMax)
    throw std::runtime_error("'" + path + "': the token is longer than 4096 characters");
  token.resize(std::min(newline, token.size()));
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  return token;
}

void make_admin_token(AdminConfig& admin, const std::string& user) {
  if (!admin.token_made) return;
  std::error_code ec;
  if (fs::exists(admin.token_file, ec)) {
    admin.token = read_token_file(admin.token_file);
    if (admin.token.size() < 16)
      throw std::runtime_error(
          "'" + admin.token_file +
          "': the token is shorter than 16 characters (delete the file to have a new one made)");
    return;
  }
  std::random_device random;
  std::string token;
  for (int i = 0; i < 8; ++i) {
    char buf[9];
    std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(random()));
    token += buf;
  }
  const std::string temp = admin.token_file + ".new";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0)
    throw std::runtime_error("cannot write the admin token '" + temp + "': " + std::strerror(errno));
  const std::string line = token + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  if (ok && geteuid() == 0 && !user.empty()) {
    if (const passwd* pw = getpwnam(user.c_str())) ok = fchown(fd, pw->pw_uid, pw->pw_gid) == 0;
  }
  ok = ::fsync(fd) == 0 && ok;
  const int saved = errno;
  ::close(fd);
  if (!ok || std::rename(temp.c_str(), admin.token_file.c_str()) != 0) {
    const int why = ok ? errno : saved;
    ::unlink(temp.c_str());
    throw std::runtime_error("cannot write the admin token '" + admin.token_file +
                             "': " + std::strerror(why));
  }
  admin.token = token;
}

bool parse_socket_address(const std::string& text, ListenAddress& out) {
  std::string host;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') return false;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) return false;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) return false;
  out.text = text;
  out.address = {};
  if (auto* v4 = reinterpret_cast<sockaddr_in*>(&out.address);
      inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(value));
    out.address_size = sizeof(sockaddr_in);
    return true;
  }
  if (auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.address);
      inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(value));
    out.address_size = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

namespace {

ListenAddress read_listen(const YamlDoc& doc, const common::Yaml& item) {
  ListenAddress out;
  common::Yaml address = item;
  if (item.is_map()) {
    common::require_map_keys(doc, item, "listen entry", {"address", "transport"});
    if (!item["address"]) fail_at(doc, item, "listen entry: missing key 'address'");
    address = item["address"];
  }
  const std::string text = common::read_string(doc, address, "listen address");
  if (!parse_socket_address(text, out))
    fail_at(doc, address,
            "listen address '" + text + "' is not ADDRESS:PORT (like 127.0.0.1:53 or [::1]:53)");
  if (item.is_map() && item["transport"]) {
    const std::string transport = common::read_string(doc, item["transport"], "transport");
    if (transport != "udp" && transport != "tcp")
      fail_at(doc, item["transport"], "transport '" + transport + "' is not udp or tcp");
    out.udp = transport == "udp";
    out.tcp = transport == "tcp";
  }
  return out;
}

constexpr unsigned kGeoAnswersPerSecond = 5000;

void read_rate_limit(const YamlDoc& doc, const common::Yaml& rrl, RateLimitConfig& out) {
  common::require_map_keys(doc, rrl, "server.rate_limit",
                           {"responses_per_second", "geo_answers_per_second", "nxdomains_per_second",
                            "errors_per_second", "slip", "ipv4_prefix", "ipv6_prefix", "table_size", "exempt",
                            "log_only"});
  auto rate = [&](const char* key, unsigned otherwise) {
    return rrl[key] ? static_cast<unsigned>(common::read_uint(doc, rrl[key], key, 0, 1'000'000)) : otherwise;
  };
  out.responses_per_second = rate("responses_per_second", 0);
  // Geo answers: small and the same for a whole region, asked by busy ECS
  // resolvers for many client subnets; 5000/s (or the answers' rate when
  // higher) unless answers are unlimited.
  out.geo_answers_per_second =
      rate("geo_answers_per_second",
           out.responses_per_second > 0 ? std::max(kGeoAnswersPerSecond, out.responses_per_second) : 0);
  // NXDOMAIN and errors default to the responses' rate, as in BIND.
  out.nxdomains_per_second = rate("nxdomains_per_second", out.responses_per_second);
  out.errors_per_second = rate("errors_per_second", out.responses_per_second);
  if (rrl["slip"]) out.slip = static_cast<unsigned>(common::read_uint(doc, rrl["slip"], "slip", 0, 10));
  if (rrl["ipv4_prefix"])
    out.ipv4_prefix = static_cast<unsigned>(common::read_uint(doc, rrl["ipv4_prefix"], "ipv4_prefix", 8, 32));
  if (rrl["ipv6_prefix"])
    out.ipv6_prefix = static_cast<unsigned>(
        common::read_uint(doc, rrl["ipv6_prefix"], "ipv6_prefix", 16, 128));
  if (rrl["table_size"])
    out.table_size = common::read_size(doc, rrl["table_size"], "table_size", 1024, 64u << 20);
  if (rrl["log_only"]) out.log_only = common::read_bool(doc, rrl["log_only"], "log_only");
  if (const auto exempt = rrl["exempt"]) {
    if (!exempt.is_sequence()) fail_at(doc, exempt, "exempt must be a list of networks (like 192.0.2.0/24)");
    for (const auto& item : exempt) {
      const std::string text = common::read_string(doc, item, "exempt");
      const auto network = geoip::parse_network(text);
      if (!network)
        fail_at(doc, item, "exempt: '" + text + "' is not a network (like 192.0.2.0/24 or 2001:db8::/32)");
      out.exempt.push_back(*network);
    }
  }
}

// The name this host goes by (NSID, id.server); empty when it has none.
std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return {};
  return name;
}

// server.cookies: {enabled, secret_file}. Without a secret file, every
// world of this process shares one random secret, so a reload keeps the
// cookies clients hold.
void read_cookies(const YamlDoc& doc, const common::Yaml& cookies, Config& config) {
  static const CookieSecret process_secret = random_cookie_secret();
  config.cookies.enabled = true;
  config.cookies.current = process_secret;
  if (!cookies) return;
  common::require_map_keys(doc, cookies, "server.cookies", {"enabled", "secret_file"});
  if (cookies["enabled"]) config.cookies.enabled = common::read_bool(doc, cookies["enabled"], "enabled");
  if (!cookies["secret_file"]) return;
  config.cookie_secret_file = common::path_beside(doc, common::read_string(doc, cookies["secret_file"],
                                                                           "secret_file"));
  const bool enabled = config.cookies.enabled;
  config.cookies = read_cookie_secrets(config.cookie_secret_file);
  config.cookies.enabled = enabled;
}

void read_server(const YamlDoc& doc, const common::Yaml& server, Config& config) {
  common::require_map_keys(doc, server, "server",
                           {"listen", "workers", "edns_payload", "udp_receive_buffer", "tcp", "rate_limit",
                            "user", "identity", "version", "cookies"});
  config.identity = host_name();
  for (const char* key : {"identity", "version"}) {
    if (!server[key]) continue;
    std::string& target = key[0] == 'i' ? config.identity : config.version;
    target = common::read_string(doc, server[key], key);
    if (target.size() > 255) fail_at(doc, server[key], std::string(key) + " is longer than 255 octets");
    for (const char c : target)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F)
        fail_at(doc, server[key], std::string(key) + " holds a control character");
  }
  read_cookies(doc, server["cookies"], config);
  if (server["user"]) {
    config.user = common::read_string(doc, server["user"], "user");
    if (config.user.empty() || getpwnam(config.user.c_str()) == nullptr)
      fail_at(doc, server["user"], "user: no user '" + config.user + "' on this system");
  }
  if (!server["listen"] || !server["listen"].is_sequence() || server["listen"].size() == 0)
    fail_at(doc, server["listen"] ? server["listen"] : server,
            "server: 'listen' must list at least one address");
  for (const auto& item : server["listen"]) config.listen.push_back(read_listen(doc, item));
  if (server["workers"])
    config.workers = static_cast<unsigned>(common::read_uint(doc, server["workers"], "workers", 0, 256));
  if (server["edns_payload"])
    config.edns_payload = static_cast<std::uint16_t>(
        common::read_uint(doc, server["edns_payload"], "edns_payload", 512, 4096));
  if (server["udp_receive_buffer"])
    config.udp_receive_buffer = static_cast<std::uint32_t>(
        common::read_size(doc, server["udp_receive_buffer"], "udp_receive_buffer", 65536, 256u << 20));
  if (const auto tcp = server["tcp"]) {
    common::require_map_keys(doc, tcp, "server.tcp",
                             {"max_connections", "max_connections_per_client", "idle_timeout",
                              "query_timeout", "max_pipelined"});
    if (tcp["max_connections"])
      config.tcp.max_connections = static_cast<unsigned>(
          common::read_uint(doc, tcp["max_connections"], "max_connections", 1, 1'000'000));
    if (tcp["max_connections_per_client"])
      config.tcp.max_connections_per_client = static_cast<unsigned>(
          common::read_uint(doc, tcp["max_connections_per_client"], "max_connections_per_client", 1,
                            1'000'000));
    for (const char* key : {"idle_timeout", "query_timeout"}) {
      if (!tcp[key]) continue;
      const auto value = common::read_duration(doc, tcp[key], key);
      if (value.count() < 100) fail_at(doc, tcp[key], std::string(key) + " must be at least 100ms");
      (key[0] == 'i' ? config.tcp.idle_timeout : config.tcp.query_timeout) = value;
    }
    if (tcp["max_pipelined"])
      config.tcp.max_pipelined = static_cast<unsigned>(
          common::read_uint(doc, tcp["max_pipelined"], "max_pipelined", 1, 65535));
  }
  if (const auto rrl = server["rate_limit"]) read_rate_limit(doc, rrl, config.rate_limit);
}

void read_zones(const YamlDoc& doc, const common::Yaml& zones, Config& config) {
  auto resolve = [&](const std::string& p) { return common::path_beside(doc, p); };
  if (zones.is_scalar()) {
    const std::string dir = resolve(zones.scalar());
    std::error_code ec;
    if (fs::is_regular_file(dir, ec)) {
      config.zone_files.push_back(dir);
      return;
    }
    if (!fs::is_directory(dir, ec)) fail_at(doc, zones, "zones: '" + dir + "' is not a directory or file");
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const auto ext = entry.path().extension();
      if (entry.is_regular_file() && (ext == ".yaml" || ext == ".yml"))
        config.zone_files.push_back(entry.path().string());
    }
    std::sort(config.zone_files.begin(), config.zone_files.end());
    if (config.zone_files.empty()) fail_at(doc, zones, "zones: no *.yaml files in '" + dir + "'");
    return;
  }
  if (!zones.is_sequence() || zones.size() == 0)
    fail_at(doc, zones, "zones must be a directory or a list of zone files");
  for (const auto& item : zones)
    config.zone_files.push_back(resolve(common::read_string(doc, item, "zones")));
}

// The built-in database: installed beside the binary (PREFIX/bin/steerdns,
// PREFIX/share/steerdns/), else the source tree's (a build tree's binary).
std::string builtin_database() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = exe.parent_path().parent_path() / "share/steerdns/steerdns-world.mmdb";
    if (fs::is_regular_file(installed, ec)) return installed.string();
  }
  return STEERDNS_BUILTIN_MMDB;
}

bool is_loopback(const ListenAddress& at) {
  if (at.address.ss_family == AF_INET)
    return (ntohl(reinterpret_cast<const sockaddr_in&>(at.address).sin_addr.s_addr) >> 24) == 127;
  return IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6&>(at.address).sin6_addr);
}

void read_admin(const YamlDoc& doc, const common::Yaml& admin, Config& config) {
  AdminConfig& a = config.admin;
  a.enabled = true;
  if (admin.is_null()) return;  // "admin:" alone: the defaults
  common::require_map_keys(doc, admin, "admin", {"listen", "token_file"});
  if (admin["listen"]) {
    const std::string text = common::read_string(doc, admin["listen"], "listen");
    if (!parse_admin_address(text, a))
      fail_at(doc, admin["listen"], "admin listen '" + text + "' is not ADDRESS:PORT (like 127.0.0.1:8053)");
  }
  if (admin["token_file"]) {
    a.token_file = common::path_beside(doc, common::read_string(doc, admin["token_file"], "token_file"));
    try {
      a.token = read_token_file(a.token_file);
    } catch (const std::runtime_error& e) {
      fail_at(doc, admin["token_file"], std::string("token_file: ") + e.what());
    }
    if (a.token.size() < 16)
      fail_at(doc, admin["token_file"],
              "token_file: the token in '" + a.token_file + "' is shorter than 16 characters");
  }
  if (a.token_file.empty() && !config.state_file.empty()) {
    a.token_file = (fs::path(config.state_file).parent_path() / kMadeTokenName).string();
    a.token_made = true;
  }
  ListenAddress at;
  parse_socket_address(a.text, at);
  if (!is_loopback(at) && (a.token.empty() || a.token_made))
    fail_at(doc, admin["listen"],
            "admin listen '" + a.text +
                "' is not a loopback address: set admin.token_file so that only operators can change state");
}

}  // namespace

Config load_config(const std::string& path) {
  const YamlDoc doc = common::load_yaml_file(path);
  if (!doc.root.is_defined() || doc.root.is_null()) throw LoadError(path, 0, "the config file is empty");
  common::require_map_keys(doc, doc.root, "config",
                           {"server", "zones", "geoip", "health", "admin", "logging"});
  Config config;
  config.path = path;
  if (!doc.root["server"]) fail_at(doc, doc.root, "missing key 'server'");
  read_server(doc, doc.root["server"], config);
  if (!doc.root["zones"]) fail_at(doc, doc.root, "missing key 'zones'");
  read_zones(doc, doc.root["zones"], config);
  config.geoip_database = builtin_database();
  if (const auto geoip = doc.root["geoip"]) {
    common::require_map_keys(doc, geoip, "geoip", {"database"});
    if (geoip["database"]) {
      const std::string file = common::read_string(doc, geoip["database"], "database");
      config.geoip_database = common::path_beside(doc, file);
      config.geoip_builtin = false;
      std::error_code ec;
      if (!fs::is_regular_file(config.geoip_database, ec))
        fail_at(doc, geoip["database"], "database: '" + config.geoip_database + "' is not a file");
    }
  }
  if (const auto health = doc.root["health"]) {
    common::require_map_keys(doc, health, "health", {"state_file"});
    if (health["state_file"]) {
      const std::string file = common::read_string(doc, health["state_file"], "state_file");
      config.state_file = fs::absolute(common::path_beside(doc, file)).string();
      std::error_code ec;
      const fs::path folder = fs::path(config.state_file).parent_path();
      if (!fs::is_directory(folder, ec))
        fail_at(doc, health["state_file"], "state_file: the folder '" + folder.string() + "' does not exist");
    }
  }
  if (const auto admin = doc.root["admin"]) read_admin(doc, admin, config);
  if (const auto logging = doc.root["logging"]) {
    common::require_map_keys(doc, logging, "logging", {"level", "format", "query_log", "dnstap"});
    if (const auto dnstap = logging["dnstap"]) {
      common::require_map_keys(doc, dnstap, "logging.dnstap", {"socket", "queries", "responses"});
      if (!dnstap["socket"])
        fail_at(doc, dnstap, "logging.dnstap: 'socket' (a unix socket path) is required");
      config.dnstap.socket =
          fs::absolute(common::path_beside(doc, common::read_string(doc, dnstap["socket"], "socket")))
              .string();
      std::error_code ec;
      const fs::path folder = fs::path(config.dnstap.socket).parent_path();
      if (!fs::is_directory(folder, ec))
        fail_at(doc, dnstap["socket"], "socket: the folder '" + folder.string() + "' does not exist");
      if (config.dnstap.socket.size() >= sizeof(sockaddr_un{}.sun_path))
        fail_at(doc, dnstap["socket"],
                "socket: '" + config.dnstap.socket + "' is longer than a unix socket path can be (" +
                    std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " octets)");
      if (dnstap["queries"]) config.dnstap.queries = common::read_bool(doc, dnstap["queries"], "queries");
      if (dnstap["responses"])
        config.dnstap.responses = common::read_bool(doc, dnstap["responses"], "responses");
      if (!config.dnstap.queries && !config.dnstap.responses)
        fail_at(doc, dnstap,
                "logging.dnstap: queries and responses are both off; remove the section instead");
    }
    if (logging["level"]) {
      config.log_level = common::read_string(doc, logging["level"], "level");
      const char* levels[] = {"trace", "debug", "info", "warn", "error"};
      if (std::none_of(std::begin(levels), std::end(levels),
                       [&](const char* l) { return config.log_level == l; }))
        fail_at(doc, logging["level"],
                "level '" + config.log_level + "' is not one of trace, debug, info, warn, error");
    }
    if (logging["format"]) {
      const std::string format = common::read_string(doc, logging["format"], "format");
      if (!common::parse_log_format(format, config.log_format))
        fail_at(doc, logging["format"], "format '" + format + "' is not one of text, json");
    }
    if (logging["query_log"]) config.query_log = common::read_bool(doc, logging["query_log"], "query_log");
  }
  if (config.workers == 0) config.workers = std::max(1u, std::thread::hardware_concurrency());
  return config;
}

}  // namespace steerdns::server
