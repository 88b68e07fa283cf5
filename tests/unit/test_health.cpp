// health/: the rise/fall state machine (clock injected), the registry across
// reloads, overrides, check parsing and the response matchers; and answer()
// walking the preference list by a health table.
#include <doctest/doctest.h>

#include "common/load_error.hpp"
#include "fixture.hpp"
#include "health/check.hpp"
#include "health/registry.hpp"
#include "server/metrics.hpp"

#include <filesystem>

using namespace steerdns;
using health::Reason;
using health::Result;
using health::Table;
using health::TimePoint;

namespace {

const Result kOk{true, Reason::none, {}};
const Result kRefused{false, Reason::refused, "connection refused"};

TimePoint at(int seconds) { return TimePoint{} + std::chrono::seconds(seconds); }

// Check layers as a YAML list, one flow map per odd line (1, 3, 5...).
std::string layer_list(const std::vector<std::string>& layers) {
  std::string text;
  for (const auto& l : layers) text += "- " + l + "\n\n";
  return text;
}

std::vector<common::Yaml> items(const common::Yaml& list) {
  std::vector<common::Yaml> out;
  for (const auto& item : list) out.push_back(item);
  return out;
}

health::Check check_from(const std::string& yaml, test::TempDir& dir) {
  const common::YamlDoc doc{dir.write("c.yaml", yaml), common::Yaml::parse(yaml)};
  const common::Yaml layers[] = {doc.root};
  auto c = health::read_check(doc, layers);
  REQUIRE(c.has_value());
  return *c;
}

std::string check_error(const std::vector<std::string>& layers_yaml) {
  test::TempDir dir;
  // One layer is the document itself (block maps allowed); several are a list.
  const bool one = layers_yaml.size() == 1;
  const std::string text = one ? layers_yaml[0] : layer_list(layers_yaml);
  const common::YamlDoc doc{dir.write("c.yaml", text), common::Yaml::parse(text)};
  const std::vector<common::Yaml> layers = one ? std::vector{doc.root} : items(doc.root);
  try {
    health::read_check(doc, layers);
  } catch (const common::LoadError& e) {
    return std::to_string(e.line()) + ": " + e.reason();
  }
  return "no error";
}

}  // namespace

TEST_CASE("tracker: the first result decides, then fall failures in a row take it down") {
  health::Tracker t(2, 3);
  CHECK_FALSE(t.known());
  CHECK(t.record(kOk, at(0)));  // first round: known and up at once
  CHECK(t.up());
  CHECK(t.since() == at(0));
  CHECK_FALSE(t.record(kRefused, at(1)));
  CHECK_FALSE(t.record(kRefused, at(2)));
  CHECK_FALSE(t.record(kOk, at(3)));  // a success ends the streak
  CHECK_FALSE(t.record(kRefused, at(4)));
  CHECK_FALSE(t.record(kRefused, at(5)));
  CHECK(t.up());
  CHECK(t.record(kRefused, at(6)));
  CHECK_FALSE(t.up());
  CHECK(t.since() == at(6));
  CHECK(t.reason() == Reason::refused);
  // rise: two successes in a row; a failure in between starts over
  CHECK_FALSE(t.record(kOk, at(7)));
  CHECK_FALSE(t.record(Result{false, Reason::timeout, "slow"}, at(8)));
  CHECK(t.reason() == Reason::timeout);
  CHECK_FALSE(t.record(kOk, at(9)));
  CHECK(t.record(kOk, at(10)));
  CHECK(t.up());
  CHECK(t.since() == at(10));
  CHECK(t.reason() == Reason::timeout);  // the last failure's reason stays for display
}

TEST_CASE("tracker: a VIP down at the first round starts down; rise 1 and fall 1 flip at once") {
  health::Tracker t(1, 1);
  CHECK(t.record(kRefused, at(0)));
  CHECK_FALSE(t.up());
  CHECK(t.record(kOk, at(1)));
  CHECK(t.up());
  CHECK(t.record(kRefused, at(2)));
  CHECK_FALSE(t.up());
}

