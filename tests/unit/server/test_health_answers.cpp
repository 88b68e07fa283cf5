// answer() walking the preference list by a health table (health::Registry
// standing in for the prober), and the metrics counting those answers.
// The health/ side (tracker, registry, checks) is health/test_health.cpp.
#include <doctest/doctest.h>

#include "../results.hpp"
#include "fixture.hpp"
#include "health/registry.hpp"
#include "server/metrics.hpp"

#include <map>

using namespace steerdns;
using health::Reason;
using health::Result;
using health::Table;
using health::TimePoint;
using test::at;
using test::kOk;
using test::kRefused;

namespace {}  // namespace

// --- answer() walking the preference list by health -------------------------

namespace {

const std::string kHealthZone = R"(zone: example.com
soa: {mname: ns1, rname: h, minimum: 300}
ns: [ns1]
records:
  ns1: {A: 127.0.0.1}
regions:
  paris: {location: [48.86, 2.35], vips: [127.1.0.1, 127.1.0.2]}
  virginia: {location: [38.95, -77.45], vips: [127.2.0.1, 127.2.0.2], threshold: 2}
  singapore: {location: [1.29, 103.85], vips: [127.3.0.1]}
geo:
  artifacts:
    regions: [paris, virginia, singapore]
    ttl: 30
    check: {type: http, port: 8082}
  nd:
    regions: [paris, virginia, singapore]
    all_down: nodata
    degraded_ttl: 5
    check: {type: http, port: 8082}
  sf:
    regions: [paris, virginia, singapore]
    all_down: servfail
    check: {type: http, port: 8082}
  fb:
    regions: [paris, virginia, singapore]
    all_down: {fallback: singapore}
    check: {type: http, port: 8082}
)";

// A world with its health slots, and a registry standing in for the prober.
struct HealthWorld {
  std::shared_ptr<server::World> world;
  health::Registry registry;
  std::map<std::string, std::uint32_t> slot;  // VIP → slot (every geo name shares the check)
  std::map<std::string, std::uint32_t> region_slot;

  HealthWorld() {
    world = test::world_from({kHealthZone});
    server::compile_geo(*world, STEERDNS_TEST_MMDB);
    const health::Plan plan = server::plan_health(*world);
    const health::Slots slots = registry.apply(plan).slots;
    server::assign_health(*world, slots);
    for (std::size_t i = 0; i < plan.vips.size(); ++i) slot[plan.vips[i].vip] = slots.vips[i];
    for (std::size_t i = 0; i < plan.regions.size(); ++i) region_slot[plan.regions[i]] = slots.regions[i];
    for (const auto& [vip, s] : slot) registry.record(s, kOk, at(0));
  }
  void down(std::initializer_list<const char*> vips) {
    for (const char* v : vips) registry.record(slot.at(v), kRefused, at(0) + std::chrono::hours(1));
  }
  void all_down() {
    for (const auto& [vip, s] : slot) {
      health::Tracker& t = registry.entry(s).tracker;
      t = health::Tracker(1, 1);
      t.record(kRefused, at(1));
    }
  }
  void set_override(const char* region_or_vip, health::Override f, bool region) {
    health::Overrides o = registry.overrides();
    (region ? o.regions : o.vips)[region_or_vip] = f;
    registry.set_overrides(o);
  }
  test::Reply ask(const std::string& name, const char* client = "193.51.24.0") {
    const Table t = registry.table();
    return test::ask(*world, t, test::ecs_query(name + ".example.com.", LDNS_RR_TYPE_A, client, 24));
  }
};

std::uint32_t ttl_of(const test::Reply& r) { return ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(r.pkt), 0)); }

using V = std::vector<std::string>;

}  // namespace

