// geoip/countries.hpp: the compiled-in ISO 3166 table.
#include <doctest/doctest.h>

#include <cmath>

#include "geoip/countries.hpp"

using namespace steerdns::geoip;

TEST_CASE("countries: every ISO 3166 alpha-2 code with its continent, nothing else") {
  CHECK(country_continent("FR") == "EU");
  CHECK(country_continent("GB") == "EU");
  CHECK(country_continent("US") == "NA");
  CHECK(country_continent("SG") == "AS");
  CHECK(country_continent("AD") == "EU");  // the first
  CHECK(country_continent("ZW") == "AF");  // the last
  CHECK(country_continent("UK").empty());
  CHECK(country_continent("XX").empty());
  CHECK(country_continent("fr").empty());  // callers upper-case first
  CHECK(country_continent("").empty());
}

TEST_CASE("countries and continents: their representative points") {
  const auto fr = country_location("FR");
  REQUIRE(fr);
  CHECK(fr->latitude == doctest::Approx(48.8667));  // Paris, from countries.tsv
  CHECK(fr->longitude == doctest::Approx(2.3333));
  CHECK(country_location("ZW"));
  CHECK_FALSE(country_location("XK"));
  CHECK_FALSE(country_location("fr"));
  for (const char* code : {"AF", "AN", "AS", "EU", "NA", "OC", "SA"}) {
    CAPTURE(code);
    const auto p = continent_location(code);
    REQUIRE(p);
    CHECK(std::abs(p->latitude) <= 90);
    CHECK(std::abs(p->longitude) <= 180);
  }
  CHECK(continent_location("EU")->latitude == doctest::Approx(50.1109));  // Frankfurt
  CHECK_FALSE(continent_location("AP"));
  CHECK_FALSE(continent_location(""));
  // Codes in either case, and English names.
  CHECK(continent_code("EU") == "EU");
  CHECK(continent_code("eu") == "EU");
  CHECK(continent_code("Europe") == "EU");
  CHECK(continent_code("north america") == "NA");
  CHECK(continent_code("South America") == "SA");
  CHECK(continent_code("Eurasia").empty());
  CHECK(continent_code("").empty());
}
