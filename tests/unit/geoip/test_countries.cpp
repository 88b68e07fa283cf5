// geoip/countries.hpp: the compiled-in ISO 3166 table.
#include <doctest/doctest.h>

#include "geoip/countries.hpp"

using steerdns::geoip::country_continent;

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