TEST_CASE("answers by health: VIPs leave, regions fail over, with the degraded TTL") {
  HealthWorld hw;
  auto r = hw.ask("artifacts");
  CHECK(test::addresses(r) == V{"127.1.0.1", "127.1.0.2"});
  CHECK(ttl_of(r) == 30);
  CHECK_FALSE(r.info.degraded);

  hw.down({"127.1.0.1"});
  hw.registry.record(hw.slot.at("127.1.0.1"), kRefused, at(2));
  hw.registry.record(hw.slot.at("127.1.0.1"), kRefused, at(3));  // fall 3
  auto partial = hw.ask("artifacts");
  CHECK(test::addresses(partial) == V{"127.1.0.2"});
  CHECK(ttl_of(partial) == 15);  // ttl/2 by default
  CHECK(partial.info.degraded);
  CHECK(test::scope_of(partial) == test::scope_of(r));  // still the client's network

  hw.all_down();
  hw.registry.record(hw.slot.at("127.2.0.1"), kOk, at(5));
  hw.registry.record(hw.slot.at("127.2.0.2"), kOk, at(5));
  auto failover = hw.ask("artifacts");
  CHECK(test::addresses(failover) == V{"127.2.0.1", "127.2.0.2"});  // paris down: the next region
  CHECK(ttl_of(failover) == 15);
  CHECK_FALSE(failover.info.all_down);

  // virginia's threshold is 2: one VIP down takes the whole region down.
  hw.registry.record(hw.slot.at("127.2.0.2"), kRefused, at(6));
  hw.registry.record(hw.slot.at("127.3.0.1"), kOk, at(6));
  CHECK(test::addresses(hw.ask("artifacts")) == V{"127.3.0.1"});
}

TEST_CASE("answers by health: the all-down policies") {
  HealthWorld hw;
  hw.all_down();
  auto nearest = hw.ask("artifacts");
  CHECK(test::addresses(nearest) == V{"127.1.0.1", "127.1.0.2"});  // serve-nearest, as if up
  CHECK(ttl_of(nearest) == 15);
  CHECK(nearest.info.all_down);

  auto nodata = hw.ask("nd");
  CHECK(nodata.rcode() == LDNS_RCODE_NOERROR);
  CHECK(nodata.count(LDNS_SECTION_ANSWER) == 0);
  REQUIRE(nodata.count(LDNS_SECTION_AUTHORITY) == 1);
  CHECK(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_authority(nodata.pkt), 0)) == 5);  // not 300

  auto servfail = hw.ask("sf");
  CHECK(servfail.rcode() == LDNS_RCODE_SERVFAIL);
  CHECK(servfail.count(LDNS_SECTION_ANSWER) == 0);

  auto fallback = hw.ask("fb");
  CHECK(test::addresses(fallback) == V{"127.3.0.1"});

  // What the metrics count: the geo name and the region that answered.
  const auto& names = hw.world->zones.geo_names();
  auto region_name = [&](const test::Reply& r) {
    REQUIRE(r.info.geo < names.size());
    return r.info.region == server::AnswerInfo::kNoRegion ? std::string("none")
                                                          : names[r.info.geo]->regions[r.info.region].name;
  };
  CHECK(region_name(nearest) == "paris");
  CHECK(region_name(nodata) == "none");
  CHECK(region_name(servfail) == "none");
  CHECK(region_name(fallback) == "singapore");
  CHECK(nodata.info.all_down);
}

TEST_CASE("answers by health: operators' forced states beat probes, even under all-down") {
  HealthWorld hw;
  hw.set_override("paris", health::Override::down, true);
  CHECK(test::addresses(hw.ask("artifacts")) == V{"127.2.0.1", "127.2.0.2"});  // drained at once
  hw.set_override("127.2.0.1", health::Override::down, false);  // virginia below its threshold now
  CHECK(test::addresses(hw.ask("artifacts")) == V{"127.3.0.1"});

  // Everything down: serve-nearest skips the forced-down region and VIP.
  hw.all_down();
  CHECK(test::addresses(hw.ask("artifacts")) == V{"127.2.0.2"});
  hw.set_override("virginia", health::Override::down, true);
  CHECK(test::addresses(hw.ask("artifacts")) == V{"127.3.0.1"});
  hw.set_override("singapore", health::Override::down, true);
  auto none = hw.ask("artifacts");
  CHECK(none.count(LDNS_SECTION_ANSWER) == 0);  // nothing may be served: NODATA
  CHECK(none.rcode() == LDNS_RCODE_NOERROR);
  CHECK(hw.ask("fb").count(LDNS_SECTION_ANSWER) == 0);  // the fallback region is forced down too

  // Forced up: served although its probes fail, minus VIPs forced down.
  hw.set_override("paris", health::Override::up, true);
  hw.set_override("127.1.0.2", health::Override::down, false);
  auto up = hw.ask("artifacts");
  CHECK(test::addresses(up) == V{"127.1.0.1"});
  CHECK_FALSE(up.info.all_down);
}

