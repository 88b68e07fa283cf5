// The ISO 3166 alpha-2 country codes (geoip/data/countries.tsv, compiled
// in at build time), with each country's continent: what a policy's
// `country` overrides may name.
#pragma once

#include <string_view>

namespace steerdns::geoip {

// The continent code (AF AN AS EU NA OC SA) of the ISO 3166 alpha-2 country
// CODE (upper case), or empty when CODE is not one.
std::string_view country_continent(std::string_view code) noexcept;

}  // namespace steerdns::geoip
