// Reload orchestration: SIGHUP and the admin API's POST /v1/reload build a
// new world off the workers and publish it, or keep the old one and say why.
//
//   reload() (main thread)
//     → a builder thread at nice 19 (Linux sets it per thread) loads the
//       config and builds the world (server/world.hpp), applying its checks
//       to the prober; workers sharing its core keep answering at full speed
//       and the main loop keeps handling signals meanwhile
//     → `built` wakes the main loop: finish() publishes the world (or logs
//       the error, file:line, and counts the failure), tells systemd, answers
//       every API request waiting for this build
//   A reload asked for while one is being built runs once after it (the
//   files may have changed after the build read them); requests queued
//   meanwhile are merged into that one.
//
// Thread contract: everything but request() runs on the main thread.
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/publication.hpp"
#include "health/prober.hpp"
#include "server/admin.hpp"
#include "server/config.hpp"
#include "server/metrics.hpp"
#include "server/world.hpp"

namespace steerdns::server {

class Reloader {
 public:
  // CONFIG is the running one: its path is reloaded; settings that change
  // only on restart are compared with it. ON_PUBLISHED runs on the main
  // thread after each new world is published.
  Reloader(const Config& config, common::Publication<World>& world, health::Prober& prober, Metrics& metrics,
           std::function<void()> on_published);
  ~Reloader();
  Reloader(const Reloader&) = delete;
  Reloader& operator=(const Reloader&) = delete;

  // Main thread, once: the async handles live on LOOP.
  void attach(uv_loop_t* loop);
  // Main thread (SIGHUP): starts a reload, or merges it into the next one.
  void reload() { start({}); }
  // Any thread (the admin API): queues a reload for the main thread and
  // waits for its outcome.
  ReloadOutcome request();
  // Main thread, on SIGTERM: refuses new reloads, answers every waiting
  // request "the server is stopping", closes the handles.
  void stop();
  // Main thread, after the loop ended: a build is still running (it cannot
  // be interrupted; the caller abandons it) — else it was joined.
  bool abandon_or_join();

 private:
  using Waiting = std::vector<std::promise<ReloadOutcome>*>;
  void start(Waiting waiting);
  void finish();
  void run_requests();
  void warn_restart_only_changes(const Config& next) const;

  const Config& config_;
  common::Publication<World>& world_;
  health::Prober& prober_;
  Metrics& metrics_;
  std::function<void()> on_published_;
  uv_async_t built_;     // the builder is done
  uv_async_t requests_;  // request() queued something

  std::mutex mutex_;  // guards stopping_ and queued_ (request() runs on API threads)
  bool stopping_ = false;
  std::deque<std::promise<ReloadOutcome>*> queued_;

  std::thread builder_;                  // joinable: a build is under way (or done, not yet published)
  std::atomic<bool> build_done_{false};  // the builder's last act but telling the loop
  bool again_ = false;                   // asked for while building (SIGHUP or the API)
  std::chrono::steady_clock::time_point build_started_;
  Config next_config_;
  std::shared_ptr<const World> next_world_;
  std::exception_ptr build_failure_;
  Waiting answered_by_build_;  // waiting for the build under way
  Waiting answered_by_next_;   // asked for while it ran
};

}  // namespace steerdns::server
