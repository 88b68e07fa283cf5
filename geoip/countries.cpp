#include "geoip/countries.hpp"

#include <algorithm>
#include <iterator>

namespace steerdns::geoip {

namespace {

struct Country {
  std::string_view code, continent;
  double latitude, longitude;
};

struct Continent {
  std::string_view code;
  double latitude, longitude;
  std::string_view name;
};

// Generated from geoip/data/countries.tsv and continents.tsv (sorted by code).
constexpr Country kCountries[] = {
#include "country_table.inc"
};
constexpr Continent kContinents[] = {
#include "continent_table.inc"
};

template <class Row, std::size_t N>
const Row* find(const Row (&table)[N], std::string_view code) noexcept {
  const Row* end = std::end(table);
  const Row* it = std::lower_bound(std::begin(table), end, code,
                                   [](const Row& row, std::string_view key) { return row.code < key; });
  return it != end && it->code == code ? it : nullptr;
}

bool same_letters(std::string_view a, std::string_view b) noexcept {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [&](char x, char y) { return lower(x) == lower(y); });
}

}  // namespace

std::string_view country_continent(std::string_view code) noexcept {
  const Country* c = find(kCountries, code);
  return c != nullptr ? c->continent : std::string_view();
}

std::optional<Coordinates> country_location(std::string_view code) noexcept {
  const Country* c = find(kCountries, code);
  if (c == nullptr) return std::nullopt;
  return Coordinates{c->latitude, c->longitude};
}

std::optional<Coordinates> continent_location(std::string_view code) noexcept {
  const Continent* c = find(kContinents, code);
  if (c == nullptr) return std::nullopt;
  return Coordinates{c->latitude, c->longitude};
}

std::string_view continent_code(std::string_view text) noexcept {
  for (const Continent& c : kContinents)
    if (same_letters(text, c.code) || same_letters(text, c.name)) return c.code;
  return {};
}

}  // namespace steerdns::geoip
