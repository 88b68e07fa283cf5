// The admin HTTP API: metrics, status, explanations, reload and overrides.
// Served by cpp-httplib on threads of its own; nothing here touches a
// worker. Reads go through the published world and health table; writes
// go through the Prober (overrides) and the main thread (reload).
//
//   GET    /metrics                      Prometheus text format, steerdns_*
//   GET    /status                       JSON: geo names, regions, VIPs, overrides, reloads
//   GET    /explain?name=N&client=A[/P]  the explanation, on the running world and health
//   GET    /v1/overrides                 JSON: the overrides in force
//   POST   /v1/reload                    reload the config and every zone now
//   PUT    /v1/overrides/regions/NAME    {"state":"down"} or {"state":"up"}
//   PUT    /v1/overrides/vips/ADDRESS    the same for one VIP
//   DELETE /v1/overrides/{regions,vips}/X  back to automatic
//
// POST, PUT and DELETE need "Authorization: Bearer TOKEN" when admin.token_file is set.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/publication.hpp"
#include "health/prober.hpp"
#include "server/config.hpp"
#include "server/metrics.hpp"
#include "server/world.hpp"

namespace steerdns::server {

struct ReloadOutcome {
  bool ok = false;
  std::string error;  // file:line: reason, when not ok
  double seconds = 0;
  std::size_t zones = 0, records = 0;
};

struct AdminContext {
  const Config& config;  // the admin settings change only on restart
  const common::Publication<World>& world;
  health::Prober& prober;
  const Metrics& metrics;
  // Any thread: reloads on the main thread and waits for the outcome.
  std::function<ReloadOutcome()> reload;
};

class Admin {
 public:
  explicit Admin(AdminContext context);
  ~Admin();
  Admin(const Admin&) = delete;
  Admin& operator=(const Admin&) = delete;

  // Binds the listener (before privileges are dropped). Throws
  // std::runtime_error naming the address when it cannot.
  void bind();
  // Serves on its own threads until stop().
  void start();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// GET /status's document (also `steerdns ctl status --json`).
std::string status_json(const World& world, std::uint64_t generation, const health::Table& table,
                        const health::Status& status, const Metrics& metrics);

}  // namespace steerdns::server
