// The serving runtime: worker threads, their sockets, signals and reload.
//
// Threads: the main thread runs a libuv loop for signals only (SIGHUP
// reloads, SIGTERM/SIGINT stop) and builds new worlds there, off the
// workers. Each worker thread owns one libuv loop, one SO_REUSEPORT UDP
// socket and one SO_REUSEPORT TCP listener per listen address; it reads the
// world and the health table through Pins, once per receive batch. The
// prober (health::Prober) runs on its own thread; a reload applies the new
// world's checks to it before publishing the world.
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
