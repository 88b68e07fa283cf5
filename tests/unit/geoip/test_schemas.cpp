// Databases in other layouts than the City one (tests/geoip/
// make-schema-test-mmdbs.pl, written at build time): a Country-schema one
// is placed by its countries' and continents' points, a flat one (IPinfo and
// DB-IP lite style) is read, and one that can place no client is refused.
#include <doctest/doctest.h>

#include <string>

#include "common/load_error.hpp"
#include "geoip/geoip.hpp"

using namespace steerdns::geoip;

namespace {

std::string db_path(const char* name) { return std::string(STEERDNS_TEST_MMDB_DIR "/") + name; }
Address6 addr(const char* text) { return parse_network(text)->address; }

enum : RegionIndex { paris, virginia, singapore };

Policy three_regions() {
  Policy p;
  p.region_names = {"paris", "virginia", "singapore"};
  p.regions = {{48.86, 2.35}, {38.95, -77.45}, {1.29, 103.85}};
  p.default_list = {singapore, paris, virginia};  // unlike any distance order
  return p;
}

const Place& place_at(const Database& db, bool v6, const char* address) {
  return db.places()[db.find(v6, addr(address)).place];
}

}  // namespace

TEST_CASE("a Country database places clients at their country's point, else their continent's") {
  const Database db = Database::open(db_path("test-country.mmdb"));
  const Place& fr = place_at(db, false, "193.51.24.1");
  CHECK(fr.country == "FR");
  CHECK(fr.continent == "EU");
  REQUIRE(fr.located);
  CHECK(fr.origin == Origin::country);
  CHECK(fr.location.latitude == doctest::Approx(country_location("FR")->latitude));
  CHECK(fr.location.longitude == doctest::Approx(country_location("FR")->longitude));
  CHECK(location_note(fr) == "country FR's point");
  CHECK(place_at(db, false, "192.0.2.1").country == "BR");  // registered_country
  CHECK(place_at(db, false, "192.0.2.1").origin == Origin::country);
  // XK (Kosovo in MaxMind's data) is no ISO 3166 code: its continent places it.
  const Place& xk = place_at(db, false, "198.51.100.1");
  CHECK(xk.country == "XK");
  CHECK(xk.origin == Origin::continent);
  CHECK(location_note(xk) == "continent EU's point");
  CHECK(place_at(db, false, "192.0.2.200").origin == Origin::continent);  // OC alone
  CHECK_FALSE(db.places()[0].located);                                    // not in the database

  const Policy policy = three_regions();
  const Classifier c = compile(db, policy);
  auto first = [&](bool v6, const char* a) { return c.lists()[c.classify(v6, addr(a)).list].front(); };
  CHECK(first(false, "193.51.24.1") == paris);
  CHECK(first(false, "193.51.200.1") == paris);  // DE: Berlin
  // France and Germany give the same list: one merged /16, a real ECS scope.
  CHECK(c.classify(false, addr("193.51.24.1")).scope == 16);
  CHECK(first(false, "8.8.8.8") == virginia);       // US: New York
  CHECK(first(false, "192.0.2.1") == virginia);     // BR: São Paulo
  CHECK(first(false, "203.0.113.9") == singapore);  // JP: Tokyo
  CHECK(first(false, "198.51.100.1") == paris);     // continent EU: Frankfurt
  CHECK(first(false, "192.0.2.200") == singapore);  // continent OC: Sydney
  CHECK(first(true, "2001:db8:5::1") == singapore);
  CHECK(c.lists()[c.classify(false, addr("10.1.2.3")).list] == policy.default_list);

  // The decision says where the location came from.
  const Decision d = decide(policy, fr, *parse_network("193.51.24.0/24"));
  CHECK(d.rule == Rule::distance);
  CHECK(d.detail == "(from country FR's point: the database gives no location)");
  CHECK(decide(policy, xk, *parse_network("198.51.100.0/24")).detail ==
        "(from continent EU's point: the database gives no location)");
  // Overrides still come first.
  Policy pinned = three_regions();
  pinned.country["FR"] = {virginia};
  CHECK(decide(pinned, fr, *parse_network("193.51.24.0/24")).rule == Rule::country);
}

TEST_CASE("a flat database (country_code, latitude, longitude, continent at the top) is read") {
  const Database db = Database::open(db_path("test-flat.mmdb"));
  const Place& fr = place_at(db, false, "193.51.24.1");
  CHECK(fr.country == "FR");
  CHECK(fr.continent == "EU");
  CHECK(fr.origin == Origin::country);
  const Place& de = place_at(db, false, "193.51.200.1");
  CHECK(de.country == "DE");    // "de": upper-cased
  CHECK(de.continent == "EU");  // "Europe": a name
  const Place& us = place_at(db, false, "8.8.8.8");
  CHECK(us.origin == Origin::record);
  CHECK(us.location.latitude == doctest::Approx(39.0438));
  CHECK(us.location.longitude == doctest::Approx(-77.4874));
  CHECK(us.continent == "NA");  // a code under `continent`
  CHECK(place_at(db, false, "1.1.1.1").continent == "OC");
  CHECK(place_at(db, false, "1.1.1.1").origin == Origin::continent);
  CHECK(place_at(db, false, "203.0.113.9").origin == Origin::record);
  CHECK(place_at(db, true, "2001:db8:5::1").country == "SG");

  const Classifier c = compile(db, three_regions());
  auto first = [&](bool v6, const char* a) { return c.lists()[c.classify(v6, addr(a)).list].front(); };
  CHECK(first(false, "193.51.24.1") == paris);
  CHECK(c.classify(false, addr("193.51.24.1")).scope == 16);
  CHECK(first(false, "8.8.8.8") == virginia);
  CHECK(first(false, "1.1.1.1") == singapore);
  CHECK(first(false, "203.0.113.9") == singapore);
  CHECK(first(true, "2001:db8:5::1") == singapore);
  // A continent override reads the flat continent too.
  Policy p = three_regions();
  p.continent["EU"] = {virginia};
  CHECK(compile(db, p).lists()[compile(db, p).classify(false, addr("193.51.200.1")).list].front() ==
        virginia);
}

TEST_CASE("a database that can place no client is refused with its path and why") {
  const std::string path = db_path("test-unplaceable.mmdb");
  try {
    Database::open(path);
    FAIL("no error");
  } catch (const steerdns::common::LoadError& e) {
    const std::string what = e.what();
    CHECK(e.file() == path);
    CHECK(what.find(path + ": ") == 0);
    CHECK(what.find("no network in this database carries a location, a country or a continent") !=
          std::string::npos);
    CHECK(what.find("steerdns cannot place any client with it") != std::string::npos);
    CHECK(what.find("corrupt") == std::string::npos);  // it is not
  }
}

TEST_CASE("the database's build time") {
  CHECK(Database::open(db_path("test-country.mmdb")).build_epoch() == 1700000000);
  CHECK(Database::open(db_path("test-flat.mmdb")).build_epoch() == 1700000100);
  const Database world = Database::open(STEERDNS_WORLD_MMDB);
  CHECK(world.build_epoch() > 1600000000);  // the data's generation date
  CHECK(world.description().find("built " + std::to_string(world.build_epoch())) != std::string::npos);
}
