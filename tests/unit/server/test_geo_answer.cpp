// Geo names through answer(): the client placed by ECS or by the packet's
// source address, on the test database the repo writes itself.
#include <arpa/inet.h>
#include <doctest/doctest.h>

#include "common/load_error.hpp"
#include "fixture.hpp"

using namespace steerdns;
using steerdns::test::addresses;
using steerdns::test::ask;
using steerdns::test::ecs_query;
using steerdns::test::scope_of;
using steerdns::test::source;

namespace {

const std::string kGeoZone = R"(zone: example.com
soa: {mname: ns1, rname: h}
ns: [ns1]
records:
  ns1: {A: 127.0.0.1}
  repo: {CNAME: artifacts}
regions:
  paris: {location: [48.86, 2.35], vips: [127.1.0.1, 127.1.0.2]}
  virginia: {location: [38.95, -77.45], vips: [127.2.0.1, 127.2.0.2, "::1"]}
  singapore: {location: [1.29, 103.85], vips: [127.3.0.1]}
geo:
  artifacts:
    regions: [paris, virginia, singapore]
    overrides:
      default: [singapore, paris, virginia]
  pinned:
    ttl: 60
    regions: [paris, virginia, singapore]
    overrides:
      cidr: {"193.51.24.0/24": [virginia, paris, singapore]}
      country: {jp: [paris, virginia, singapore]}
      continent: {OC: [virginia, singapore, paris]}
)";

std::shared_ptr<server::World> geo_world(const std::string& zone = kGeoZone) {
  auto world = test::world_from({zone});
  server::compile_geo(*world, STEERDNS_TEST_MMDB);
  return world;
}

const server::World& world() {
  static auto w = geo_world();
  return *w;
}

}  // namespace

TEST_CASE("ECS places the client: the nearest region's VIPs and the merged network's scope") {
  auto paris = ask(world(), ecs_query("artifacts.example.com.", LDNS_RR_TYPE_A, "193.51.24.0", 24));
  CHECK(addresses(paris) == std::vector<std::string>{"127.1.0.1", "127.1.0.2"});
  CHECK(scope_of(paris) == 16);  // Paris and Frankfurt /17s merged
  CHECK(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(paris.pkt), 0)) == 30);
  auto virginia = ask(world(), ecs_query("artifacts.example.com.", LDNS_RR_TYPE_A, "8.8.8.0", 24));
  CHECK(addresses(virginia) == std::vector<std::string>{"127.2.0.1", "127.2.0.2"});
  CHECK(scope_of(virginia) == 24);
  auto singapore = ask(world(), ecs_query("artifacts.example.com.", LDNS_RR_TYPE_A, "1.1.1.0", 24));
  CHECK(addresses(singapore) == std::vector<std::string>{"127.3.0.1"});
  auto v6 = ask(world(), ecs_query("artifacts.example.com.", LDNS_RR_TYPE_AAAA, "2001:4860:4860::", 48));
  CHECK(addresses(v6) == std::vector<std::string>{"::1"});
  CHECK(scope_of(v6) == 32);  // the database's 2001:4860::/32
}

TEST_CASE("without ECS the packet's source address places the client, and no ECS is echoed") {
  const auto from = source("1.1.1.7");
  auto r = ask(world(), test::make_query("artifacts.example.com.", LDNS_RR_TYPE_A, {.edns = true}),
               server::Transport::udp, &from);
  CHECK(addresses(r) == std::vector<std::string>{"127.3.0.1"});
  CHECK(scope_of(r) == -1);
  // Source prefix 0: the resolver asks for no tailoring; its own address decides, scope 0.
  auto zero = ask(world(), ecs_query("artifacts.example.com.", LDNS_RR_TYPE_A, "0.0.0.0", 0),
                  server::Transport::udp, &from);
  CHECK(addresses(zero) == std::vector<std::string>{"127.3.0.1"});
  CHECK(scope_of(zero) == 0);
  // A client nobody can place (private range): the default list.
  const auto lan = source("10.1.2.3");
  auto unplaced = ask(world(), test::make_query("artifacts.example.com.", LDNS_RR_TYPE_A),
                      server::Transport::udp, &lan);
  CHECK(addresses(unplaced) == std::vector<std::string>{"127.3.0.1"});
}

TEST_CASE("a family the region lacks is NODATA, with the scope; other types too") {
  auto r = ask(world(), ecs_query("artifacts.example.com.", LDNS_RR_TYPE_AAAA, "193.51.24.0", 24));
  CHECK(r.rcode() == LDNS_RCODE_NOERROR);
  CHECK(r.count(LDNS_SECTION_ANSWER) == 0);
  CHECK(r.count(LDNS_SECTION_AUTHORITY) == 1);
  CHECK(scope_of(r) == 16);
  auto txt = ask(world(), ecs_query("artifacts.example.com.", LDNS_RR_TYPE_TXT, "193.51.24.0", 24));
  CHECK(txt.count(LDNS_SECTION_ANSWER) == 0);
  // Static data keeps scope 0.
  auto ns = ask(world(), ecs_query("ns1.example.com.", LDNS_RR_TYPE_A, "193.51.24.0", 24));
  CHECK(scope_of(ns) == 0);
}

