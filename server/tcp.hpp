// The TCP path (RFC 7766): one worker's listeners and connections.
//
// A connection's life, each step on the worker's loop:
//   accepted (on_tcp_acceptable: accept4 by hand, see TcpListener)
//     → counted against max_connections and max_connections_per_client,
//       or closed at once (steerdns_tcp_refused_total)
//   reading: octets arrive into the connection's buffer; every complete
//     length-prefixed message is answered in order (pipelining), its answer
//     written with uv_write; the idle timeout runs while no message is in
//     progress, query_timeout from a message's first octet (a trickle does
//     not extend it: slowloris)
//   paused: max_pipelined answers are being written; reading stops and
//     resumes as they drain (the idle timeout applies: the wait is ours)
//   half-closed: the client sent EOF; the answers in flight are written,
//     then the connection closes
//   closing: both handles (socket, timer) closed; freed when both are, and
//     its counts released. Answers still queued count as send errors.
//
// Thread contract: everything here runs on the owning worker's thread,
// except ClientConnections, which the workers share (accept and close only).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

namespace steerdns::server {

struct Worker;

// A listening socket the worker accepts from itself, not with uv_listen():
// at the descriptor limit, once libuv's spare descriptor is gone (another
// thread took the slot it freed), libuv's accept loop retries EMFILE
// without end, and the worker's UDP stops with it. Here a resource error
// pauses accepting for kAcceptPauseMs; the connections wait in the
// kernel's queue meanwhile.
struct TcpListener {
  uv_poll_t poll;
  uv_timer_t pause;
  int fd = -1;
  Worker* worker = nullptr;
};

// A TCP client as max_connections_per_client counts it: its IPv4 address,
// or its IPv6 /64.
struct ClientKey {
  bool v6 = false;
  std::uint64_t bits = 0;
  auto operator<=>(const ClientKey&) const = default;
};

ClientKey client_key(const sockaddr_storage& peer);

// Open connections per client, shared by the workers (accept and close
// only: never on the query path).
class ClientConnections {
 public:
  // False (and nothing counted) when KEY already has LIMIT open.
  bool acquire(const ClientKey& key, unsigned limit);
  void release(const ClientKey& key);

 private:
  std::mutex mutex_;
  std::map<ClientKey, unsigned> open_;
};

struct TcpConnection {
  uv_tcp_t tcp;
  uv_timer_t timer;
  Worker* worker = nullptr;
  sockaddr_storage peer{};
  sockaddr_storage local{};  // read only when dnstap is on (local_known)
  bool local_known = false;
  ClientKey client;
  std::vector<std::uint8_t> buffer = std::vector<std::uint8_t>(1024);
  std::size_t have = 0;
  // monotonic_ns() at the read that last added to the buffer: the receipt
  // of the messages it completed (steerdns_answer_duration_seconds).
  std::uint64_t received_at = 0;
  unsigned in_flight = 0;  // answers written but not yet sent
  int open_handles = 2;
  bool reading = false;
  bool closing = false;
  bool peer_done = false;       // EOF seen: close once the answers in flight are written
  bool counted = false;         // in the server's connection count
  bool client_counted = false;  // in its client's
  // The timer runs for a message in progress (query_timeout, from its first
  // octet) rather than for an idle connection (idle_timeout).
  bool query_timer = false;
};

// The uv_poll callback of a TcpListener (handle->data).
void on_tcp_acceptable(uv_poll_t* handle, int status, int events);
// Starts closing C (idempotent); it is freed once its handles are closed.
void tcp_close(TcpConnection* c);

}  // namespace steerdns::server
