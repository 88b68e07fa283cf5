#include <doctest/doctest.h>

#include "zones/name.hpp"

using namespace steerdns::zones;

TEST_CASE("names are lower-cased wire and round-trip to text") {
  auto n = name_from_text("WwW.Example.COM.");
  REQUIRE(n);
  CHECK(*n == std::string("\3www\7example\3com\0", 17));
  CHECK(name_to_text(*n) == "www.example.com.");
  CHECK(name_to_text(std::string(1, '\0')) == ".");
  CHECK_FALSE(name_from_text(std::string(64, 'a') + ".com."));
}

TEST_CASE("label arithmetic") {
  const auto www = *name_from_text("www.example.com.");
  const auto apex = *name_from_text("example.com.");
  CHECK(label_count(www) == 3);
  CHECK(parent_name(www) == apex);
  CHECK(is_at_or_below(www, apex));
  CHECK(is_at_or_below(apex, apex));
  CHECK_FALSE(is_at_or_below(apex, www));
  // Suffix of the bytes but not label-aligned: "xample.com" is not a parent.
  CHECK_FALSE(is_at_or_below(*name_from_text("e.xample.com."), apex));
  CHECK_FALSE(is_at_or_below(*name_from_text("notexample.com."), apex));
  CHECK(is_wildcard(*name_from_text("*.example.com.")));
  CHECK_FALSE(is_wildcard(www));
}
