// The metrics of issue #16: process_* figures, the answer duration
// histogram, the zero series of steerdns_queries_total, the VIP families
// (served, transitions, the check label), all-down now and the GeoIP
// database's build time. (Counting answers: test_health_answers.cpp; the
// verdicts against answer(): test_failover.cpp.)
#include <doctest/doctest.h>

#include <regex>

#include "fixture.hpp"
#include "health/prober.hpp"
#include "server/metrics.hpp"
#include "server/process.hpp"

using namespace steerdns;

namespace {

const std::string kZone = R"(zone: example.com
soa: {mname: ns1, rname: h, minimum: 300}
ns: [ns1]
records:
  ns1: {A: 127.0.0.1}
regions:
  paris: {location: [48.86, 2.35], vips: [127.1.0.1, 127.1.0.2]}
  singapore: {location: [1.29, 103.85], vips: [{address: 127.3.0.1, check: {type: tcp, port: 9}}]}
geo:
  artifacts:
    regions: [paris, singapore]
    check: {type: http, port: 8082}
)";

bool has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

// A world with health slots, a table of FLAGS per VIP (in plan order) and
// REGION flags per region, and the prober's status to match.
struct Scene {
  std::shared_ptr<server::World> world = test::world_from({kZone});
  health::Plan plan;
  health::Slots slots;
  health::Table table;
  health::Status status;

  Scene() {
    server::compile_geo(*world, STEERDNS_TEST_MMDB);
    plan = server::plan_health(*world);
    health::Registry registry;
    slots = registry.apply(plan).slots;
    server::assign_health(*world, slots);
    table.vips.assign(slots.vips.size(), health::Table::kUp);
    table.regions.assign(slots.regions.size(), 0);
    status.vips.resize(slots.vips.size());
    for (std::size_t i = 0; i < plan.vips.size(); ++i) {
      health::VipStatus& v = status.vips[slots.vips[i]];
      v.in_use = v.known = true;
      v.vip = plan.vips[i].vip;
      v.check = plan.vips[i].check;
    }
  }
  // VIP (plan order I) probed down, or forced.
  void vip(std::size_t i, std::uint8_t flags) {
    table.vips[slots.vips[i]] = flags;
    status.vips[slots.vips[i]].up = (flags & health::Table::kUp) != 0;
  }
  void region(std::size_t i, std::uint8_t flags) { table.regions[slots.regions[i]] = flags; }
  std::string render(const server::Metrics& m) const {
    return server::render_metrics(m, *world, 0, table, status, health::ProbeStats{});
  }
};

}  // namespace

