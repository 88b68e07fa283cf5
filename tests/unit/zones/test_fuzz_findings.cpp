// Regression tests for what fuzzing (fuzz/, `make fuzz`) found in zones/:
// each test is named after its target and the input that broke it. The
// server/ findings (fuzz_config) are in server/test_fuzz_findings.cpp.
#include <doctest/doctest.h>

#include <string>

#include "common/load_error.hpp"
#include "zones/zone.hpp"

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
  CHECK(
      zone_error(
          kHead +
          "records: {ns1: {A: 127.0.0.1}}\nregions:\n  paris: {location: [-90, 180], vips: [127.1.0.1]}\n") ==
      "no error");
}

// fuzz/corpus/zone/finding-rdata-name-over-255.yaml. A relative name in
// record data is completed with the zone's name by ldns, which does not check
// the result: under a long apex, NS, MX, CNAME... targets of 256+ octets
// loaded, and every reply holding one was unparseable ("Domainname length
// overflow" in ldns).
TEST_CASE("fuzz_zone: a relative name in RDATA longer than 255 octets with the origin is refused") {
  const std::string apex = std::string(60, 'a') + "." + std::string(60, 'b') + "." + std::string(60, 'c') +
                           ".example.com";
  const std::string head = "zone: " + apex + "\nsoa: {mname: ns1, rname: h, serial: 1}\n";
  const std::string d60(60, 'd');
  CHECK(zone_error(head + "ns: [" + d60 + "]\n")
            .find("fuzz.yaml:3: NS '" + d60 + "': a name in it is longer than 255 octets") == 0);
  CHECK(zone_error(head + "ns: [ns1]\nrecords:\n  www: {MX: 10 " + d60 + "}\n")
            .find("fuzz.yaml:5: MX '10 " + d60 + "'") == 0);
  CHECK(zone_error("zone: " + apex + "\nsoa: {mname: " + d60 + ", rname: h, serial: 1}\nns: [ns1]\n")
            .find("a name in it is longer than 255 octets") != std::string::npos);
  // 255 octets exactly is a name: 196 of the apex, 59 of a 58-octet label.
  const std::string d58(58, 'd');
  CHECK(zone_error(head + "ns: [" + d58 + "]\nrecords: {" + d58 + ": {A: 127.0.0.1}}\n") == "no error");
  CHECK(zone_error(head + "ns: [" + std::string(59, 'd') + "]\n") != "no error");
}
