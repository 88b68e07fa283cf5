// The failover agreement: what answer() serves and what /status, /explain,
// steerdns_region_up, steerdns_vip_served and steerdns_all_down report come
// from one rule (server/failover.hpp), so that over any health table they
// agree. Driven over many tables (every
// VIP up, down, or overridden; regions overridden), both families and ANY,
// thresholds, and every all-down policy, for clients with different
// preference lists.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <random>
#include <regex>
#include <set>

#include "fixture.hpp"
#include "health/prober.hpp"
#include "server/admin.hpp"
#include "server/explain.hpp"
#include "server/failover.hpp"
#include "server/metrics.hpp"

using namespace steerdns;
using json = nlohmann::json;

namespace {

// paris has both families and needs 2 VIPs up; virginia is IPv4 only;
// singapore IPv6 only. One geo name per all-down policy.
const std::string kZone = R"(zone: example.com
soa: {mname: ns1, rname: h, minimum: 300}
ns: [ns1]
records:
  ns1: {A: 127.0.0.1}
regions:
  paris: {location: [48.86, 2.35], vips: [127.1.0.1, 127.1.0.2, "::1"], threshold: 2}
  virginia: {location: [38.95, -77.45], vips: [127.2.0.1, 127.2.0.2]}
  singapore: {location: [1.29, 103.85], vips: ["::2", "::3"]}
geo:
  near:
    regions: [paris, virginia, singapore]
    check: {type: tcp, port: 8082}
  fb:
    regions: [paris, virginia, singapore]
    all_down: {fallback: singapore}
    check: {type: tcp, port: 8082}
  nd:
    regions: [paris, virginia, singapore]
    all_down: nodata
    check: {type: tcp, port: 8082}
  sf:
    regions: [paris, virginia, singapore]
    all_down: servfail
    check: {type: tcp, port: 8082}
)";

// Clients in Paris, Ashburn, Singapore, and one the database cannot place.
const char* const kClients[] = {"193.51.24.0", "8.8.8.0", "1.1.1.0", "10.0.0.0"};

struct Fixture {
  std::shared_ptr<server::World> world;
  health::Plan plan;
  health::Slots slots;
  std::size_t vip_slots = 0, region_slots = 0;

  Fixture() {
    world = test::world_from({kZone});
    server::compile_geo(*world, STEERDNS_TEST_MMDB);
    plan = server::plan_health(*world);
    health::Registry registry;
    slots = registry.apply(plan).slots;
    server::assign_health(*world, slots);
    for (auto s : slots.vips) vip_slots = std::max<std::size_t>(vip_slots, s + 1);
    for (auto s : slots.regions) region_slots = std::max<std::size_t>(region_slots, s + 1);
  }

  // The prober's status for TABLE: every VIP checked, its state and
  // override as the table has them.
  health::Status status_for(const health::Table& table) const {
    health::Status st;
    st.vips.resize(vip_slots);
    for (std::size_t i = 0; i < plan.vips.size(); ++i) {
      health::VipStatus& v = st.vips[slots.vips[i]];
      const std::uint8_t f = table.vip(slots.vips[i]);
      v.in_use = v.known = true;
      v.vip = plan.vips[i].vip;
      v.up = (f & health::Table::kUp) != 0;
      v.overridden = (f & health::Table::kOverriddenDown) ? health::Override::down
                     : (f & health::Table::kOverriddenUp) ? health::Override::up
                                                          : health::Override::none;
    }
    return st;
  }
};

// One VIP's flags as the registry makes them: up, down, overridden down,
// overridden up.
constexpr std::uint8_t kVipStates[] = {health::Table::kUp, 0, health::Table::kOverriddenDown,
                                       health::Table::kUp | health::Table::kOverriddenUp};
constexpr std::uint8_t kRegionStates[] = {0, health::Table::kOverriddenDown,
                                          health::Table::kUp | health::Table::kOverriddenUp};

bool is_v6(const std::string& address) { return address.find(':') != std::string::npos; }

// What /status says the answer must be, walking the list as an operator
// would read it: the first region whose "served" holds for the family it
// would answer with; else the all-down policy.
struct Expected {
  std::string region;  // "" for none
  std::set<std::string> addresses;
  bool servfail = false;
};

