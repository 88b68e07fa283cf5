// The serving runtime: workers, signals and reloads, wired together.
//
// Threads: the main thread runs a libuv loop for signals (SIGHUP reloads,
// SIGTERM/SIGINT stop), reload orchestration (server/reload.hpp) and the
// collection of retired worlds. Each worker thread (server/worker.hpp) owns
// one libuv loop with its own SO_REUSEPORT UDP socket (server/udp.hpp) and
// TCP listener (server/tcp.hpp) per listen address, and reads the world and
// the health table through Pins. The prober (health/prober.hpp) runs on its
// own thread; the admin API (server/admin.hpp) on cpp-httplib's threads.
#pragma once

#include <memory>

#include "health/prober.hpp"
#include "server/config.hpp"
#include "server/metrics.hpp"
#include "server/world.hpp"

namespace steerdns::server {

class Runtime {
 public:
  // WORLD was built with MONITOR and METRICS, which must outlive the Runtime.
  Runtime(Config config, std::shared_ptr<const World> world, health::Prober& prober, Metrics& metrics);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Opens and binds every socket of every worker and the admin API's, then
  // drops root privileges (server.user). Throws std::runtime_error naming
  // the address when one cannot be bound.
  void bind();
  // Serves until SIGTERM or SIGINT; returns the process exit code.
  int run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace steerdns::server
