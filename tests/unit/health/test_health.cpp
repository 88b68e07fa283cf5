// health/: the rise/fall state machine (clock injected), the registry across
// reloads, overrides, check parsing and the response matchers. answer()
// walking the preference list by a health table is server/test_health_answers.cpp.
#include <doctest/doctest.h>

#include "../results.hpp"
#include "../temp_dir.hpp"
#include "common/load_error.hpp"
#include "health/check.hpp"
#include "health/registry.hpp"

#include <filesystem>

using namespace steerdns;
using health::Reason;
using health::Result;
using health::Table;
using health::TimePoint;
using test::at;
using test::kOk;
using test::kRefused;

namespace {

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
  plan.vips = {{"127.1.0.1", http, "a paris"},
               {"127.1.0.2", http, "a paris"},
               {"127.1.0.1", http, "b paris"},
               {"127.9.0.9", std::nullopt, "a lab"}};
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
  CHECK(changed.slots.regions == first.slots.regions);          // region slots never move
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
  const std::string text = layer_list(
      {"{type: http, port: 8082, path: /health, fall: 2}", "{port: 9000}", "{fall: 4}"});
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
  CHECK(check_error({"{type: tcp, port: 1, path: /x}"}) ==
        "1: check: 'path' is only for http and https checks");
  CHECK(check_error({"{type: http, insecure: true}"}) == "1: check: 'insecure' is only for https checks");
  CHECK(check_error({"type: http\ninterval: 1s\ntimeout: 2s"}) ==
        "3: check: timeout must be at least 100ms and at most the interval");
  CHECK(check_error({"{type: http, interval: 500ms}"}) == "1: check: interval must be between 1s and 1h");
  CHECK(check_error({"{type: http, expect: [99]}"}).find("not a status code") != std::string::npos);
  CHECK(check_error({"{type: http, expect: \"300-200\"}"}).find("is empty") != std::string::npos);
  CHECK(check_error({"{type: https, insecure: true, ca: x.pem}"}) ==
        "1: check: 'ca' and 'insecure' exclude each other");
  CHECK(check_error({"{type: https, ca: /nonexistent/ca.pem}"}).find("cannot read the CA bundle") !=
        std::string::npos);
  CHECK(check_error({"{type: http, headers: {\"Bad Name\": x}}"}).find("not a valid header") !=
        std::string::npos);
  CHECK(check_error({"{type: http}", "{type: gopher}"}) ==
        "3: check: type 'gopher' is not http, https or tcp");
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
  CHECK(health::judge_http(body, 200, "starting", true).reason == Reason::body_mismatch);
  CHECK(health::judge_http(body, 200, "ready", false).reason == Reason::body_mismatch);  // cut off at 16 KiB

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
