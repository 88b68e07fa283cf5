// A worker: one thread running one libuv loop, with its own SO_REUSEPORT
// UDP socket and TCP listener per listen address (server/udp.hpp,
// server/tcp.hpp). It reads the world and the health table through Pins,
// refreshed once per receive batch (and once a second when idle, so that a
// retired world is not kept alive), and writes only its own counters.
//
// Thread contract: a Worker is built and its sockets bound on the main
// thread (Runtime::bind); from start() on, everything in it but `stop` (an
// async handle, any thread) belongs to its own thread. Shared holds what
// the workers share: read-only config and publications, and the few
// counters they update atomically (connection counts, the rate limiter).
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <memory>
#include <span>
#include <thread>
#include <unordered_set>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/publication.hpp"
#include "health/table.hpp"
#include "server/answer.hpp"
#include "server/config.hpp"
#include "server/dnstap.hpp"
#include "server/metrics.hpp"
#include "server/rate_limit.hpp"
#include "server/tcp.hpp"
#include "server/udp.hpp"
#include "server/world.hpp"

namespace steerdns::server {

struct Shared {
  const Config& config;
  common::Publication<World>& world;
  const common::Publication<health::Table>& health;
  Metrics& metrics;      // also holds the TCP connection count shared by workers
  RateLimiter* limiter;  // UDP response rate limiting; null when off
  Dnstap* dnstap;        // logging.dnstap; null when off
  ClientConnections clients;
};

struct Worker {
  // Initialises the loop and binds this worker's sockets for every listen
  // address. Throws std::runtime_error naming the address.
  Worker(int index, Shared& shared);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Starts polling the sockets and runs the loop on a thread of its own.
  void start();
  // Any thread: closes the sockets' handles and every open connection; the
  // loop then ends, and join() returns.
  void stop();
  void join();

  // A client's responses started to be rate limited: logged (at most once a
  // second per worker, like errors) so an operator sees floods and can tune.
  void log_limited(const sockaddr_storage& peer, const RateLimiter::Verdict& v,
                   std::span<const std::uint8_t> query);

  // Packet-path errors are logged at most once a second per worker.
  template <class... Args>
  void log_error(spdlog::format_string_t<Args...> fmt, Args&&... args) {
    const std::uint64_t now = uv_now(&loop);
    if (last_error_log != 0 && now - last_error_log < 1000) {
      ++suppressed_errors;
      return;
    }
    if (suppressed_errors > 0)
      spdlog::warn("worker {}: {} similar errors suppressed", index, suppressed_errors);
    suppressed_errors = 0;
    last_error_log = now;
    spdlog::error(fmt, std::forward<Args>(args)...);
  }

  // When a query arrived, by the clocks the query log (steady) and dnstap
  // (real time) read; neither is read when its output is off.
  struct Received {
    std::chrono::steady_clock::time_point steady{};
    timespec real{};
  };
  Received received() const noexcept;

  // After answer() (and, over UDP, the rate limiter): one answer counted,
  // logged (logging.query_log) and sent to dnstap (logging.dnstap).
  // RESPONSE is what goes back to PEER (empty: nothing).
  void record(Transport transport, const sockaddr_storage& peer, const sockaddr_storage* local,
              std::span<const std::uint8_t> query, std::span<const std::uint8_t> response,
              const AnswerInfo& info, const World& world, const Received& received);

  // The query log line of one answer: client, client subnet and scope,
  // question, rcode, answered region, size, flags, the cookie's state and
  // the time answer() took.
  void log_query(const char* transport, const sockaddr_storage& peer, std::span<const std::uint8_t> query,
                 const AnswerInfo& info, const World& world, std::chrono::steady_clock::duration spent);

  int index;
  Shared& shared;
  common::Pin<World> pin;
  common::Pin<health::Table> health;
  uv_loop_t loop;
  uv_async_t stop_async;
  uv_timer_t refresh;  // re-pins once a second, with or without traffic
  std::vector<std::unique_ptr<UdpSocket>> udp;
  std::vector<std::unique_ptr<TcpListener>> tcp;
  std::unordered_set<TcpConnection*> connections;
  std::unique_ptr<UdpBatch> batch = std::make_unique<UdpBatch>();
  std::unique_ptr<std::uint8_t[]> tcp_answer = std::make_unique<std::uint8_t[]>(kMaxTcpMessage);
  WorkerCounters& stats;  // this worker's own: only it writes them
  std::uint64_t last_error_log = 0;
  std::uint64_t suppressed_errors = 0;
  std::uint64_t last_limit_log = 0;
  std::uint64_t suppressed_limits = 0;
  std::thread thread;
  bool loop_closed = false;  // join() closed the loop
};

}  // namespace steerdns::server
