#include "geoip/countries.hpp"

#include <algorithm>
#include <iterator>

namespace steerdns::geoip {

namespace {

struct Country {
  std::string_view code, continent;
};

// Generated from geoip/data/countries.tsv (sorted by code).
constexpr Country kCountries[] = {
#include "country_table.inc"
};

}  // namespace

std::string_view country_continent(std::string_view code) noexcept {
  const auto* end = std::end(kCountries);
  const auto* it = std::lower_bound(std::begin(kCountries), end, code,
                                    [](const Country& c, std::string_view key) { return c.code < key; });
  return it != end && it->code == code ? it->continent : std::string_view();
}

}  // namespace steerdns::geoip