TEST_CASE("metrics: answers counted by geo name and region, kept across a reload, rendered for Prometheus") {
  server::Metrics metrics(2);
  HealthWorld first;
  metrics.assign(*first.world);
  auto count = [&](HealthWorld& hw, unsigned worker, const char* name, const char* client) {
    const test::Reply r = hw.ask(name, client);
    metrics.count(worker, *hw.world, server::Transport::udp, r.info);
  };
  count(first, 0, "artifacts", "193.51.24.0");
  count(first, 1, "artifacts", "193.51.24.0");
  first.all_down();
  count(first, 0, "sf", "193.51.24.0");

  // A reload: a new world for the same names keeps their counters.
  HealthWorld second;
  metrics.assign(*second.world);
  count(second, 1, "artifacts", "193.51.24.0");
  const health::Table table = second.registry.table();
  health::Status status;
  health::ProbeStats probes;
  const std::string text = server::render_metrics(metrics, *second.world, 0, table, status, probes);
  CHECK(text.find("steerdns_geo_answers_total{name=\"artifacts.example.com.\",region=\"paris\"} 3\n") !=
        std::string::npos);
  CHECK(text.find("steerdns_geo_answers_total{name=\"sf.example.com.\",region=\"none\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("steerdns_all_down_total{name=\"sf.example.com.\",policy=\"servfail\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("steerdns_queries_total{transport=\"udp\",qtype=\"A\",rcode=\"NOERROR\"} 3\n") !=
        std::string::npos);
  CHECK(text.find("steerdns_queries_total{transport=\"udp\",qtype=\"A\",rcode=\"SERVFAIL\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("steerdns_region_up{name=\"artifacts.example.com.\",region=\"paris\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("# TYPE steerdns_probe_duration_seconds histogram\n") != std::string::npos);
  CHECK(text.find("steerdns_probe_duration_seconds_bucket{type=\"https\",le=\"+Inf\"} 0\n") !=
        std::string::npos);

  // Label values are escaped: a quote or backslash cannot break the format.
  status.overrides.regions["a\"b\\c"] = health::Override::down;
  const std::string escaped = server::render_metrics(metrics, *second.world, 0, table, status, probes);
  CHECK(escaped.find("steerdns_override{kind=\"region\",target=\"a\\\"b\\\\c\",state=\"down\"} 1\n") !=
        std::string::npos);
}

TEST_CASE(
    "metrics: every qtype lands in its own label, CAA above 255, unknown types in other, no question in "
    "none") {
  server::Metrics metrics(1);
  HealthWorld hw;
  metrics.assign(*hw.world);
  auto count_qtype = [&](std::uint16_t qtype, unsigned times) {
    server::AnswerInfo info;
    info.qtype = qtype;
    info.size = 12;
    for (unsigned i = 0; i < times; ++i) metrics.count(0, *hw.world, server::Transport::tcp, info);
  };
  for (std::size_t i = 0; i < server::kCountedQtypes.size(); ++i)
    count_qtype(server::kCountedQtypes[i], i + 1);
  count_qtype(999, 2);  // no label of its own
  count_qtype(65535, 3);
  count_qtype(0, 4);  // FORMERR before a question was read
  const std::string text = server::render_metrics(metrics, *hw.world, 0, hw.registry.table(), {}, {});
  auto counted = [&](const std::string& qtype) {
    const std::string key = "steerdns_queries_total{transport=\"tcp\",qtype=\"" + qtype +
                            "\",rcode=\"NOERROR\"} ";
    const auto at = text.find(key);
    return at == std::string::npos ? -1L : std::atol(text.c_str() + at + key.size());
  };
  CHECK(counted("A") == 1);
  CHECK(counted("AAAA") == 8);
  CHECK(counted("CAA") == 15);
  CHECK(counted("ANY") == 16);
  CHECK(counted("AXFR") == 17);
  CHECK(counted("IXFR") == 18);
  CHECK(counted("other") == 5);
  CHECK(counted("none") == 4);
}
