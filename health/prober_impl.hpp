// The prober's state, shared by prober.cpp (its thread, apply(), the state
// file, status and overrides) and probe.cpp (libcurl's multi interface on
// the prober's libuv loop, and one probe from start to verdict). Internal to
// health/. Everything here but `mutex`/`commands` (post) and `publication`
// (pinned by any thread) belongs to the prober thread.
#pragma once

#include <curl/curl.h>
#include <uv.h>

#include <array>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "health/prober.hpp"

namespace steerdns::health {

struct Prober::Impl {
  // One probed (VIP, check) slot, living on the prober thread. Deleted by the
  // close callback of its timer, so libuv never sees a dangling handle.
  struct Probe {
    Impl* impl = nullptr;
    std::uint32_t slot = 0;
    std::string vip;
    Check check;
    uv_timer_t timer;
    CURL* easy = nullptr;
    curl_slist* headers = nullptr;
    curl_slist* connect_to = nullptr;
    std::string url;
    std::string body;
    std::size_t header_bytes = 0;
    bool stopped_reading = false;  // we ended the transfer once we knew enough
    bool oversize = false;         // the backend sent more than kMaxBody
    bool running = false;
    bool connecting = false;  // counted in Impl::connecting until connected or done
    bool queued = false;      // in Impl::waiting
    bool first_pending = true;
    Clock::time_point started{};
    std::array<char, CURL_ERROR_SIZE> error{};
  };

  std::string state_file;
  ProbeStats stats;
  common::Publication<Table> publication{std::make_shared<const Table>()};
  Registry registry;

  uv_loop_t loop;
  uv_async_t wake;
  uv_timer_t curl_timer;
  uv_fs_event_t watch;
  bool watching = false;
  CURLM* multi = nullptr;
  std::thread thread;
  std::vector<Probe*> probes;  // by slot; nullptr when none
  // Probes between start and an established connection (TCP, and TLS for
  // https). One thread does every handshake: past this many at once, a
  // round of TLS probes (1.5 ms of CPU each, bench/README.md) would miss its
  // timeouts. Waiting probes start as others connect; their timeout starts
  // with them. A backend that accepts and hangs no longer counts.
  static constexpr unsigned kMaxConnecting = 32;
  unsigned connecting = 0;
  std::deque<Probe*> waiting;
  std::mt19937 random{std::random_device{}()};
  bool dirty = false;
  // VipStatus::transitions, by (VIP, check type): kept while the prober
  // lives, so a counter never goes back when a reload gives a check a new
  // slot (a changed interval, say).
  std::map<std::pair<std::string, CheckType>, std::array<std::uint64_t, 2>> transitions;

  // Work for the prober thread, posted by the main thread.
  std::mutex mutex;
  std::deque<std::function<void()>> commands;

  // The first round of the apply() in progress.
  std::size_t first_pending = 0;
  std::promise<void> first_round;

  explicit Impl(std::string path) : state_file(std::move(path)) {}

  // --- threads -------------------------------------------------------------

  void post(std::function<void()> f);

  void run_commands();

  void publish_if_dirty();

  // --- libcurl multi on libuv ------------------------------------------------

  struct Socket {
    uv_poll_t poll;
    curl_socket_t fd;
    Impl* impl;
  };

  static int on_socket(CURL*, curl_socket_t fd, int action, void* userp, void* socketp);

  static int on_curl_timer(CURLM*, long timeout_ms, void* userp);

  // Finished transfers: judge them, then publish once for the lot.
  void collect();

  // --- one probe --------------------------------------------------------------

  static std::size_t on_body(char* data, std::size_t size, std::size_t n, void* userp);

  static std::size_t on_header(char*, std::size_t size, std::size_t n, void* userp);

  void start(Probe& p);

  void start_waiting();

  void connected(Probe& p);

  // Runs inside libcurl (no multi calls here): the connection is up, TLS
  // included; only the request and the answer remain.
  static int on_connected(void* userp, char*, char*, int, int);

  void begin(Probe& p);

  Result outcome(Probe& p, CURLcode code);

  void finish(Probe& p, const Result& r);

  void record_stats(const Probe& p, const Result& r, TimePoint now);

  Status make_status() const;

  // On the prober thread: the state file first, then the table.
  std::string change_override(Prober::Kind kind, const std::string& name, Override overridden);

  void log_change(const Registry::Entry& e, bool was_known, bool was_up, const Result& r);

  void close(Probe& p);

  Probe* make_probe(std::uint32_t slot);

  void retire(std::uint32_t slot);

  // On the prober thread.
  Slots apply(const Plan& plan);

  // --- the state file -------------------------------------------------------

  void read_overrides(bool at_start);

  void watch_state_file();

  void shutdown();
};

}  // namespace steerdns::health