Expected expect_from_status(const json& geo, const std::vector<geoip::RegionIndex>& list,
                            ldns_rr_type qtype) {
  Expected e;
  const json& regions = geo["regions"];
  auto family_of = [&](const json& r) {
    if (qtype == LDNS_RR_TYPE_A) return std::string("A");
    if (qtype == LDNS_RR_TYPE_AAAA) return std::string("AAAA");
    for (const auto& v : r["vips"])
      if (!is_v6(v["address"])) return std::string("A");
    return std::string("AAAA");
  };
  auto vips_of = [&](const json& r, const std::string& family, bool only_served) {
    std::set<std::string> out;
    for (const auto& v : r["vips"]) {
      if (is_v6(v["address"]) != (family == "AAAA")) continue;
      if (only_served ? v["served"].get<bool>() : v["override"] != "down") out.insert(v["address"]);
    }
    return out;
  };
  for (auto index : list) {
    const json& r = regions[index];
    const std::string family = family_of(r);
    if (!r["served"][family].get<bool>()) continue;
    // A VIP's "served" is the whole verdict: a region forced up with none
    // of the family up answers with every VIP not forced down, and says so.
    e.region = r["name"];
    e.addresses = vips_of(r, family, true);
    return e;
  }
  const std::string policy = geo["all_down"];
  auto answer_with = [&](const json& r) {
    e.region = r["name"];
    e.addresses = vips_of(r, family_of(r), false);
  };
  if (policy == "serve-nearest") {
    for (auto index : list) {
      const json& r = regions[index];
      if (r["override"] == "down") continue;
      bool any = false;
      for (const auto& v : r["vips"]) any |= v["override"] != "down";
      if (!any) continue;
      answer_with(r);
      return e;
    }
  } else if (policy.rfind("fallback: ", 0) == 0) {
    for (const auto& r : regions)
      if (r["name"] == policy.substr(10) && r["override"] != "down") answer_with(r);
  } else if (policy == "servfail") {
    e.servfail = true;
  }
  return e;
}

}  // namespace

TEST_CASE("failover: answer(), /status, /explain and the metrics agree over any health table") {
  Fixture fx;
  server::Metrics metrics(1);
  std::mt19937 random(20261202);
  const auto& names = fx.world->zones.geo_names();
  REQUIRE(names.size() == 4);
  const ldns_rr_type qtypes[] = {LDNS_RR_TYPE_A, LDNS_RR_TYPE_AAAA, LDNS_RR_TYPE_ANY};
  std::map<std::string, int> outcomes;  // how often each kind of answer was seen: the cases are covered

  for (int round = 0; round < 600; ++round) {
    health::Table table;
    table.vips.resize(fx.vip_slots);
    table.regions.resize(fx.region_slots);
    // Mostly healthy tables with some failures, and some very broken ones.
    const unsigned bad = round % 3 == 0 ? 60 : 25;
    for (auto& v : table.vips) v = random() % 100 < bad ? kVipStates[1 + random() % 3] : kVipStates[0];
    for (auto& r : table.regions) r = random() % 100 < 10 ? kRegionStates[1 + random() % 2] : 0;

    const health::Status status = fx.status_for(table);
    const json doc = json::parse(server::status_json(*fx.world, 0, table, status, metrics));
    const std::string text = server::render_metrics(metrics, *fx.world, 0, table, status,
                                                    health::ProbeStats{});

    for (const zones::GeoName* g : names) {
      const json& geo = doc["geo_names"][g->id];
      const std::string owner = geo["name"];
      // steerdns_region_up and /status's state are the same verdict.
      for (const auto& r : geo["regions"]) {
        const std::string sample = "steerdns_region_up{name=\"" + owner + "\",region=\"" +
                                   r["name"].get<std::string>() + "\"} " + (r["state"] == "up" ? "1" : "0");
        CHECK_MESSAGE(text.find(sample) != std::string::npos, sample);
        // "up" is: served for a family the region has VIPs of.
        bool up = false;
        for (const auto& v : r["vips"]) up |= r["served"][is_v6(v["address"]) ? "AAAA" : "A"].get<bool>();
        CHECK((r["state"] == "up") == up);
      }
      // steerdns_vip_served and /status's per-VIP "served" are the same verdict.
      for (const auto& r : geo["regions"])
        for (const auto& v : r["vips"]) {
          const std::string sample = "steerdns_vip_served{name=\"" + owner + "\",region=\"" +
                                     r["name"].get<std::string>() + "\",vip=\"" +
                                     v["address"].get<std::string>() + "\"} " +
                                     (v["served"].get<bool>() ? "1" : "0");
          CHECK_MESSAGE(text.find(sample) != std::string::npos, sample);
        }
      // steerdns_all_down: some client's list, for some question, is answered
      // by the all-down policy (every list names every region: all agree).
      bool all_down = false;
      const geoip::Classifier& classifier = fx.world->classifiers[g->id];
      for (const char* client : kClients) {
        geoip::Address6 address = ntohl(inet_addr(client));
        const auto& list = classifier.lists()[classifier.classify(false, address).list];
        for (ldns_rr_type qtype : qtypes) {
          const test::Reply reply = test::ask(*fx.world, table, test::ecs_query(owner, qtype, client, 24));
          const Expected e = expect_from_status(geo, list, qtype);
          const std::string answered = reply.info.region == server::AnswerInfo::kNoRegion
                                           ? ""
                                           : g->regions[reply.info.region].name;
          INFO(owner, " ", client, " qtype ", qtype, " round ", round, "\n", geo.dump(1));
          CHECK(answered == e.region);
          all_down |= reply.info.all_down;
          if (e.servfail) {
            CHECK(reply.rcode() == LDNS_RCODE_SERVFAIL);
            ++outcomes["servfail"];
            continue;
          }
          CHECK(reply.rcode() == LDNS_RCODE_NOERROR);
          const auto got = test::addresses(reply);
          CHECK(std::set<std::string>(got.begin(), got.end()) == e.addresses);
          CHECK(got.size() == e.addresses.size());
          ++outcomes[e.region.empty() ? "none" : reply.info.all_down ? "all-down " + e.region : e.region];
        }
      }
      const std::string sample = "steerdns_all_down{name=\"" + owner + "\"} " + (all_down ? "1" : "0");
      CHECK_MESSAGE(text.find(sample) != std::string::npos, sample);
      ++outcomes[all_down ? "gauge all-down" : "gauge served"];
    }

    // /explain's health lines say up or down as /status does, region by region.
    if (round % 50 == 0) {
      const server::ExplainHealth eh{table, status};
      const std::string text = server::explain(*fx.world, "near.example.com", "8.8.8.0/24", &eh);
      for (const auto& r : doc["geo_names"][0]["regions"]) {
        if (r["override"] != nullptr) continue;  // "forced up/down by an operator"
        const std::regex line("(^|\\n)(health: +| +)" + r["name"].get<std::string>() + ": " +
                              r["state"].get<std::string>() + ", ");
        CHECK_MESSAGE(std::regex_search(text, line), text);
      }
    }
  }
  // Every kind of outcome occurred: the tables really covered the rule.
  for (const char* kind : {"paris", "virginia", "singapore", "none", "servfail", "all-down paris",
                           "all-down virginia", "all-down singapore", "gauge all-down", "gauge served"})
    CHECK_MESSAGE(outcomes[kind] > 0, kind);
}

