#include <doctest/doctest.h>

#include "common/load_error.hpp"
#include "geoip/geoip.hpp"

using namespace steerdns::geoip;

namespace {

const Database& db() {
  static const Database d = Database::open(STEERDNS_TEST_MMDB);
  return d;
}

Address6 v4(const char* text) { return parse_network(text)->address; }
Address6 v6(const char* text) { return parse_network(text)->address; }

enum : RegionIndex { paris, virginia, singapore };

Policy three_regions() {
  Policy p;
  p.region_names = {"paris", "virginia", "singapore"};
  p.regions = {{48.86, 2.35}, {38.95, -77.45}, {1.29, 103.85}};
  // Unlike any distance order, so that merges across it would show.
  p.default_list = {singapore, paris, virginia};
  return p;
}

}  // namespace

TEST_CASE("great-circle distances") {
  CHECK(distance_km({48.86, 2.35}, {48.86, 2.35}) == doctest::Approx(0));
  CHECK(distance_km({48.86, 2.35}, {38.95, -77.45}) == doctest::Approx(6230).epsilon(0.01));
  CHECK(distance_km({0, 0}, {0, 180}) == doctest::Approx(20015).epsilon(0.001));
}

TEST_CASE("networks parse strictly") {
  auto n = parse_network("193.51.24.0/24");
  REQUIRE(n);
  CHECK_FALSE(n->v6);
  CHECK(n->text() == "193.51.24.0/24");
  CHECK(parse_network("2001:db8::/32")->text() == "2001:db8::/32");
  CHECK(parse_network("192.0.2.7")->prefix == 32);
  CHECK_FALSE(parse_network("193.51.24.1/24"));  // host bits set
  CHECK_FALSE(parse_network("193.51.24.0/33"));
  CHECK_FALSE(parse_network("paris/8"));
  CHECK(parse_network("10.0.0.0/8")->contains(*parse_network("10.1.0.0/16")));
  CHECK_FALSE(parse_network("10.1.0.0/16")->contains(*parse_network("10.0.0.0/8")));
}

TEST_CASE("the database is walked into a gap-free tiling with interned places") {
  for (bool family : {false, true}) {
    const auto& blocks = db().blocks(family);
    REQUIRE_FALSE(blocks.empty());
    CHECK(blocks.front().start == 0);
    for (std::size_t i = 1; i < blocks.size(); ++i) {
      const auto& prev = blocks[i - 1];
      const Address6 size = Address6{1} << ((family ? 128 : 32) - prev.prefix);
      CHECK(blocks[i].start == prev.start + size);
    }
  }
  const Place& de = db().places()[db().find(false, v4("193.51.200.1")).place];
  CHECK(de.country == "DE");
  CHECK(de.continent == "EU");
  CHECK(de.located);
  CHECK(db().places()[db().find(false, v4("192.0.2.1")).place].country == "BR");  // registered_country
  CHECK(db().find(false, v4("10.1.2.3")).place == 0);
  CHECK(db().places()[db().find(true, v6("2001:4860::1")).place].country == "US");
}

TEST_CASE("preference lists by distance, merged networks give the ECS scope") {
  const Classifier c = compile(db(), three_regions());
  auto first = [&](bool family, Address6 a) { return c.lists()[c.classify(family, a).list].front(); };
  CHECK(first(false, v4("193.51.24.1")) == paris);
  CHECK(first(false, v4("8.8.8.8")) == virginia);
  CHECK(first(false, v4("1.1.1.1")) == singapore);  // Sydney is nearer Singapore than Virginia
  CHECK(first(false, v4("203.0.113.9")) == singapore);
  CHECK(first(true, v6("2001:4860:4860::8888")) == virginia);
  CHECK(first(true, v6("2001:db8:5::1")) == singapore);
  // Paris and Frankfurt /17s give the same list: one merged /16.
  CHECK(c.classify(false, v4("193.51.24.1")).scope == 16);
  CHECK(c.classify(false, v4("193.51.200.1")).scope == 16);
  CHECK(c.classify(false, v4("8.8.8.8")).scope == 24);
  // Unplaced space merges widely and uses the default list.
  const auto unknown = c.classify(false, v4("10.1.2.3"));
  CHECK(c.lists()[unknown.list] == PreferenceList{singapore, paris, virginia});
  CHECK(unknown.scope < 8);
  // No coordinates and no override: placed at its country's point (NL:
  // Amsterdam), not on the default list.
  const Place& nl = db().places()[db().find(false, v4("198.51.100.1")).place];
  CHECK(nl.origin == Origin::country);
  CHECK(c.lists()[c.classify(false, v4("198.51.100.1")).list].front() == paris);
  CHECK(c.classify(false, v4("198.51.100.1")).scope > 0);
  // A list equal to the default one merges with unplaced space: the widest
  // network with the same answer.
  Policy same = three_regions();
  same.default_list = {virginia, paris, singapore};  // Ashburn's distance order
  CHECK(compile(db(), same).classify(false, v4("8.8.8.8")).scope < 24);
}

