// The ISO 3166 alpha-2 country codes (geoip/data/countries.tsv) and the
// continents (geoip/data/continents.tsv), compiled in at build time: each
// country's continent and representative point, each continent's point.
// What a policy's `country` overrides may name, and where a client is placed
// when its database record gives a country or a continent but no coordinates.
// Immutable tables: every function is safe from any thread.
#pragma once

#include <optional>
#include <string_view>

namespace steerdns::geoip {

struct Coordinates {
  double latitude = 0;
  double longitude = 0;
};

// The continent code (AF AN AS EU NA OC SA) of the ISO 3166 alpha-2 country
// CODE (upper case), or empty when CODE is not one.
std::string_view country_continent(std::string_view code) noexcept;

// The representative point of country CODE (upper case): the principal city
// of its principal time zone. nullopt when CODE is not a country.
std::optional<Coordinates> country_location(std::string_view code) noexcept;

// The representative point of continent CODE (upper case, one of AF AN AS EU
// NA OC SA), nullopt for any other code.
std::optional<Coordinates> continent_location(std::string_view code) noexcept;

// The continent code for TEXT, a code in either case ("eu") or an English
// name in any case ("Europe", "north america"); empty when it is neither.
std::string_view continent_code(std::string_view text) noexcept;

}  // namespace steerdns::geoip