TEST_CASE("a CNAME into a geo name is followed") {
  auto r = ask(world(), ecs_query("repo.example.com.", LDNS_RR_TYPE_A, "8.8.8.0", 24));
  REQUIRE(r.count(LDNS_SECTION_ANSWER) == 3);
  CHECK(r.rr(LDNS_SECTION_ANSWER, 0) == "repo.example.com.\t3600\tIN\tCNAME\tartifacts.example.com.");
  CHECK(addresses(r) == std::vector<std::string>{"127.2.0.1", "127.2.0.2"});
  CHECK(scope_of(r) == 24);
}

TEST_CASE("overrides in zone YAML: CIDR, country, continent") {
  auto cidr = ask(world(), ecs_query("pinned.example.com.", LDNS_RR_TYPE_A, "193.51.24.0", 24));
  CHECK(addresses(cidr).front() == "127.2.0.1");
  CHECK(scope_of(cidr) == 24);
  CHECK(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(cidr.pkt), 0)) == 60);
  auto jp = ask(world(), ecs_query("pinned.example.com.", LDNS_RR_TYPE_A, "203.0.113.0", 24));
  CHECK(addresses(jp).front() == "127.1.0.1");
  auto oc = ask(world(), ecs_query("pinned.example.com.", LDNS_RR_TYPE_A, "1.1.1.0", 24));
  CHECK(addresses(oc).front() == "127.2.0.1");
}

TEST_CASE("geo declarations are validated with file:line") {
  auto error = [](const std::string& zone) -> std::string {
    try {
      geo_world(zone);
    } catch (const common::LoadError& e) {
      return e.what();
    }
    return "no error";
  };
  const std::string head =
      "zone: example.com\nsoa: {mname: ns1, rname: h}\nns: [ns1.example.net.]\nregions:\n"
      "  paris: {location: [48.86, 2.35], vips: [127.1.0.1]}\n";
  CHECK(error(head + "geo:\n  a: {regions: [lyon]}\n")
            .find(":7: geo name 'a': region 'lyon' is not declared") != std::string::npos);
  CHECK(error(head + "geo:\n  a: {regions: [paris], overrides: {cidr: {\"10.0.0.1/8\": [paris]}}}\n")
            .find(":7: cidr '10.0.0.1/8'") != std::string::npos);
  CHECK(error(head + "geo:\n  a: {regions: [paris], overrides: {continent: {XX: [paris]}}}\n")
            .find("continent 'XX'") != std::string::npos);
  CHECK(error(head + "geo:\n  a: {regions: [paris], overrides: {country: {UK: [paris]}}}\n")
            .find("country 'UK' is not an ISO 3166 alpha-2 code (the United Kingdom is GB)") !=
        std::string::npos);
  CHECK(error(head + "geo:\n  a: {regions: [paris], overrides: {country: {XX: [paris]}}}\n")
            .find("country 'XX' is not an ISO 3166 alpha-2 code") != std::string::npos);
  CHECK(error(head + "geo:\n  a: {regions: [paris], overrides: {country: {gb: [paris]}}}\n") == "no error");
  CHECK(error(head + "geo:\n  a: {regions: [paris], colour: red}\n").find("unknown key 'colour'") !=
        std::string::npos);
  CHECK(error("zone: example.com\nsoa: {mname: ns1, rname: h}\nns: [ns1]\nregions:\n"
              "  paris: {location: [95, 2.35], vips: [127.1.0.1]}\n")
            .find(":5: latitude: '95'") != std::string::npos);
  CHECK(error(head + "records:\n  a: {A: 127.0.0.1}\ngeo:\n  a: {regions: [paris]}\n")
            .find("also has records") != std::string::npos);
  CHECK(error(head + "geo:\n  a: {regions: [paris]}\n").find("no error") != std::string::npos);
  // A list that leaves out a region: its clients would get NODATA once the
  // listed ones are drained or down.
  const std::string two = head + "  lyon: {location: [45.76, 4.84], vips: [127.1.0.9]}\n";
  CHECK(error(two + "geo:\n  a: {regions: [paris, lyon], overrides: {country: {FR: [paris]}}}\n")
            .find(":8: country FR: leaves out lyon; list every region") != std::string::npos);
  CHECK(error(two + "geo:\n  a: {regions: [paris, lyon], overrides: {default: [lyon]}}\n")
            .find("default: leaves out paris") != std::string::npos);
  CHECK(error(two + "geo:\n  a: {regions: [paris, lyon], overrides: {country: {FR: [lyon, paris]}}}\n") ==
        "no error");
  // A string where a list belongs, and a geo name's key at the level of names.
  CHECK(error("zone: example.com\nsoa: {mname: ns1, rname: h}\nns: [ns1]\nregions:\n"
              "  paris:\n    location: [48.86, 2.35]\n    vips: 127.1.0.1, 127.1.0.2\n")
            .find(":7: region 'paris': 'vips' must be a list ([127.1.0.1, 127.1.0.2] or one '- ADDRESS' per "
                  "line), not the text") != std::string::npos);
  CHECK(error(head + "geo:\n  a: {regions: [paris]}\n  check: {type: tcp, port: 443}\n")
            .find(":8: 'check' is a key of a geo name, here at the level of the geo names: indent it") !=
        std::string::npos);
}