TEST_CASE("overrides: CIDR before country before continent before distance") {
  Policy p = three_regions();
  p.cidr.push_back({*parse_network("193.51.24.0/24"), {singapore}});
  p.country["FR"] = {virginia, paris};
  p.continent["EU"] = {singapore, virginia};
  const Classifier c = compile(db(), p);
  auto list = [&](const char* a) { return c.lists()[c.classify(false, v4(a)).list]; };
  CHECK(list("193.51.24.77") == PreferenceList{singapore});
  CHECK(c.classify(false, v4("193.51.24.77")).scope == 24);
  CHECK(list("193.51.1.1") == PreferenceList{virginia, paris});  // FR
  CHECK(c.classify(false, v4("193.51.1.1")).scope == 20);        // the /17 split around the /24
  CHECK(c.classify(false, v4("193.51.25.1")).scope == 24);
  CHECK(list("193.51.200.1") == PreferenceList{singapore, virginia});  // DE → continent EU
  CHECK(list("198.51.100.1") == PreferenceList{singapore, virginia});  // NL, no coordinates
  CHECK(list("8.8.8.8").front() == virginia);                          // distance

  const Decision d = decide(p, db().places()[db().find(false, v4("193.51.24.77")).place],
                            *parse_network("193.51.24.77"));
  CHECK(d.rule == Rule::cidr);
  CHECK(d.detail == "193.51.24.0/24");
}

TEST_CASE("a CIDR override wider than the database's networks") {
  Policy p = three_regions();
  p.cidr.push_back({*parse_network("0.0.0.0/0"), {paris}});
  p.cidr.push_back({*parse_network("8.8.0.0/16"), {singapore}});
  const Classifier c = compile(db(), p);
  CHECK(c.lists()[c.classify(false, v4("8.8.8.8")).list] == PreferenceList{singapore});
  CHECK(c.classify(false, v4("8.8.8.8")).scope == 16);
  CHECK(c.lists()[c.classify(false, v4("1.1.1.1")).list] == PreferenceList{paris});
  CHECK(c.block_count(false) <= 32);
}

TEST_CASE("unreadable databases are load errors") {
  CHECK_THROWS_AS(Database::open("/nonexistent.mmdb"), steerdns::common::LoadError);
  CHECK_THROWS_AS(Database::open(STEERDNS_SOURCE_DIR "/README.md"), steerdns::common::LoadError);
}

TEST_CASE("classify() agrees with the database at both ends of every block (test and built-in databases)") {
  for (const char* path : {STEERDNS_TEST_MMDB, STEERDNS_WORLD_MMDB}) {
    const std::string where = path;
    CAPTURE(where);
    const Database d = Database::open(path);
    const Policy policy = three_regions();
    const Classifier c = compile(d, policy);
    std::size_t checked = 0, wrong = 0;
    for (bool family : {false, true}) {
      const int bits = family ? 128 : 32;
      for (const auto& b : d.blocks(family)) {
        const PreferenceList want =
            decide(policy, d.places()[b.place], Network{family, b.start, b.prefix}).list;
        const Address6 last = b.start + ((Address6{1} << (bits - b.prefix)) - 1);
        for (Address6 a : {b.start, last}) {
          const Classification got = c.classify(family, a);
          // Merging only widens: the answer's network holds the whole block.
          if (c.lists()[got.list] != want || got.scope > b.prefix) ++wrong;
          ++checked;
        }
      }
    }
    CHECK(checked > 100);
    CHECK(wrong == 0);
  }
}
