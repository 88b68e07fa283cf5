// Regression tests for what fuzzing (fuzz/, `make fuzz`) found: each test
// is named after its target and the input that broke it.
#include <doctest/doctest.h>

#include <fstream>

#include "common/load_error.hpp"
#include "fixture.hpp"
#include "server/config.hpp"

using namespace steerdns;

namespace {

// The LoadError a zone TEXT is refused with ("no error" when accepted).
std::string zone_error(const std::string& text) {
  try {
    zones::load_zone_text(text, "fuzz.yaml");
  } catch (const common::LoadError& e) {
    return e.what();
  }
  return "no error";
}

const std::string kHead = "zone: example.com\nsoa: {mname: ns1, rname: h, serial: 1}\nns: [ns1]\n";

}  // namespace

// fuzz/corpus/zone/finding-nan-location.yaml. std::from_chars reads "nan"
// (and "-nan") as NaN, which no range check with < and > rejects: the region
// loaded with NaN coordinates, and every distance to it was NaN.
TEST_CASE("fuzz_zone: a region located at nan is refused") {
  for (const char* location :
       {"[nan, 2.35]", "[48.86, NaN]", "[-nan, 2]", "[inf, 2]", "[48.86, -infinity]"}) {
    CAPTURE(location);
    const std::string error = zone_error(kHead + "regions:\n  paris: {location: " + location +
                                         ", vips: [127.1.0.1]}\ngeo:\n  a: {regions: [paris]}\n");
    CHECK(error.find("fuzz.yaml:5: ") == 0);
    CHECK(error.find("is not a number in") != std::string::npos);
  }
  CHECK(zone_error(kHead + "regions:\n  paris: {location: [-90, 180], vips: [127.1.0.1]}\n") ==
        "no error");
}

// fuzz/corpus/config/finding-token-dev-zero.yaml. read_token_file read the
// token's "first line" with std::getline, so `token_file: /dev/zero` read
// until memory ran out (libFuzzer: out-of-memory), and a FIFO blocked the load.
TEST_CASE("fuzz_config: token_file /dev/zero is refused, not read until memory runs out") {
  test::TempDir dir;
  dir.write("zones/a.yaml", kHead);
  auto config_error = [&](const std::string& token_file) -> std::string {
    try {
      server::load_config(dir.write(
          "c.yaml", "server: {listen: [127.0.0.1:53]}\nzones: zones\nadmin: {token_file: " +
                        token_file + "}\n"));
    } catch (const common::LoadError& e) {
      return e.what();
    }
    return "no error";
  };
  CHECK(config_error("/dev/zero")
            .find("c.yaml:3: token_file: cannot read '/dev/zero': not a regular file") !=
        std::string::npos);
  CHECK(config_error("zones").find("not a regular file") != std::string::npos);
  dir.write("long", std::string(5000, 'x'));
  CHECK(config_error("long").find("longer than 4096 characters") != std::string::npos);
  dir.write("good", "0123456789abcdef0123\r\nsecond line\n");
  CHECK(config_error("good") == "no error");
  CHECK(server::read_token_file(dir.path().string() + "/good") == "0123456789abcdef0123");
}

// fuzz/corpus/zone/finding-rdata-name-over-255.yaml. A relative name in
// record data is completed with the zone's name by ldns, which does not check
// the result: under a long apex, NS, MX, CNAME... targets of 256+ octets
// loaded, and every reply holding one was unparseable ("Domainname length
// overflow" in ldns).
TEST_CASE("fuzz_zone: a relative name in RDATA longer than 255 octets with the origin is refused") {
  const std::string apex = std::string(60, 'a') + "." + std::string(60, 'b') + "." +
                           std::string(60, 'c') + ".example.com";
  const std::string head = "zone: " + apex + "\nsoa: {mname: ns1, rname: h, serial: 1}\n";
  const std::string d60(60, 'd');
  CHECK(zone_error(head + "ns: [" + d60 + "]\n")
            .find("fuzz.yaml:3: NS '" + d60 + "': a name in it is longer than 255 octets") == 0);
  CHECK(zone_error(head + "ns: [ns1]\nrecords:\n  www: {MX: 10 " + d60 + "}\n")
            .find("fuzz.yaml:5: MX '10 " + d60 + "'") == 0);
  CHECK(
      zone_error("zone: " + apex + "\nsoa: {mname: " + d60 + ", rname: h, serial: 1}\nns: [ns1]\n")
          .find("a name in it is longer than 255 octets") != std::string::npos);
  // 255 octets exactly is a name: 196 of the apex, 59 of a 58-octet label.
  CHECK(zone_error(head + "ns: [" + std::string(58, 'd') + "]\n") == "no error");
  CHECK(zone_error(head + "ns: [" + std::string(59, 'd') + "]\n") != "no error");
}
