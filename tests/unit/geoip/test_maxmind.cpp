// The geoip module on MaxMind's public test databases (tests/geoip/maxmind,
// fake data "for example purposes only", CC BY-SA 3.0, (c) MaxMind, Inc.).
#include <doctest/doctest.h>

#include "common/load_error.hpp"
#include "geoip/geoip.hpp"

using namespace steerdns::geoip;

namespace {

std::string db_path(const char* name) {
  return std::string(STEERDNS_SOURCE_DIR "/tests/geoip/maxmind/") + name;
}
Address6 addr(const char* text) { return parse_network(text)->address; }

enum : RegionIndex { london, stockholm, seattle };

Policy europe_and_us() {
  Policy p;
  p.region_names = {"london", "stockholm", "seattle"};
  p.regions = {{51.51, -0.13}, {59.33, 18.07}, {47.61, -122.33}};
  p.default_list = {seattle, stockholm, london};
  return p;
}

}  // namespace

TEST_CASE("GeoIP2 and GeoLite2 City test databases: places, distances, scopes") {
  for (const char* name : {"GeoIP2-City-Test.mmdb", "GeoLite2-City-Test.mmdb"}) {
    CAPTURE(name);
    const Database db = Database::open(db_path(name));
    const Place& gb = db.places()[db.find(false, addr("81.2.69.160")).place];
    CHECK(gb.country == "GB");
    CHECK(gb.continent == "EU");
    REQUIRE(gb.located);
    CHECK(gb.location.latitude == doctest::Approx(51.5142));
    const Classifier c = compile(db, europe_and_us());
    auto first = [&](const char* a) { return c.lists()[c.classify(false, addr(a)).list].front(); };
    CHECK(first("81.2.69.160") == london);
    CHECK(first("89.160.20.112") == stockholm);  // Linköping
    CHECK(first("216.160.83.56") == seattle);    // Milton, WA
    CHECK(first("10.0.0.1") == seattle);         // not in the database: default list
    for (const char* a : {"81.2.69.160", "89.160.20.112", "216.160.83.56"}) {
      const auto s = c.classify(false, addr(a)).scope;
      CHECK(s > 0);
      CHECK(s <= 32);
    }
  }
}

TEST_CASE("a Country database places by its countries' points; overrides still come first") {
  for (const char* name : {"GeoIP2-Country-Test.mmdb", "GeoLite2-Country-Test.mmdb"}) {
    CAPTURE(name);
    const Database db = Database::open(db_path(name));
    const Place& gb = db.places()[db.find(false, addr("81.2.69.160")).place];
    CHECK(gb.country == "GB");
    // No coordinates in the record: the country's point, said so.
    REQUIRE(gb.located);
    CHECK(gb.origin == Origin::country);
    Policy p = europe_and_us();
    const Classifier plain = compile(db, p);
    auto first = [&](const Classifier& c, const char* a) {
      return c.lists()[c.classify(false, addr(a)).list];
    };
    CHECK(first(plain, "81.2.69.160").front() == london);
    CHECK(first(plain, "89.160.20.112").front() == stockholm);
    CHECK(first(plain, "216.160.83.56").front() == seattle);  // US: New York, nearer Seattle than Europe
    CHECK(plain.classify(false, addr("81.2.69.160")).scope > 0);
    p.country["GB"] = {london};
    p.continent["EU"] = {stockholm, london};
    const Classifier c = compile(db, p);
    CHECK(first(c, "81.2.69.160") == PreferenceList{london});
    CHECK(first(c, "89.160.20.112") == PreferenceList{stockholm, london});
  }
}

TEST_CASE("a database with broken pointers is refused with its path") {
  try {
    Database::open(db_path("MaxMind-DB-test-broken-pointers-24.mmdb"));
    FAIL("no error");
  } catch (const steerdns::common::LoadError& e) {
    CHECK(std::string(e.what()).find("broken-pointers-24.mmdb") != std::string::npos);
    CHECK(std::string(e.what()).find("corrupt") != std::string::npos);
  }
}