TEST_CASE("failover: a geo name answers only addresses; other types are NODATA with scope 0") {
  // Fixed: a TXT query at a geo name whose region has IPv6 VIPs was
  // answered with its AAAA records.
  Fixture fx;
  for (ldns_rr_type qtype : {LDNS_RR_TYPE_TXT, LDNS_RR_TYPE_MX, LDNS_RR_TYPE_CNAME}) {
    const test::Reply r = test::ask(*fx.world, test::ecs_query("near.example.com.", qtype, "1.1.1.0", 24));
    CHECK(r.rcode() == LDNS_RCODE_NOERROR);
    CHECK(r.count(LDNS_SECTION_ANSWER) == 0);
    CHECK(r.count(LDNS_SECTION_AUTHORITY) == 1);
    CHECK(test::scope_of(r) == 0);
  }
  const test::Reply aaaa = test::ask(*fx.world,
                                     test::ecs_query("near.example.com.", LDNS_RR_TYPE_AAAA, "1.1.1.0", 24));
  CHECK(test::addresses(aaaa) == std::vector<std::string>{"::2", "::3"});
}

TEST_CASE("failover: without a prober every VIP is served and the first region answers") {
  Fixture fx;
  auto world = test::world_from({kZone});
  server::compile_geo(*world, STEERDNS_TEST_MMDB);  // slots kNoSlot: no prober
  const health::Table none;
  for (const zones::GeoName* g : world->zones.geo_names())
    for (std::size_t r = 0; r < g->regions.size(); ++r) {
      const server::RegionState st = server::region_state(*world, none, *g, r);
      CHECK(st.up());
      CHECK(st.total_served() == st.total_vips());
    }
  const test::Reply r = test::ask(*world,
                                  test::ecs_query("near.example.com.", LDNS_RR_TYPE_A, "8.8.8.0", 24));
  CHECK(test::addresses(r) == std::vector<std::string>{"127.2.0.1", "127.2.0.2"});
  CHECK_FALSE(r.info.degraded);
}