TEST_CASE("registry: identical checks share a slot; a reload keeps unchanged ones and their state") {
  test::TempDir dir;
  const health::Check http = check_from("{type: http, port: 8082, rise: 2, fall: 2}", dir);
  health::Check other = http;
  other.port = 9090;
  health::Registry reg;
  health::Plan plan;
  plan.vips = {{"127.1.0.1", http, "a paris"}, {"127.1.0.2", http, "a paris"},
               {"127.1.0.1", http, "b paris"}, {"127.9.0.9", std::nullopt, "a lab"}};
  plan.regions = {"paris", "lab"};
  auto first = reg.apply(plan);
  REQUIRE(first.slots.vips.size() == 4);
  CHECK(first.slots.vips[0] == first.slots.vips[2]);  // one probe, two geo names
  CHECK(first.started.size() == 3);
  CHECK(reg.entries()[first.slots.vips[0]].labels == std::vector<std::string>{"a paris", "b paris"});
  const auto vip1 = first.slots.vips[0], vip2 = first.slots.vips[1], lab = first.slots.vips[3];

  // Unprobed slots read as up; then the first round decides.
  CHECK(reg.table().vip(vip1) == Table::kUp);
  reg.record(vip1, kRefused, at(0));
  reg.record(vip2, kOk, at(0));
  CHECK(reg.table().vip(vip1) == 0);
  CHECK(reg.table().vip(vip2) == Table::kUp);
  CHECK(reg.table().vip(lab) == Table::kUp);  // no check: always up

  // The same plan again: nothing starts or stops, the state stays.
  auto again = reg.apply(plan);
  CHECK(again.started.empty());
  CHECK(again.stopped.empty());
  CHECK(again.slots.vips == first.slots.vips);
  CHECK(reg.table().vip(vip1) == 0);

  // A changed check is a new probe; the old one stops and its slot is reused later.
  plan.vips = {{"127.1.0.1", other, "a paris"}, {"127.1.0.2", http, "a paris"}};
  auto changed = reg.apply(plan);
  CHECK(changed.started.size() == 1);
  CHECK(changed.stopped.size() == 2);  // 127.1.0.1/http and the unchecked lab VIP
  CHECK(changed.slots.vips[1] == vip2);
  CHECK(reg.table().vip(changed.slots.vips[0]) == Table::kUp);  // not yet probed
  CHECK(changed.slots.regions == first.slots.regions);  // region slots never move
}

TEST_CASE("registry: operator overrides force VIPs and regions, whatever the probes say") {
  test::TempDir dir;
  const health::Check http = check_from("{type: http}", dir);
  health::Registry reg;
  auto applied = reg.apply({{{"127.1.0.1", http, "x"}, {"127.1.0.2", http, "x"}}, {"paris", "virginia"}});
  const auto a = applied.slots.vips[0], b = applied.slots.vips[1];
  reg.record(a, kOk, at(0));
  reg.record(b, kRefused, at(0));
  health::Overrides o;
  o.vips["127.1.0.1"] = health::Override::down;
  o.vips["127.1.0.2"] = health::Override::up;
  o.regions["virginia"] = health::Override::down;
  o.regions["atlantis"] = health::Override::up;
  reg.set_overrides(o);
  const Table t = reg.table();
  CHECK(t.vip(a) == Table::kOverriddenDown);
  CHECK(t.vip(b) == (Table::kUp | Table::kOverriddenUp));
  CHECK(t.region(applied.slots.regions[0]) == 0);
  CHECK(t.region(applied.slots.regions[1]) == Table::kOverriddenDown);
  CHECK(reg.unknown_overrides() == std::vector<std::string>{"region atlantis"});
  // Slots past the table's end (a world newer than its table) read as up.
  CHECK(t.vip(999) == Table::kUp);
  CHECK(t.region(999) == 0);
}

TEST_CASE("state file: regions and VIPs up or down; errors name the line") {
  test::TempDir dir;
  const auto path = dir.write("state.yaml", "regions:\n  paris: down\nvips:\n  \"::0001\": up\n");
  const health::Overrides o = health::load_overrides(path);
  CHECK(o.regions.at("paris") == health::Override::down);
  CHECK(o.vips.at("::1") == health::Override::up);  // canonical address text
  CHECK(health::load_overrides((dir.path() / "missing.yaml").string()).vips.empty());
  const auto bad = dir.write("bad.yaml", "regions:\n  paris: drained\n");
  CHECK_THROWS_WITH_AS(health::load_overrides(bad), doctest::Contains("bad.yaml:2"), common::LoadError);
  const auto bad_vip = dir.write("bad_vip.yaml", "vips:\n  paris: down\n");
  CHECK_THROWS_WITH_AS(health::load_overrides(bad_vip), doctest::Contains("not an IPv4 or IPv6"),
                       common::LoadError);
}

TEST_CASE("state file: what the admin API writes reads back the same, and replaces the file whole") {
  test::TempDir dir;
  health::Overrides o;
  o.regions["paris"] = health::Override::down;
  o.regions["us-east"] = health::Override::up;
  o.vips["2001:db8::1"] = health::Override::down;
  const std::string path = (dir.path() / "state.yaml").string();
  health::save_overrides(path, o);
  CHECK(health::load_overrides(path) == o);
  health::save_overrides(path, health::Overrides{});
  CHECK(health::load_overrides(path) == health::Overrides{});
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  CHECK_THROWS_WITH_AS(health::save_overrides((dir.path() / "no/such/folder/s.yaml").string(), o),
                       doctest::Contains("no/such/folder/s.yaml"), std::runtime_error);
}