TEST_CASE("metrics: process figures read from /proc/PID/stat, a command with spaces and parentheses") {
  // pid (comm) state ppid ... utime=14 stime=15 ... starttime=22 vsize=23 rss=24 ...
  const std::string stat =
      "4242 (steer dns) (x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 150 0 0 20 0 5 0 "
      "12345 104857600 2048 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n";
  const auto s = server::parse_proc_stat(stat, 100, 4096, 1'700'000'000);
  REQUIRE(s);
  CHECK(s->cpu_seconds == doctest::Approx(4.0));  // (250 + 150) / 100
  CHECK(s->virtual_bytes == 104857600);
  CHECK(s->resident_bytes == 2048.0 * 4096);
  CHECK(s->start_time == doctest::Approx(1'700'000'123.45));
  CHECK_FALSE(server::parse_proc_stat("4242 (x) S 1 2 3", 100, 4096, 0));
  CHECK_FALSE(server::parse_proc_stat("no parenthesis at all", 100, 4096, 0));
  CHECK(server::parse_boot_time("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n") == 1'700'000'000);
  CHECK_FALSE(server::parse_boot_time("cpu  1 2 3\n"));

  // This very process, as /metrics reads it.
  const Scene scene;
  const server::Metrics metrics(1);
  const std::string text = scene.render(metrics);
  for (const char* family :
       {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
        "process_open_fds", "process_max_fds", "process_start_time_seconds"}) {
    const std::regex sample(std::string("(^|\\n)") + family + " ([0-9.e+]+)\\n");
    std::smatch m;
    REQUIRE_MESSAGE(std::regex_search(text, m, sample), family);
    CHECK(std::stod(m[2]) >= 0);
  }
}

TEST_CASE("metrics: answer durations by bucket and transport, a UDP batch observed once per answer") {
  server::Metrics metrics(2);
  metrics.workers[0]->answer_duration[0].observe(10'000);      // exactly 10 µs: le="1e-05"
  metrics.workers[0]->answer_duration[0].observe(10'001, 3);   // a batch of 3: le="2.5e-05"
  metrics.workers[1]->answer_duration[0].observe(60'000'000);  // above 50 ms: +Inf only
  metrics.workers[1]->answer_duration[1].observe(400'000);     // tcp: le="0.0005"
  const Scene scene;
  const std::string text = scene.render(metrics);
  CHECK(has(text, "# TYPE steerdns_answer_duration_seconds histogram"));
  CHECK(has(text, "steerdns_answer_duration_seconds_bucket{transport=\"udp\",le=\"1e-05\"} 1"));
  CHECK(has(text, "steerdns_answer_duration_seconds_bucket{transport=\"udp\",le=\"2.5e-05\"} 4"));
  CHECK(has(text, "steerdns_answer_duration_seconds_bucket{transport=\"udp\",le=\"0.05\"} 4"));
  CHECK(has(text, "steerdns_answer_duration_seconds_bucket{transport=\"udp\",le=\"+Inf\"} 5"));
  CHECK(has(text, "steerdns_answer_duration_seconds_count{transport=\"udp\"} 5"));
  CHECK(has(text, "steerdns_answer_duration_seconds_sum{transport=\"udp\"} 0.060040003"));
  CHECK(has(text, "steerdns_answer_duration_seconds_bucket{transport=\"tcp\",le=\"0.00025\"} 0"));
  CHECK(has(text, "steerdns_answer_duration_seconds_bucket{transport=\"tcp\",le=\"0.0005\"} 1"));
  CHECK(has(text, "steerdns_answer_duration_seconds_count{transport=\"tcp\"} 1"));
}

TEST_CASE("metrics: steerdns_queries_total has A and AAAA NOERROR for each transport from the start") {
  const server::Metrics metrics(2);
  const Scene scene;
  const std::string text = scene.render(metrics);
  for (const char* transport : {"udp", "tcp"})
    for (const char* qtype : {"A", "AAAA"})
      CHECK(has(text, std::string("steerdns_queries_total{transport=\"") + transport + "\",qtype=\"" + qtype +
                          "\",rcode=\"NOERROR\"} 0"));
  // Other cells appear once counted.
  CHECK(text.find("rcode=\"NXDOMAIN\"") == std::string::npos);
  CHECK(text.find("qtype=\"TXT\"") == std::string::npos);
}

TEST_CASE("metrics: VIPs served, their transitions and check types, all-down now, reasons in snake_case") {
  Scene scene;
  const server::Metrics metrics(1);
  const std::string owner = "name=\"artifacts.example.com.\"";
  auto served = [&](const char* region, const char* vip) {
    return "steerdns_vip_served{" + owner + ",region=\"" + region + "\",vip=\"" + vip + "\"} ";
  };
  std::string text = scene.render(metrics);
  // The check label is the check's type, never its URL.
  CHECK(has(text, "steerdns_vip_up{" + owner + ",region=\"paris\",vip=\"127.1.0.1\",check=\"http\"} 1"));
  CHECK(has(text, "steerdns_vip_up{" + owner + ",region=\"singapore\",vip=\"127.3.0.1\",check=\"tcp\"} 1"));
  CHECK(text.find("http://") == std::string::npos);
  CHECK(has(text, served("paris", "127.1.0.1") + "1"));
  CHECK(has(text, "steerdns_all_down{" + owner + "} 0"));
  // Transitions: zero from the start for every VIP in use, by check type.
  CHECK(has(text, "steerdns_vip_transitions_total{vip=\"127.1.0.1\",check=\"http\",to=\"down\"} 0"));
  CHECK(has(text, "steerdns_vip_transitions_total{vip=\"127.3.0.1\",check=\"tcp\",to=\"up\"} 0"));
  scene.status.vips[scene.slots.vips[0]].transitions = {2, 3};
  text = scene.render(metrics);
  CHECK(has(text, "steerdns_vip_transitions_total{vip=\"127.1.0.1\",check=\"http\",to=\"up\"} 2"));
  CHECK(has(text, "steerdns_vip_transitions_total{vip=\"127.1.0.1\",check=\"http\",to=\"down\"} 3"));

  // A VIP down, one forced down: neither is served; paris still answers.
  scene.vip(0, 0);
  scene.vip(1, health::Table::kOverriddenDown);
  text = scene.render(metrics);
  CHECK(has(text, served("paris", "127.1.0.1") + "0"));
  CHECK(has(text, served("paris", "127.1.0.2") + "0"));
  CHECK(has(text, "steerdns_region_up{" + owner + ",region=\"paris\"} 0"));
  CHECK(has(text, "steerdns_all_down{" + owner + "} 0"));  // singapore serves

  // paris forced up with no VIP up: it answers with every VIP not forced down.
  scene.region(0, health::Table::kUp | health::Table::kOverriddenUp);
  text = scene.render(metrics);
  CHECK(has(text, served("paris", "127.1.0.1") + "1"));
  CHECK(has(text, served("paris", "127.1.0.2") + "0"));

  // singapore drained: its healthy VIP is not served; with paris automatic
  // again no region is served: all down now.
  scene.region(0, 0);
  scene.region(1, health::Table::kOverriddenDown);
  text = scene.render(metrics);
  CHECK(has(text, served("singapore", "127.3.0.1") + "0"));
  CHECK(has(text, "steerdns_vip_up{" + owner + ",region=\"singapore\",vip=\"127.3.0.1\",check=\"tcp\"} 1"));
  CHECK(has(text, "steerdns_all_down{" + owner + "} 1"));

  // Every reason label is one snake_case word.
  const std::regex reason("steerdns_probe_failures_total\\{reason=\"([^\"]*)\"\\}");
  int reasons = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), reason); it != std::sregex_iterator(); ++it) {
    CHECK_MESSAGE(std::regex_match((*it)[1].str(), std::regex("[a-z]+(_[a-z]+)*")), (*it)[1].str());
    ++reasons;
  }
  CHECK(reasons == static_cast<int>(health::kReasonCount) - 1);
}

TEST_CASE("metrics: the GeoIP database's build time, by source") {
  Scene scene;
  const server::Metrics metrics(1);
  const std::string epoch = std::to_string(scene.world->geo_database->build_epoch());
  CHECK(scene.world->geo_database->build_epoch() > 0);
  CHECK(has(scene.render(metrics), "steerdns_geoip_build_timestamp_seconds{source=\"file\"} " + epoch));
  scene.world->geo_database_builtin = true;
  CHECK(has(scene.render(metrics), "steerdns_geoip_build_timestamp_seconds{source=\"builtin\"} " + epoch));
  // No geo name, no database: the family without a sample.
  auto plain = test::world_from(
      {"zone: example.org\nsoa: {mname: ns1, rname: h}\nns: [ns1]\n"
       "records:\n  ns1: {A: 127.0.0.1}\n"});
  const std::string text = server::render_metrics(metrics, *plain, 0, {}, {}, {});
  CHECK(has(text, "# TYPE steerdns_geoip_build_timestamp_seconds gauge"));
  CHECK(text.find("steerdns_geoip_build_timestamp_seconds{") == std::string::npos);
}
