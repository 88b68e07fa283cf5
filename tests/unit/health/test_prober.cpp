// health::Prober for real: the prober thread probing a loopback HTTP
// backend (cpp-httplib on 127.0.0.1) while other threads pin the table,
// read status and stats, set overrides, and the main thread applies a new
// plan (a reload). Written for ThreadSanitizer (`make tsan`), and a plain
// test of the prober everywhere else. Bounded: every wait has a deadline.
#include <doctest/doctest.h>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>
#include <vector>

#include "../temp_dir.hpp"
#include "health/prober.hpp"

using namespace steerdns;
using health::Table;

namespace {

// Polls COND until it holds or LIMIT passes; no fixed sleep decides anything.
bool eventually(const std::function<bool()>& cond,
                std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// An HTTP backend on 127.0.0.1: /health answers STATUS, /other always 200.
struct Backend {
  httplib::Server server;
  std::atomic<int> status{200};
  std::atomic<int> hits{0};
  int port = 0;
  std::thread thread;

  Backend() {
    server.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      hits.fetch_add(1);
      res.status = status.load();
      res.set_content("ok", "text/plain");
    });
    server.Get("/other", [this](const httplib::Request&, httplib::Response& res) {
      hits.fetch_add(1);
      res.status = 200;
      res.set_content("ok", "text/plain");
    });
    port = server.bind_to_any_port("127.0.0.1");
    REQUIRE(port > 0);
    thread = std::thread([this] { server.listen_after_bind(); });
    CHECK(eventually([this] { return server.is_running(); }));
  }
  ~Backend() {
    server.stop();
    thread.join();
  }
};

health::Check quick_check(int port, const std::string& path) {
  health::Check c;
  c.type = health::CheckType::http;
  c.port = static_cast<std::uint16_t>(port);
  c.path = path;
  c.interval = health::Duration(50);
  c.timeout = health::Duration(1000);
  c.jitter = health::Duration(0);
  c.rise = 1;
  c.fall = 1;
  return c;
}

// Every override logs a warning; a few hundred of them say nothing here.
struct QuietLog {
  spdlog::level::level_enum before = spdlog::get_level();
  QuietLog() { spdlog::set_level(spdlog::level::err); }
  ~QuietLog() { spdlog::set_level(before); }
};

std::uint8_t flags(const health::Prober& prober, std::uint32_t slot) {
  return prober.table().load()->vip(slot);
}

std::uint64_t probes_done(const health::Prober& prober) {
  return prober.stats().duration[static_cast<std::size_t>(health::CheckType::http)].count.load(
      std::memory_order_relaxed);
}

}  // namespace

TEST_CASE(
    "tsan: prober probes a loopback backend while other threads read status, stats and the table, "
    "set overrides, and a reload applies a new plan") {
  QuietLog quiet;
  Backend backend;
  test::TempDir dir;
  health::Prober prober((dir.path() / "state.yaml").string());

  // 127.0.0.1 answers; nothing listens on 127.0.0.2 at that port: refused.
  health::Plan first;
  first.vips = {{"127.0.0.1", quick_check(backend.port, "/health"), "svc paris"},
                {"127.0.0.2", quick_check(backend.port, "/health"), "svc paris"}};
  first.regions = {"paris"};
  const health::Slots slots = prober.apply(first);
  REQUIRE(slots.vips.size() == 2);
  const std::uint32_t served = slots.vips[0], refused = slots.vips[1];
  CHECK(flags(prober, served) == Table::kUp);  // the first round is done
  CHECK(flags(prober, refused) == 0);

  std::atomic<bool> stop{false};
  std::atomic<int> table_reads{0}, status_reads{0}, overrides_set{0}, failures_seen{0};
  std::vector<std::thread> threads;
  // A worker: pins the table per "batch", as server/runtime.cpp does.
  threads.emplace_back([&] {
    common::Pin<Table> pin(prober.table());
    while (!stop.load()) {
      const Table& t = pin.refresh();
      if (t.vips.size() >= 2) table_reads.fetch_add(1);
      std::this_thread::yield();
    }
  });
  // The admin API and the metrics: status() and the counters.
  threads.emplace_back([&] {
    while (!stop.load()) {
      const health::Status s = prober.status();
      if (s.vips.size() >= 2) status_reads.fetch_add(1);
      std::uint64_t failures = 0;
      for (const auto& f : prober.stats().failures) failures += f.load(std::memory_order_relaxed);
      for (const auto& h : prober.stats().duration)
        for (const auto& c : h.counts) (void)c.load(std::memory_order_relaxed);
      if (failures > 0) failures_seen.store(1);
      std::this_thread::yield();
    }
  });
  // An operator forcing the refused VIP up and back, through the state file
  // (which the prober also watches).
  threads.emplace_back([&] {
    while (!stop.load()) {
      const auto force = overrides_set.load() % 2 == 0 ? health::Override::up : health::Override::none;
      if (prober.set_override(health::Prober::Kind::vip, "127.0.0.2", force).empty())
        overrides_set.fetch_add(1);
    }
  });

  // The prober follows the backend both ways while all of that runs.
  backend.status = 503;
  CHECK(eventually([&] { return flags(prober, served) == 0; }));
  backend.status = 200;
  CHECK(eventually([&] { return flags(prober, served) == Table::kUp; }));

  // A reload: the changed check is a new probe, 127.0.0.2 goes away.
  health::Plan second;
  second.vips = {{"127.0.0.1", quick_check(backend.port, "/other"), "svc paris"}};
  second.regions = {"paris"};
  const health::Slots next = prober.apply(second);
  REQUIRE(next.vips.size() == 1);
  CHECK(flags(prober, next.vips[0]) == Table::kUp);
  const std::uint64_t after_reload = probes_done(prober);
  CHECK(eventually([&] { return probes_done(prober) >= after_reload + 3; }));

  CHECK(eventually(
      [&] { return table_reads.load() > 0 && status_reads.load() > 0 && overrides_set.load() >= 4; }));
  stop = true;
  for (auto& t : threads) t.join();
  CHECK(failures_seen.load() == 1);  // the refused VIP and the 503s were counted
  CHECK(backend.hits.load() > 0);
  // ~Prober now stops the prober while probes are in flight.
}