TEST_CASE("checks: defaults, layers merged key by key, and errors with their line") {
  test::TempDir dir;
  const health::Check d = check_from("{type: https}", dir);
  CHECK(d.port == 443);
  CHECK(d.path == "/");
  CHECK(d.interval == health::Duration(10'000));
  CHECK(d.timeout == health::Duration(5'000));
  CHECK(d.jitter == health::Duration(1'000));
  CHECK(d.rise == 2);
  CHECK(d.fall == 3);
  CHECK(d.expect == std::vector<std::pair<int, int>>{{200, 200}});
  const health::Check fast = check_from("{type: http, interval: 2s, expect: [200, \"300-399\"]}", dir);
  CHECK(fast.timeout == health::Duration(1'000));  // half the interval
  CHECK(fast.expect == std::vector<std::pair<int, int>>{{200, 200}, {300, 399}});

  // Geo name, region, VIP: the most specific layer wins per key.
  const std::string text =
      layer_list({"{type: http, port: 8082, path: /health, fall: 2}", "{port: 9000}", "{fall: 4}"});
  const common::YamlDoc doc{dir.write("layers.yaml", text), common::Yaml::parse(text)};
  const std::vector<common::Yaml> layers = items(doc.root);
  const auto merged = health::read_check(doc, layers);
  REQUIRE(merged);
  CHECK(merged->port == 9000);
  CHECK(merged->path == "/health");
  CHECK(merged->fall == 4);
  const common::Yaml none[] = {common::Yaml(), common::Yaml()};
  CHECK_FALSE(health::read_check(doc, none).has_value());

  CHECK(check_error({"{type: http, colour: red}"}) == "1: unknown key 'colour' in check");
  CHECK(check_error({"{port: 80}"}) == "1: check: missing key 'type' (http, https or tcp)");
  CHECK(check_error({"{type: tcp}"}) == "1: check: a tcp check needs a 'port'");
  CHECK(check_error({"{type: tcp, port: 1, path: /x}"}) == "1: check: 'path' is only for http and https checks");
  CHECK(check_error({"{type: http, insecure: true}"}) == "1: check: 'insecure' is only for https checks");
  CHECK(check_error({"type: http\ninterval: 1s\ntimeout: 2s"}) ==
        "3: check: timeout must be at least 100ms and at most the interval");
  CHECK(check_error({"{type: http, interval: 500ms}"}) == "1: check: interval must be between 1s and 1h");
  CHECK(check_error({"{type: http, expect: [99]}"}).find("not a status code") != std::string::npos);
  CHECK(check_error({"{type: http, expect: \"300-200\"}"}).find("is empty") != std::string::npos);
  CHECK(check_error({"{type: https, insecure: true, ca: x.pem}"}) == "1: check: 'ca' and 'insecure' exclude each other");
  CHECK(check_error({"{type: https, ca: /nonexistent/ca.pem}"}).find("cannot read the CA bundle") != std::string::npos);
  CHECK(check_error({"{type: http, headers: {\"Bad Name\": x}}"}).find("not a valid header") != std::string::npos);
  CHECK(check_error({"{type: http}", "{type: gopher}"}) == "3: check: type 'gopher' is not http, https or tcp");
}

TEST_CASE("checks: the key tells identical checks apart from changed ones; describe names the URL") {
  test::TempDir dir;
  const auto a = check_from("{type: https, service: artifacts.example.com, path: /h}", dir);
  const auto b = check_from("{type: https, service: artifacts.example.com, path: /h}", dir);
  const auto c = check_from("{type: https, service: artifacts.example.com, path: /h, rise: 3}", dir);
  CHECK(a.key() == b.key());
  CHECK(a.key() != c.key());
  CHECK(a.describe("127.1.0.1") == "https://artifacts.example.com:443/h");
  CHECK(check_from("{type: http, port: 8082}", dir).describe("::1") == "http://[::1]:8082/");
  CHECK(check_from("{type: tcp, port: 22}", dir).describe("127.0.0.1") == "tcp:127.0.0.1:22");
}

TEST_CASE("matchers: status lists and ranges, body substring, the JFrog health document") {
  test::TempDir dir;
  const auto plain = check_from("{type: http, expect: [200, \"204-206\"]}", dir);
  CHECK(health::judge_http(plain, 200, "", true).ok);
  CHECK(health::judge_http(plain, 205, "", true).ok);
  const Result r503 = health::judge_http(plain, 503, "", true);
  CHECK_FALSE(r503.ok);
  CHECK(r503.reason == Reason::status);
  CHECK(r503.detail == "status 503");
  // Without a body rule the body is not even read: a huge one does not matter.
  CHECK(health::judge_http(plain, 200, "", false).ok);

  const auto body = check_from("{type: http, body: ready}", dir);
  CHECK(health::judge_http(body, 200, "all ready here", true).ok);
  CHECK(health::judge_http(body, 200, "starting", true).reason == Reason::body);
  CHECK(health::judge_http(body, 200, "ready", false).reason == Reason::body);  // cut off at 16 KiB

  const auto jfrog = check_from("{type: http, jfrog: true}", dir);
  const std::string healthy =
      R"({"router":{"node_id":"n1","state":"HEALTHY","message":"OK"},)"
      R"("services":[{"service_id":"jfrt@01","node_id":"n1","state":"HEALTHY","message":"OK"},)"
      R"({"service_id":"jfac@01","node_id":"n1","state":"HEALTHY","message":"OK"}]})";
  CHECK(health::judge_http(jfrog, 200, healthy, true).ok);
  std::string sick = healthy;
  sick.replace(sick.rfind("HEALTHY"), 7, "UNHEALTHY");
  const Result service = health::judge_http(jfrog, 200, sick, true);
  CHECK(service.reason == Reason::jfrog);
  CHECK(service.detail == "JFrog: jfac@01 UNHEALTHY");
  CHECK(*health::jfrog_unhealthy(R"({"router":{"state":"UNHEALTHY"}})") == "router UNHEALTHY");
  CHECK(*health::jfrog_unhealthy(R"({"router":{}})") == "router missing");
  CHECK(*health::jfrog_unhealthy("<html>") == "body is not a JSON object");
  CHECK(*health::jfrog_unhealthy(R"({"services":[]})") == "no router in the document");
  CHECK(*health::jfrog_unhealthy(R"({"router":{"state":"HEALTHY"},"services":[7]})") == "a service missing");
  CHECK_FALSE(health::jfrog_unhealthy(R"({"router":{"state":"HEALTHY"}})").has_value());
  CHECK(health::judge_http(jfrog, 503, healthy, true).reason == Reason::status);
}

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

std::uint32_t ttl_of(const test::Reply& r) {
  return ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(r.pkt), 0));
}

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
  CHECK(text.find("steerdns_geo_answers_total{name=\"sf.example.com.\",region=\"none\"} 1\n") != std::string::npos);
  CHECK(text.find("steerdns_all_down_total{name=\"sf.example.com.\",policy=\"servfail\"} 1\n") != std::string::npos);
  CHECK(text.find("steerdns_queries_total{transport=\"udp\",qtype=\"A\",rcode=\"NOERROR\"} 3\n") != std::string::npos);
  CHECK(text.find("steerdns_queries_total{transport=\"udp\",qtype=\"A\",rcode=\"SERVFAIL\"} 1\n") != std::string::npos);
  CHECK(text.find("steerdns_region_up{name=\"artifacts.example.com.\",region=\"paris\"} 1\n") != std::string::npos);
  CHECK(text.find("# TYPE steerdns_probe_duration_seconds histogram\n") != std::string::npos);
  CHECK(text.find("steerdns_probe_duration_seconds_bucket{type=\"https\",le=\"+Inf\"} 0\n") != std::string::npos);

  // Label values are escaped: a quote or backslash cannot break the format.
  status.overrides.regions["a\"b\\c"] = health::Override::down;
  const std::string escaped = server::render_metrics(metrics, *second.world, 0, table, status, probes);
  CHECK(escaped.find("steerdns_override{kind=\"region\",target=\"a\\\"b\\\\c\",state=\"down\"} 1\n") !=
        std::string::npos);
}

TEST_CASE("metrics: every qtype lands in its own label, CAA above 255, unknown types in other, no question in none") {
  server::Metrics metrics(1);
  HealthWorld hw;
  metrics.assign(*hw.world);
  auto count_qtype = [&](std::uint16_t qtype, unsigned times) {
    server::AnswerInfo info;
    info.qtype = qtype;
    info.size = 12;
    for (unsigned i = 0; i < times; ++i) metrics.count(0, *hw.world, server::Transport::tcp, info);
  };
  for (std::size_t i = 0; i < server::kCountedQtypes.size(); ++i) count_qtype(server::kCountedQtypes[i], i + 1);
  count_qtype(999, 2);    // no label of its own
  count_qtype(65535, 3);
  count_qtype(0, 4);      // FORMERR before a question was read
  const std::string text = server::render_metrics(metrics, *hw.world, 0, hw.registry.table(), {}, {});
  auto counted = [&](const std::string& qtype) {
    const std::string key = "steerdns_queries_total{transport=\"tcp\",qtype=\"" + qtype + "\",rcode=\"NOERROR\"} ";
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
