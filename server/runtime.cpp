#include "server/runtime.hpp"

#include <malloc.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <uv.h>

#include <csignal>
#include <cstdlib>
#include <vector>

#include "server/admin.hpp"
#include "server/region_log.hpp"
#include "server/reload.hpp"
#include "server/socket.hpp"
#include "server/worker.hpp"

namespace steerdns::server {

struct Runtime::Impl {
  Impl(Config c, std::shared_ptr<const World> world, health::Prober& prober, Metrics& metrics)
      : config(std::move(c)),
        prober(prober),
        metrics(metrics),
        publication(std::move(world)),
        limiter(config.rate_limit.enabled() ? std::make_unique<RateLimiter>(config.rate_limit) : nullptr),
        dnstap(config.dnstap.socket.empty() ? nullptr
                                            : std::make_unique<Dnstap>(config.dnstap, config.workers)),
        shared{config, publication, prober.table(), metrics, limiter.get(), dnstap.get(), {}},
        reloader(config, publication, prober, metrics, [this] {
          retired_worlds = 1;
          observe_health();
        }) {
    if (config.admin.enabled)
      admin = std::make_unique<Admin>(
          AdminContext{config, publication, prober, metrics, [this] { return reloader.request(); }});
    metrics.dnstap = dnstap.get();
  }
  ~Impl() {
    prober.on_publish({});
    metrics.dnstap = nullptr;
  }

  // The region log, on the world and health table as they are now.
  void observe_health() {
    const auto world = publication.load();
    const auto table = prober.table().load();
    region_log.observe(*world, *table);
  }

  Config config;
  health::Prober& prober;
  Metrics& metrics;
  common::Publication<World> publication;
  std::unique_ptr<RateLimiter> limiter;
  std::unique_ptr<Dnstap> dnstap;  // logging.dnstap; outlives the workers
  Shared shared;
  Reloader reloader;
  std::vector<std::unique_ptr<Worker>> workers;
  std::unique_ptr<Admin> admin;
  RegionLog region_log;
  uv_loop_t main_loop;
  uv_signal_t sighup, sigterm, sigint;
  uv_timer_t collect_timer;  // frees retired worlds once no worker holds them
  std::size_t retired_worlds = 0;
  int exit_code = 0;

  void stop_main_loop() {
    reloader.stop();
    for (auto* h : {reinterpret_cast<uv_handle_t*>(&sighup), reinterpret_cast<uv_handle_t*>(&sigterm),
                    reinterpret_cast<uv_handle_t*>(&sigint), reinterpret_cast<uv_handle_t*>(&collect_timer)})
      uv_close(h, nullptr);
  }

  void start_main_loop() {
    uv_loop_init(&main_loop);
    main_loop.data = this;
    reloader.attach(&main_loop);
    uv_signal_init(&main_loop, &sighup);
    uv_signal_init(&main_loop, &sigterm);
    uv_signal_init(&main_loop, &sigint);
    sighup.data = sigterm.data = sigint.data = this;
    uv_signal_start(
        &sighup, [](uv_signal_t* s, int) { static_cast<Impl*>(s->data)->reloader.reload(); }, SIGHUP);
    // A worker lets go of the previous world at its next receive batch (or
    // its one-second refresh); the world is then freed here, on the main
    // thread, within a second.
    uv_timer_init(&main_loop, &collect_timer);
    collect_timer.data = this;
    uv_timer_start(
        &collect_timer,
        [](uv_timer_t* t) {
          auto& impl = *static_cast<Impl*>(t->data);
          const std::size_t pinned = impl.publication.collect();
          // The last retired world is gone: return its memory (and the
          // build's) to the system, as at start-up.
          if (impl.retired_worlds > 0 && pinned == 0) malloc_trim(0);
          impl.retired_worlds = pinned;
        },
        1000, 1000);
    auto stop = [](uv_signal_t* s, int signum) {
      auto* impl = static_cast<Impl*>(s->data);
      spdlog::info("{} received, stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
      sd_notify(0, "STOPPING=1");
      impl->stop_main_loop();
    };
    uv_signal_start(&sigterm, stop, SIGTERM);
    uv_signal_start(&sigint, stop, SIGINT);
  }
};

Runtime::Runtime(Config config, std::shared_ptr<const World> world, health::Prober& prober, Metrics& metrics)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(world), prober, metrics)) {}

Runtime::~Runtime() = default;

void Runtime::bind() {
  Impl& m = *impl_;
  for (const auto& at : m.config.listen) {
    if (at.udp) check_address_free(at, SOCK_DGRAM);
    if (at.tcp) check_address_free(at, SOCK_STREAM);
  }
  // The admin address too, before any worker exists: a taken one fails the start.
  if (m.admin) m.admin->bind();
  for (unsigned i = 0; i < m.config.workers; ++i)
    m.workers.push_back(std::make_unique<Worker>(static_cast<int>(i), m.shared));
  drop_privileges(m.config.user);
  // As the user that serves: a state folder it cannot write would refuse the
  // first drain (409), found only when it matters most.
  if (!m.config.state_file.empty())
    if (const std::string error = health::state_folder_error(m.config.state_file); !error.empty())
      throw std::runtime_error("health.state_file: " + error);
}

int Runtime::run() {
  Impl& m = *impl_;
  std::signal(SIGPIPE, SIG_IGN);
  m.start_main_loop();
  for (auto& w : m.workers) w->start();
  std::string addresses;
  for (const auto& at : m.config.listen)
    addresses += (addresses.empty() ? "" : ", ") + at.text +
                 (at.udp && at.tcp ? ""
                  : at.udp         ? " (udp)"
                                   : " (tcp)");
  {
    // Scoped: a world held here for the life of the loop would never be freed after a reload.
    const auto world = m.publication.load();
    const std::size_t records = world->zones.record_count();
    spdlog::info("serving {} zones, {} records on {} with {} workers", world->zones.zones().size(), records,
                 addresses, m.workers.size());
    if (m.admin) m.admin->start();
    // What is down at start, then every change.
    m.observe_health();
    m.prober.on_publish([&m] { m.observe_health(); });
    // The first probe round finished before the world was built: tell systemd
    // (Type=notify) we are ready only now.
    sd_notify(0, fmt::format("READY=1\nSTATUS=serving {} zones, {} records", world->zones.zones().size(),
                             records)
                     .c_str());
  }

  uv_run(&m.main_loop, UV_RUN_DEFAULT);

  if (m.admin) m.admin->stop();
  std::uint64_t udp = 0, tcp = 0;
  for (auto& w : m.workers) w->stop();
  for (auto& w : m.workers) {
    w->join();
    udp += w->stats.total(Transport::udp);
    tcp += w->stats.total(Transport::tcp);
  }
  m.workers.clear();  // closes the sockets
  if (m.reloader.abandon_or_join()) {
    // SIGTERM while a reload is being built: the world it builds will never
    // serve, and the build cannot be interrupted; do not wait for it.
    spdlog::info("stopped after {} UDP and {} TCP queries (a reload being built was abandoned)", udp, tcp);
    spdlog::default_logger()->flush();
    std::_Exit(m.exit_code);
  }
  uv_loop_close(&m.main_loop);
  spdlog::info("stopped after {} UDP and {} TCP queries", udp, tcp);
  return m.exit_code;
}

}  // namespace steerdns::server
