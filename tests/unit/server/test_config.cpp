#include <doctest/doctest.h>

#include "common/load_error.hpp"
#include "fixture.hpp"
#include "server/config.hpp"

using namespace steerdns;
using steerdns::test::TempDir;

namespace {
const char* kZone =
    "zone: example.com\nsoa: {mname: ns1, rname: h}\nns: [ns1]\nrecords: {ns1: {A: 127.0.0.1}}\n";

std::string config_error(const std::string& text) {
  TempDir dir;
  dir.write("zones/example.com.yaml", kZone);
  try {
    server::load_config(dir.write("steerdns.yaml", text));
  } catch (const common::LoadError& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_CASE("the example config loads and builds") {
  const auto config = server::load_config(STEERDNS_SOURCE_DIR "/examples/steerdns.yaml");
  CHECK(config.listen.size() == 2);
  CHECK(config.workers >= 1);
  CHECK(config.edns_payload == 1232);
  CHECK(config.tcp.idle_timeout == std::chrono::seconds(5));
  const auto world = server::build_world(config);
  CHECK(world->zones.zones().size() == 1);
}

TEST_CASE("config: addresses, transports, durations, zone directories") {
  TempDir dir;
  dir.write("zones.d/a.yaml", kZone);
  dir.write("zones.d/b.yml",
            "zone: example.net\nsoa: {mname: ns1, rname: h}\nns: [ns1]\nrecords: {ns1: {A: 127.0.0.1}}\n");
  dir.write("zones.d/notes.txt", "not a zone");
  const auto config = server::load_config(dir.write("c.yaml", R"(server:
  listen:
    - 127.0.0.1:5300
    - {address: "[::1]:5300", transport: udp}
  workers: 3
  edns_payload: 1400
  tcp: {max_connections: 8, idle_timeout: 250ms, max_pipelined: 4}
zones: zones.d
logging: {level: debug, query_log: yes}
)"));
  REQUIRE(config.listen.size() == 2);
  CHECK(config.listen[0].udp);
  CHECK(config.listen[0].tcp);
  CHECK(config.listen[1].address.ss_family == AF_INET6);
  CHECK(config.listen[1].udp);
  CHECK_FALSE(config.listen[1].tcp);
  CHECK(config.workers == 3);
  CHECK(config.edns_payload == 1400);
  CHECK(config.tcp.max_connections == 8);
  CHECK(config.tcp.idle_timeout == std::chrono::milliseconds(250));
  CHECK(config.zone_files.size() == 2);
  CHECK(config.query_log);
  CHECK(server::build_world(config)->zones.zones().size() == 2);
}

TEST_CASE("config errors name file, line and the offending key or value") {
  const std::string listen = "server:\n  listen: [127.0.0.1:5300]\n";
  CHECK(config_error(listen + "zones: [zones/example.com.yaml]\ncolour: 1\n")
            .find("steerdns.yaml:4: unknown key 'colour'") != std::string::npos);
  CHECK(config_error("server:\n  listen: [127.0.0.1]\nzones: [zones/example.com.yaml]\n")
            .find("steerdns.yaml:2:") != std::string::npos);
  CHECK(config_error(listen + "  edns_payload: 100\nzones: [zones/example.com.yaml]\n")
            .find("out of range 512..4096") != std::string::npos);
  CHECK(config_error(listen + "  tcp: {idle_timeout: soon}\nzones: [zones/example.com.yaml]\n")
            .find("'soon' is not a duration") != std::string::npos);
  CHECK(config_error(listen).find("missing key 'zones'") != std::string::npos);
  CHECK(config_error(listen + "zones: nowhere\n").find("not a directory") != std::string::npos);
  CHECK(config_error(listen + "zones: [zones/example.com.yaml]\nlogging: {level: loud}\n")
            .find("level 'loud'") != std::string::npos);
}

TEST_CASE("socket addresses") {
  server::ListenAddress a;
  CHECK(server::parse_socket_address("127.0.0.1:53", a));
  CHECK(server::parse_socket_address("[::1]:5353", a));
  CHECK(a.address.ss_family == AF_INET6);
  CHECK_FALSE(server::parse_socket_address("::1:53", a));
  CHECK_FALSE(server::parse_socket_address("127.0.0.1:0", a));
  CHECK_FALSE(server::parse_socket_address("127.0.0.1:70000", a));
  CHECK_FALSE(server::parse_socket_address("localhost:53", a));
}

TEST_CASE("config: identity, version, cookies and the geo answer rate") {
  TempDir dir;
  dir.write("zones/example.com.yaml", kZone);
  dir.write("secret", "000102030405060708090a0b0c0d0e0f\n");
  const auto defaults = server::load_config(
      dir.write("a.yaml", "server: {listen: [127.0.0.1:5353]}\nzones: zones\n"));
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  CHECK(defaults.identity == host);
  CHECK(defaults.version.empty());
  CHECK(defaults.cookies.enabled);
  CHECK_FALSE(defaults.rate_limit.enabled());
  // The process's secret: the same at every load, so a reload keeps cookies.
  const auto again = server::load_config(dir.path() / "a.yaml");
  CHECK(again.cookies.current == defaults.cookies.current);

  const auto set = server::load_config(dir.write("b.yaml", R"(server:
  listen: [127.0.0.1:5353]
  identity: ns2.example.net
  version: "steerdns"
  cookies: {secret_file: secret}
  rate_limit: {responses_per_second: 100}
zones: zones
)"));
  CHECK(set.identity == "ns2.example.net");
  CHECK(set.version == "steerdns");
  CHECK(set.cookies.current[15] == 0x0f);
  CHECK(set.rate_limit.geo_answers_per_second == 5000);
  const auto busy = server::load_config(
      dir.write("d.yaml",
                "server: {listen: [127.0.0.1:5353], rate_limit: {responses_per_second: 9000}}\n"
                "zones: zones\n"));
  CHECK(busy.rate_limit.geo_answers_per_second == 9000);  // never stricter than plain answers
  CHECK(set.rate_limit.responses_per_second == 100);

  const auto off = server::load_config(dir.write("c.yaml", R"(server:
  listen: [127.0.0.1:5353]
  identity: ""
  cookies: {enabled: false}
  rate_limit: {responses_per_second: 100, geo_answers_per_second: 300}
zones: zones
)"));
  CHECK(off.identity.empty());
  CHECK_FALSE(off.cookies.enabled);
  CHECK(off.rate_limit.geo_answers_per_second == 300);

  CHECK(config_error("server:\n  listen: [127.0.0.1:5353]\n  cookies: {secret_file: nothing}\nzones: zones\n")
            .find("nothing: cannot read the cookie secret file") != std::string::npos);
  CHECK(config_error("server:\n  listen: [127.0.0.1:5353]\n  identity: \"a\\tb\"\nzones: zones\n")
            .find(":3: identity holds a control character") != std::string::npos);
  CHECK(config_error("server: {listen: [127.0.0.1:5353]}\nzones: zones\n"
                     "logging: {dnstap: {socket: tap.sock, queries: no, responses: no}}\n")
            .find("queries and responses are both off") != std::string::npos);
  CHECK(config_error("server: {listen: [127.0.0.1:5353]}\nzones: zones\nlogging: {dnstap: {socket: " +
                     std::string(120, 's') + "}}\n")
            .find("longer than a unix socket path can be") != std::string::npos);
  CHECK(config_error("server:\n  listen: [127.0.0.1:5353]\n  cookies: {secret: x}\nzones: zones\n")
            .find("unknown key 'secret'") != std::string::npos);
}
