#include "server/runtime.hpp"

#include <arpa/inet.h>
#include <spdlog/spdlog.h>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>
#include <grp.h>
#include <pwd.h>
#include <systemd/sd-daemon.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_set>
#include <vector>

#include "common/load_error.hpp"
#include "server/admin.hpp"
#include "server/answer.hpp"
#include "server/metrics.hpp"
#include "common/publication.hpp"
#include "server/rate_limit.hpp"
#include "server/text.hpp"

namespace steerdns::server {

namespace {

constexpr int kBatch = 64;             // datagrams per recvmmsg/sendmmsg
constexpr int kRoundsPerWakeup = 16;   // batches before yielding to the loop (fairness with TCP)
constexpr std::size_t kUdpBuffer = 4096;  // our EDNS payload is at most 4096
constexpr int kListenBacklog = 1024;
constexpr std::uint64_t kAcceptPauseMs = 100;  // after accept() fails for want of a resource

std::string errno_text(int err) { return std::strerror(err); }

bool is_wildcard(const ListenAddress& at) {
  if (at.address.ss_family == AF_INET)
    return reinterpret_cast<const sockaddr_in&>(at.address).sin_addr.s_addr == htonl(INADDR_ANY);
  return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6&>(at.address).sin6_addr);
}

// Opens and binds a socket for AT. SHARED sockets join one SO_REUSEPORT
// group (every worker binds its own; the kernel spreads flows across them);
// an unshared one fails with EADDRINUSE when anyone holds the address.
int open_socket(const ListenAddress& at, int type, bool shared) {
  const int family = at.address.ss_family;
  const int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(at.text + ": socket: " + errno_text(errno));
  const int one = 1;
  if (shared) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (type == SOCK_STREAM) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  // On a wildcard address, learn each query's destination so the answer
  // leaves from it (a host with several addresses would otherwise reply from
  // its primary one, and clients drop that).
  if (type == SOCK_DGRAM && is_wildcard(at)) {
    if (family == AF_INET) setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
    else setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
  }
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&at.address), at.address_size) != 0) {
    const int err = errno;
    ::close(fd);
    throw std::runtime_error(at.text + (type == SOCK_STREAM ? " (tcp)" : " (udp)") + ": bind: " +
                             errno_text(err) +
                             (err == EADDRINUSE ? " (is another server running there?)" : ""));
  }
  return fd;
}

struct Worker;

struct UdpSocket {
  uv_poll_t poll;
  int fd = -1;
  bool pktinfo = false;  // wildcard bind: carry the destination address back
  Worker* worker = nullptr;
};

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

ClientKey client_key(const sockaddr_storage& peer) {
  ClientKey key;
  if (peer.ss_family == AF_INET6) {
    key.v6 = true;
    const auto& a = reinterpret_cast<const sockaddr_in6&>(peer).sin6_addr;
    for (int i = 0; i < 8; ++i) key.bits = key.bits << 8 | a.s6_addr[i];
  } else if (peer.ss_family == AF_INET) {
    key.bits = ntohl(reinterpret_cast<const sockaddr_in&>(peer).sin_addr.s_addr);
  }
  return key;
}

// Open connections per client, shared by the workers (accept and close
// only: never on the query path).
class ClientConnections {
 public:
  bool acquire(const ClientKey& key, unsigned limit) {
    std::lock_guard lock(mutex_);
    unsigned& n = open_[key];
    if (n >= limit) {
      if (n == 0) open_.erase(key);
      return false;
    }
    ++n;
    return true;
  }
  void release(const ClientKey& key) {
    std::lock_guard lock(mutex_);
    auto it = open_.find(key);
    if (it != open_.end() && --it->second == 0) open_.erase(it);
  }

 private:
  std::mutex mutex_;
  std::map<ClientKey, unsigned> open_;
};

struct TcpConnection {
  uv_tcp_t tcp;
  uv_timer_t timer;
  Worker* worker = nullptr;
  sockaddr_storage peer{};
  ClientKey client;
  std::vector<std::uint8_t> buffer = std::vector<std::uint8_t>(1024);
  std::size_t have = 0;
  unsigned in_flight = 0;
  int open_handles = 2;
  bool reading = false;
  bool closing = false;
  bool peer_done = false;  // EOF seen: close once the answers in flight are written
  bool counted = false;         // in the server's connection count
  bool client_counted = false;  // in its client's
  // The timer runs for a message in progress (query_timeout, from its first
  // octet) rather than for an idle connection (idle_timeout).
  bool query_timer = false;
};

struct TcpWrite {
  uv_write_t request;
  TcpConnection* connection;
  std::unique_ptr<std::uint8_t[]> data;
};

struct UdpBatch {
  std::array<mmsghdr, kBatch> recv{};
  std::array<mmsghdr, kBatch> send{};
  std::array<iovec, kBatch> recv_iov{};
  std::array<iovec, kBatch> send_iov{};
  std::array<sockaddr_storage, kBatch> peers{};
  // Room for one IP_PKTINFO or IPV6_PKTINFO control message per datagram.
  static constexpr std::size_t kControl = CMSG_SPACE(sizeof(in6_pktinfo));
  alignas(cmsghdr) std::array<std::array<std::uint8_t, kControl>, kBatch> control{};
  std::array<std::array<std::uint8_t, kUdpBuffer>, kBatch> in{};
  std::array<std::array<std::uint8_t, kUdpBuffer>, kBatch> out{};
};

struct Shared {
  const Config& config;
  common::Publication<World>& world;
  const common::Publication<health::Table>& health;
  Metrics& metrics;  // also holds the TCP connection count shared by workers
  RateLimiter* limiter;  // UDP response rate limiting; null when off
  ClientConnections clients;
};

struct Worker {
  Worker(int index, Shared& shared)
      : index(index),
        shared(shared),
        pin(shared.world),
        health(shared.health),
        stats(*shared.metrics.workers[index]) {}

  int index;
  Shared& shared;
  common::Pin<World> pin;
  common::Pin<health::Table> health;
  uv_loop_t loop;
  uv_async_t stop;
  // Moves the pins to the current world and health table once a second
  // even without traffic, so an idle worker does not keep a retired world
  // (and its memory) alive.
  uv_timer_t refresh;
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

  // A client's responses started to be rate limited: logged (at most once a
  // second per worker, like errors) so an operator sees floods and can tune.
  void log_limited(const sockaddr_storage& peer, const RateLimiter::Verdict& v, std::span<const std::uint8_t> query) {
    const std::uint64_t now = uv_now(&loop);
    if (last_limit_log != 0 && now - last_limit_log < 1000) {
      ++suppressed_limits;
      return;
    }
    const RateLimiter& limiter = *shared.limiter;
    spdlog::warn("rate limit{}: {} responses to {} over {}/s ({}){}", limiter.config().log_only ? " (log only)" : "",
                 response_kind_name(v.kind), limiter.network_text(peer), limiter.config().rate(v.kind),
                 question_text(query),
                 suppressed_limits > 0 ? fmt::format("; {} more networks limited in the last second", suppressed_limits)
                                       : std::string());
    suppressed_limits = 0;
    last_limit_log = now;
  }

  // Packet-path errors are logged at most once a second per worker.
  template <class... Args>
  void log_error(spdlog::format_string_t<Args...> fmt, Args&&... args) {
    const std::uint64_t now = uv_now(&loop);
    if (last_error_log != 0 && now - last_error_log < 1000) {
      ++suppressed_errors;
      return;
    }
    if (suppressed_errors > 0) spdlog::warn("worker {}: {} similar errors suppressed", index, suppressed_errors);
    suppressed_errors = 0;
    last_error_log = now;
    spdlog::error(fmt, std::forward<Args>(args)...);
  }

  void log_query(const char* transport, const sockaddr_storage& peer,
                 std::span<const std::uint8_t> query, const AnswerInfo& info) {
    spdlog::info("query {} {} {} {} {} {}b{}", transport, address_text(peer), question_text(query),
                 qtype_text(info.qtype), rcode_text(info.rcode), info.size,
                 info.truncated ? " TC" : "");
  }
};

// ---- UDP ---------------------------------------------------------------

// Turns the received IP_PKTINFO/IPV6_PKTINFO into the one to send with, in
// place (the control buffer is this datagram's own): source = the address
// the query was sent to, interface chosen by routing.
void reply_from_destination(const msghdr& received, msghdr& reply) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&received); c != nullptr;
       c = CMSG_NXTHDR(const_cast<msghdr*>(&received), c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      auto* info = reinterpret_cast<in_pktinfo*>(CMSG_DATA(c));
      info->ipi_spec_dst = info->ipi_addr;
      info->ipi_ifindex = 0;
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      auto* info = reinterpret_cast<in6_pktinfo*>(CMSG_DATA(c));
      // Link-local destinations need their interface; keep it.
      if (!IN6_IS_ADDR_LINKLOCAL(&info->ipi6_addr)) info->ipi6_ifindex = 0;
    } else {
      continue;
    }
    reply.msg_control = c;
    reply.msg_controllen = CMSG_SPACE(c->cmsg_len - CMSG_LEN(0));
    return;
  }
}

void on_udp_readable(uv_poll_t* handle, int status, int /*events*/) {
  auto* sock = static_cast<UdpSocket*>(handle->data);
  Worker& w = *sock->worker;
  if (status < 0) {
    w.log_error("worker {}: udp poll: {}", w.index, uv_strerror(status));
    return;
  }
  UdpBatch& b = *w.batch;
  const bool query_log = w.shared.config.query_log;
  for (int round = 0; round < kRoundsPerWakeup; ++round) {
    for (int i = 0; i < kBatch; ++i) {
      b.recv_iov[i] = {b.in[i].data(), kUdpBuffer};
      msghdr& h = b.recv[i].msg_hdr;
      h = {};
      h.msg_name = &b.peers[i];
      h.msg_namelen = sizeof(sockaddr_storage);
      h.msg_iov = &b.recv_iov[i];
      h.msg_iovlen = 1;
      if (sock->pktinfo) {
        h.msg_control = b.control[i].data();
        h.msg_controllen = UdpBatch::kControl;
      }
    }
    const int received = recvmmsg(sock->fd, b.recv.data(), kBatch, MSG_DONTWAIT, nullptr);
    if (received <= 0) {
      if (received < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        w.log_error("worker {}: recvmmsg: {}", w.index, errno_text(errno));
      return;
    }
    // World first: its health slots were published before it was.
    const World& world = w.pin.refresh();
    const health::Table& table = w.health.refresh();
    int replies = 0;
    for (int i = 0; i < received; ++i) {
      const msghdr& h = b.recv[i].msg_hdr;
      if (h.msg_flags & MSG_TRUNC) {  // larger than any query we accept: dropped
        w.stats.count(Transport::udp, AnswerInfo{});
        continue;
      }
      const std::span<const std::uint8_t> query(b.in[i].data(), b.recv[i].msg_len);
      AnswerInfo info = answer(world, table, query, b.out[i], Transport::udp, &b.peers[i]);
      if (w.shared.limiter != nullptr && info.size > 0) {
        const RateLimiter::Verdict v =
            w.shared.limiter->check(b.peers[i], {b.out[i].data(), info.size}, info, uv_now(&w.loop));
        if (v.limited) {
          bump(w.stats.rate_limited[static_cast<std::size_t>(v.kind)][static_cast<std::size_t>(v.action)]);
          if (v.started) w.log_limited(b.peers[i], v, query);
          if (v.action == RateAction::drop) {
            info.size = 0;
          } else if (v.action == RateAction::slip) {
            info.size = slip_response(b.out[i], info.size);
            info.truncated = true;
          }
        }
      }
      w.shared.metrics.count(w.index, world, Transport::udp, info);
      if (query_log) w.log_query("udp", b.peers[i], query, info);
      if (info.size == 0) continue;
      b.send_iov[replies] = {b.out[i].data(), info.size};
      msghdr& out = b.send[replies].msg_hdr;
      out = {};
      out.msg_name = &b.peers[i];
      out.msg_namelen = h.msg_namelen;
      out.msg_iov = &b.send_iov[replies];
      out.msg_iovlen = 1;
      if (sock->pktinfo) reply_from_destination(h, out);
      ++replies;
    }
    for (int sent = 0; sent < replies;) {
      const int n = sendmmsg(sock->fd, b.send.data() + sent, replies - sent, MSG_DONTWAIT);
      if (n > 0) {
        sent += n;
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {  // socket buffer full: drop the rest
        bump(w.stats.send_errors, static_cast<std::uint64_t>(replies - sent));
        w.log_error("worker {}: send buffer full, {} answers dropped", w.index, replies - sent);
        break;
      }
      bump(w.stats.send_errors);
      w.log_error("worker {}: sendmmsg: {}", w.index, errno_text(errno));
      ++sent;  // skip the datagram that failed, keep the others
    }
    if (received < kBatch) return;
  }
}

// ---- TCP ---------------------------------------------------------------

void tcp_process(TcpConnection* c);

void on_connection_closed(uv_handle_t* handle) {
  auto* c = static_cast<TcpConnection*>(handle->data);
  if (--c->open_handles > 0) return;
  if (c->counted) c->worker->shared.metrics.tcp_connections.fetch_sub(1, std::memory_order_relaxed);
  if (c->client_counted) c->worker->shared.clients.release(c->client);
  c->worker->connections.erase(c);
  delete c;
}

void tcp_close(TcpConnection* c) {
  if (c->closing) return;
  c->closing = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_connection_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->timer), on_connection_closed);
}

void on_tcp_timeout(uv_timer_t* timer) {
  auto* c = static_cast<TcpConnection*>(timer->data);
  WorkerCounters& stats = c->worker->stats;
  bump(c->query_timer ? stats.tcp_query_timeouts : stats.tcp_idle_timeouts);
  tcp_close(c);
}

void start_timer(TcpConnection* c, std::chrono::milliseconds timeout) {
  uv_timer_start(&c->timer, on_tcp_timeout, static_cast<std::uint64_t>(timeout.count()), 0);
}

// Activity (accepted, an answer written): the idle timeout starts over,
// unless a message is in progress, whose own deadline does not move.
void restart_idle_timer(TcpConnection* c) {
  if (!c->query_timer) start_timer(c, c->worker->shared.config.tcp.idle_timeout);
}

void on_tcp_alloc(uv_handle_t* handle, std::size_t /*suggested*/, uv_buf_t* buf) {
  auto* c = static_cast<TcpConnection*>(handle->data);
  *buf = uv_buf_init(reinterpret_cast<char*>(c->buffer.data() + c->have),
                     static_cast<unsigned>(c->buffer.size() - c->have));
}

void on_tcp_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* /*buf*/);

void tcp_resume(TcpConnection* c) {
  if (c->reading || c->closing) return;
  c->reading = true;
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_tcp_alloc, on_tcp_read);
}

void on_tcp_written(uv_write_t* request, int status) {
  auto* write = static_cast<TcpWrite*>(request->data);
  TcpConnection* c = write->connection;
  delete write;
  --c->in_flight;
  // Not (wholly) sent: a write error, or the connection closed with the
  // answer still queued (a client that stopped reading, timed out).
  if (status < 0) bump(c->worker->stats.send_errors);
  if (c->closing) return;
  if (status < 0) {
    tcp_close(c);
    return;
  }
  restart_idle_timer(c);
  tcp_process(c);  // queries may already wait in the buffer
  if (c->peer_done && c->in_flight == 0) tcp_close(c);
}

// Answers every complete length-prefixed query in the buffer (RFC 7766 §8),
// in order, until the pipelining limit stops reading.
void tcp_process(TcpConnection* c) {
  Worker& w = *c->worker;
  const unsigned max_in_flight = w.shared.config.tcp.max_pipelined;
  std::size_t pos = 0;
  while (!c->closing && c->have - pos >= 2 && c->in_flight < max_in_flight) {
    const std::size_t len = static_cast<std::size_t>(c->buffer[pos] << 8 | c->buffer[pos + 1]);
    if (c->have - pos < 2 + len) break;
    const std::span<const std::uint8_t> query(c->buffer.data() + pos + 2, len);
    const World& world = w.pin.refresh();
    const AnswerInfo info = answer(world, w.health.refresh(), query, {w.tcp_answer.get(), kMaxTcpMessage},
                                   Transport::tcp, &c->peer);
    w.shared.metrics.count(w.index, world, Transport::tcp, info);
    if (w.shared.config.query_log) w.log_query("tcp", c->peer, query, info);
    pos += 2 + len;
    if (info.size == 0) {  // nothing to say to this: end the conversation
      tcp_close(c);
      return;
    }
    auto* write = new TcpWrite{{}, c, std::make_unique<std::uint8_t[]>(info.size + 2)};
    write->data[0] = static_cast<std::uint8_t>(info.size >> 8);
    write->data[1] = static_cast<std::uint8_t>(info.size);
    std::memcpy(write->data.get() + 2, w.tcp_answer.get(), info.size);
    write->request.data = write;
    const uv_buf_t out = uv_buf_init(reinterpret_cast<char*>(write->data.get()),
                                     static_cast<unsigned>(info.size + 2));
    ++c->in_flight;
    if (uv_write(&write->request, reinterpret_cast<uv_stream_t*>(&c->tcp), &out, 1,
                 on_tcp_written) != 0) {
      --c->in_flight;
      delete write;
      tcp_close(c);
      return;
    }
    restart_idle_timer(c);
  }
  if (pos > 0) {
    std::memmove(c->buffer.data(), c->buffer.data() + pos, c->have - pos);
    c->have -= pos;
  }
  // Room for the whole next message, whose length we may already know.
  std::size_t need = 1024;
  if (c->have >= 2) need = std::max(need, 2 + static_cast<std::size_t>(c->buffer[0] << 8 | c->buffer[1]));
  if (c->buffer.size() < need) c->buffer.resize(need);
  // A message in progress must be whole within query_timeout of its first
  // octet, however slowly it trickles in (slowloris); a new message, one
  // after a whole one, gets a deadline of its own. While reading is paused
  // by the pipelining limit the wait is ours, so the idle timeout applies.
  if (c->have > 0 && c->in_flight < max_in_flight && !c->peer_done) {
    if (!c->query_timer || pos > 0) {
      c->query_timer = true;
      start_timer(c, w.shared.config.tcp.query_timeout);
    }
  } else if (c->query_timer) {
    c->query_timer = false;
    start_timer(c, w.shared.config.tcp.idle_timeout);
  }
  // Reading pauses while the pipelining limit is reached, and resumes as
  // answers drain (on_tcp_written calls back here).
  if (c->in_flight >= max_in_flight) {
    if (c->reading) uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->tcp));
    c->reading = false;
  } else if (!c->peer_done) {
    tcp_resume(c);
  }
}

void on_tcp_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* /*buf*/) {
  auto* c = static_cast<TcpConnection*>(stream->data);
  if (nread == UV_EOF && c->in_flight > 0) {  // half-close: answer what was asked, then close
    c->peer_done = true;
    uv_read_stop(stream);
    c->reading = false;
    return;
  }
  if (nread < 0) {  // EOF or error: the client is done
    tcp_close(c);
    return;
  }
  c->have += static_cast<std::size_t>(nread);
  tcp_process(c);
}

// FD: a connection just accepted (non-blocking); this takes it over.
void on_tcp_connection(Worker& w, int fd) {
  auto* c = new TcpConnection;
  c->worker = &w;
  uv_tcp_init(&w.loop, &c->tcp);
  uv_timer_init(&w.loop, &c->timer);
  c->tcp.data = c;
  c->timer.data = c;
  w.connections.insert(c);
  if (uv_tcp_open(&c->tcp, fd) != 0) {
    ::close(fd);
    tcp_close(c);
    return;
  }
  int len = sizeof c->peer;
  uv_tcp_getpeername(&c->tcp, reinterpret_cast<sockaddr*>(&c->peer), &len);
  const unsigned limit = w.shared.config.tcp.max_connections;
  if (w.shared.metrics.tcp_connections.fetch_add(1, std::memory_order_relaxed) >= limit) {
    w.shared.metrics.tcp_connections.fetch_sub(1, std::memory_order_relaxed);
    bump(w.stats.tcp_refused);
    w.log_error("worker {}: {} TCP connections open, closing a new one from {}", w.index, limit,
                address_text(c->peer));
    tcp_close(c);
    return;
  }
  c->counted = true;
  c->client = client_key(c->peer);
  if (!w.shared.clients.acquire(c->client, w.shared.config.tcp.max_connections_per_client)) {
    bump(w.stats.tcp_client_refused);
    w.log_error("worker {}: {} already has {} TCP connections open, closing a new one", w.index,
                address_text(c->peer), w.shared.config.tcp.max_connections_per_client);
    tcp_close(c);
    return;
  }
  c->client_counted = true;
  uv_tcp_nodelay(&c->tcp, 1);
  restart_idle_timer(c);
  tcp_process(c);  // starts reading
}

void on_tcp_acceptable(uv_poll_t* handle, int status, int /*events*/) {
  auto* l = static_cast<TcpListener*>(handle->data);
  Worker& w = *l->worker;
  if (status < 0) {
    w.log_error("worker {}: tcp poll: {}", w.index, uv_strerror(status));
    return;
  }
  for (int i = 0; i < kBatch; ++i) {  // the poll is level-triggered: the rest next time round
    const int fd = ::accept4(l->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      on_tcp_connection(w, fd);
      continue;
    }
    const int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) return;
    // The client gave up first: nothing to count.
    if (err == EINTR || err == ECONNABORTED) continue;
    bump(w.stats.tcp_accept_errors);
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
      w.log_error("worker {}: tcp accept: {}; accepting again in {} ms", w.index, errno_text(err),
                  kAcceptPauseMs);
      uv_poll_stop(&l->poll);
      uv_timer_start(
          &l->pause,
          [](uv_timer_t* t) {
            auto* listener = static_cast<TcpListener*>(t->data);
            uv_poll_start(&listener->poll, UV_READABLE, on_tcp_acceptable);
          },
          kAcceptPauseMs, 0);
      return;
    }
    // That connection's own error (Linux passes some network errors on): the next one.
    w.log_error("worker {}: tcp accept: {}", w.index, errno_text(err));
  }
}

// ---- worker lifecycle ---------------------------------------------------

void on_stop(uv_async_t* async) {
  auto* w = static_cast<Worker*>(async->data);
  for (auto& s : w->udp) uv_close(reinterpret_cast<uv_handle_t*>(&s->poll), nullptr);
  for (auto& l : w->tcp) {
    uv_close(reinterpret_cast<uv_handle_t*>(&l->poll), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&l->pause), nullptr);
  }
  const std::vector<TcpConnection*> open(w->connections.begin(), w->connections.end());
  for (TcpConnection* c : open) tcp_close(c);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->stop), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->refresh), nullptr);
}

}  // namespace

struct Runtime::Impl {
  Impl(Config c, std::shared_ptr<const World> world, health::Prober& prober, Metrics& metrics)
      : config(std::move(c)),
        prober(prober),
        metrics(metrics),
        publication(std::move(world)),
        limiter(config.rate_limit.enabled() ? std::make_unique<RateLimiter>(config.rate_limit) : nullptr),
        shared{config, publication, prober.table(), metrics, limiter.get(), {}} {
    if (config.admin.enabled)
      admin = std::make_unique<Admin>(AdminContext{config, publication, prober, metrics,
                                                   [this] { return request_reload(); }});
  }

  Config config;
  health::Prober& prober;
  Metrics& metrics;
  common::Publication<World> publication;
  std::unique_ptr<RateLimiter> limiter;
  Shared shared;
  std::vector<std::unique_ptr<Worker>> workers;
  std::unique_ptr<Admin> admin;
  uv_loop_t main_loop;
  uv_signal_t sighup, sigterm, sigint;
  uv_async_t reload_async;
  uv_timer_t collect_timer;  // frees retired worlds once no worker holds them
  std::size_t retired_worlds = 0;
  int exit_code = 0;

  // Reloads asked for by the admin API, run on the main thread.
  std::mutex reload_mutex;
  std::deque<std::promise<ReloadOutcome>*> reload_requests;
  bool stopping = false;

  // Settings the workers hold for their lifetime; a reload cannot change them.
  void warn_restart_only_changes(const Config& next) const {
    auto listen_text = [](const Config& c) {
      std::string out;
      for (const auto& at : c.listen) out += at.text + (at.udp ? "/udp" : "") + (at.tcp ? "/tcp" : "") + " ";
      return out;
    };
    auto warn = [](const char* what) { spdlog::warn("reload: {} changes only on restart", what); };
    if (listen_text(next) != listen_text(config)) warn("server.listen");
    if (next.workers != config.workers) warn("server.workers");
    if (next.tcp != config.tcp) warn("server.tcp");
    if (next.rate_limit != config.rate_limit) warn("server.rate_limit");
    if (next.query_log != config.query_log) warn("logging.query_log");
    if (next.state_file != config.state_file) warn("health.state_file");
    if (next.admin.enabled != config.admin.enabled || next.admin.text != config.admin.text ||
        next.admin.token != config.admin.token)
      warn("admin");
    if (next.user != config.user) warn("server.user");
  }

  // Reloads run on the main thread's loop without blocking it: the new
  // world is built on a thread of its own at the lowest CPU priority (nice
  // 19; Linux sets it per thread), so that workers sharing its core keep
  // answering at full speed while a large world compiles, and the loop
  // keeps handling signals (SIGTERM during a reload stops at once). The
  // builder reports through `built`; reloads asked for meanwhile are
  // merged into one that starts when it is done.
  std::thread builder;  // joinable: a build is under way (or done, not yet published)
  uv_async_t built;
  bool reload_again = false;  // asked for while building (SIGHUP or the API)
  std::atomic<bool> build_done{false};  // the builder's last act but telling the loop
  std::chrono::steady_clock::time_point build_started;
  Config next_config;
  std::shared_ptr<const World> next_world;
  std::exception_ptr build_failure;
  std::vector<std::promise<ReloadOutcome>*> answered_by_build;  // waiting for the build under way
  std::vector<std::promise<ReloadOutcome>*> answered_by_next;   // asked for while it ran

  // On the main thread: SIGHUP, or the admin API through request_reload.
  void reload(std::vector<std::promise<ReloadOutcome>*> waiting = {}) {
    if (stopping) {
      for (auto* p : waiting) p->set_value({false, "the server is stopping", 0, 0, 0});
      return;
    }
    if (builder.joinable()) {  // the files may have changed after the build read them: build again after it
      reload_again = true;
      answered_by_next.insert(answered_by_next.end(), waiting.begin(), waiting.end());
      return;
    }
    build_done = false;
    answered_by_build = std::move(waiting);
    build_started = std::chrono::steady_clock::now();
    sd_notify(0, "RELOADING=1\nSTATUS=reloading");
    builder = std::thread([this] {
      setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 19);
      try {
        next_config = load_config(config.path);
        next_world = build_world(next_config, &prober, &metrics);
      } catch (...) {
        build_failure = std::current_exception();
      }
      build_done = true;
      uv_async_send(&built);
    });
  }

  // On the main thread, once the builder is done: publish, or keep the old
  // world and say why.
  void finish_reload() {
    if (!builder.joinable()) return;
    builder.join();
    ReloadOutcome out;
    try {
      if (build_failure) std::rethrow_exception(std::exchange(build_failure, nullptr));
      warn_restart_only_changes(next_config);
      spdlog::set_level(spdlog::level::from_str(next_config.log_level));
      out.records = next_world->zones.record_count();
      out.zones = next_world->zones.zones().size();
      publication.publish(std::move(next_world));
      retired_worlds = 1;  // trimmed by the collect timer once freed
      out.ok = true;
    } catch (const std::exception& e) {
      out.error = e.what();
    }
    next_world.reset();
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - build_started).count();
    ReloadStats& rs = metrics.reloads;
    {
      std::lock_guard lock(rs.mutex);
      rs.last_error = out.error;
      bump(out.ok ? rs.succeeded : rs.failed);
      rs.last_ok = out.ok;
      rs.last_duration = out.seconds;
      rs.last_time = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    }
    if (out.ok) {
      spdlog::info("reloaded {} zones, {} records in {:.1f} ms", out.zones, out.records, out.seconds * 1e3);
      sd_notify(0, fmt::format("READY=1\nSTATUS=serving {} zones, {} records", out.zones, out.records).c_str());
    } else {
      spdlog::error("reload failed, still serving the previous configuration: {}", out.error);
      sd_notify(0, fmt::format("READY=1\nSTATUS=serving; the last reload failed: {}", out.error).c_str());
    }
    for (auto* p : std::exchange(answered_by_build, {})) p->set_value(out);
    if (std::exchange(reload_again, false)) reload(std::exchange(answered_by_next, {}));
  }

  // Any thread: queues a reload for the main thread and waits for it.
  ReloadOutcome request_reload() {
    std::promise<ReloadOutcome> done;
    auto future = done.get_future();
    {
      std::lock_guard lock(reload_mutex);
      if (stopping) return {false, "the server is stopping", 0, 0, 0};
      reload_requests.push_back(&done);
    }
    uv_async_send(&reload_async);
    return future.get();
  }

  void run_reload_requests() {
    std::deque<std::promise<ReloadOutcome>*> todo;
    {
      std::lock_guard lock(reload_mutex);
      todo.swap(reload_requests);
    }
    // One reload answers every request queued before it started.
    if (!todo.empty()) reload({todo.begin(), todo.end()});
  }

  void stop_main_loop() {
    {
      std::lock_guard lock(reload_mutex);
      stopping = true;
      for (auto* p : reload_requests) p->set_value({false, "the server is stopping", 0, 0, 0});
      reload_requests.clear();
    }
    for (auto* list : {&answered_by_build, &answered_by_next})
      for (auto* p : std::exchange(*list, {})) p->set_value({false, "the server is stopping", 0, 0, 0});
    for (auto* h : {reinterpret_cast<uv_handle_t*>(&sighup), reinterpret_cast<uv_handle_t*>(&sigterm),
                    reinterpret_cast<uv_handle_t*>(&sigint), reinterpret_cast<uv_handle_t*>(&reload_async),
                    reinterpret_cast<uv_handle_t*>(&built), reinterpret_cast<uv_handle_t*>(&collect_timer)})
      uv_close(h, nullptr);
  }
};

Runtime::Runtime(Config config, std::shared_ptr<const World> world, health::Prober& prober, Metrics& metrics)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(world), prober, metrics)) {}

Runtime::~Runtime() = default;

namespace {

// Started as root to bind port 53: nothing after binding needs root.
void drop_privileges(const std::string& user) {
  if (geteuid() != 0) return;
  if (user.empty()) {
    spdlog::warn("running as root: set server.user to drop privileges once the sockets are bound");
    return;
  }
  errno = 0;
  const passwd* pw = getpwnam(user.c_str());
  if (pw == nullptr) throw std::runtime_error("server.user: no user '" + user + "'");
  const uid_t uid = pw->pw_uid;
  const gid_t gid = pw->pw_gid;
  if (initgroups(user.c_str(), gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
    throw std::runtime_error("cannot switch to user '" + user + "': " + errno_text(errno));
  if (setuid(0) == 0) throw std::runtime_error("switched to user '" + user + "' but could become root again");
  spdlog::info("running as user {} (uid {}, gid {})", user, uid, gid);
}

}  // namespace

// SO_REUSEPORT would let a second process (of the same user) join our
// sockets' group and take half the traffic silently. An unshared bind first
// fails with EADDRINUSE if anyone holds the address already.
// Asks for BYTES of receive buffer: SO_RCVBUFFORCE while we still hold
// CAP_NET_ADMIN (root, before dropping privileges), else SO_RCVBUF, which
// net.core.rmem_max caps. Warns (once, for the first worker) when less was
// granted. The kernel reports twice the payload it grants (bookkeeping).
void set_receive_buffer(int fd, const ListenAddress& at, std::uint32_t bytes, bool report) {
  const int want = static_cast<int>(bytes);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
  int got = 0;
  socklen_t size = sizeof got;
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &size);
  if (report && got / 2 < want)
    spdlog::warn("{}: udp_receive_buffer: {} bytes granted of {} (raise net.core.rmem_max, or start as root)",
                 at.text, got / 2, want);
}

void check_address_free(const ListenAddress& at, int type) { ::close(open_socket(at, type, false)); }

void Runtime::bind() {
  Impl& m = *impl_;
  for (const auto& at : m.config.listen) {
    if (at.udp) check_address_free(at, SOCK_DGRAM);
    if (at.tcp) check_address_free(at, SOCK_STREAM);
  }
  for (unsigned i = 0; i < m.config.workers; ++i) {
    auto w = std::make_unique<Worker>(static_cast<int>(i), m.shared);
    uv_loop_init(&w->loop);
    uv_async_init(&w->loop, &w->stop, on_stop);
    w->stop.data = w.get();
    uv_timer_init(&w->loop, &w->refresh);
    w->refresh.data = w.get();
    uv_timer_start(
        &w->refresh,
        [](uv_timer_t* t) {
          auto* worker = static_cast<Worker*>(t->data);
          worker->pin.refresh();
          worker->health.refresh();
        },
        1000, 1000);
    for (const auto& at : m.config.listen) {
      if (at.udp) {
        auto s = std::make_unique<UdpSocket>();
        s->fd = open_socket(at, SOCK_DGRAM, true);
        if (m.config.udp_receive_buffer > 0) set_receive_buffer(s->fd, at, m.config.udp_receive_buffer, i == 0);
        s->pktinfo = is_wildcard(at);
        s->worker = w.get();
        uv_poll_init(&w->loop, &s->poll, s->fd);
        s->poll.data = s.get();
        w->udp.push_back(std::move(s));
      }
      if (at.tcp) {
        auto l = std::make_unique<TcpListener>();
        l->fd = open_socket(at, SOCK_STREAM, true);
        if (::listen(l->fd, kListenBacklog) != 0) {
          const int err = errno;
          ::close(l->fd);
          throw std::runtime_error(at.text + " (tcp): listen: " + errno_text(err));
        }
        l->worker = w.get();
        uv_poll_init(&w->loop, &l->poll, l->fd);
        uv_timer_init(&w->loop, &l->pause);
        l->poll.data = l->pause.data = l.get();
        w->tcp.push_back(std::move(l));
      }
    }
    m.workers.push_back(std::move(w));
  }
  if (m.admin) m.admin->bind();
  drop_privileges(m.config.user);
}

int Runtime::run() {
  Impl& m = *impl_;
  std::signal(SIGPIPE, SIG_IGN);
  uv_loop_init(&m.main_loop);
  m.main_loop.data = &m;
  uv_signal_init(&m.main_loop, &m.sighup);
  uv_signal_init(&m.main_loop, &m.sigterm);
  uv_signal_init(&m.main_loop, &m.sigint);
  m.sighup.data = m.sigterm.data = m.sigint.data = &m;
  uv_signal_start(&m.sighup, [](uv_signal_t* s, int) { static_cast<Impl*>(s->data)->reload(); }, SIGHUP);
  uv_async_init(&m.main_loop, &m.built, [](uv_async_t* a) { static_cast<Impl*>(a->data)->finish_reload(); });
  m.built.data = &m;
  uv_async_init(&m.main_loop, &m.reload_async,
                [](uv_async_t* a) { static_cast<Impl*>(a->data)->run_reload_requests(); });
  m.reload_async.data = &m;
  // A worker lets go of the previous world at its next receive batch; the
  // world is then freed here, on the main thread, within a second.
  uv_timer_init(&m.main_loop, &m.collect_timer);
  m.collect_timer.data = &m;
  uv_timer_start(
      &m.collect_timer,
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
  uv_signal_start(&m.sigterm, stop, SIGTERM);
  uv_signal_start(&m.sigint, stop, SIGINT);

  for (auto& w : m.workers) {
    for (auto& s : w->udp) uv_poll_start(&s->poll, UV_READABLE, on_udp_readable);
    for (auto& l : w->tcp) uv_poll_start(&l->poll, UV_READABLE, on_tcp_acceptable);
    Worker* raw = w.get();
    w->thread = std::thread([raw] {
      uv_run(&raw->loop, UV_RUN_DEFAULT);
    });
  }
  std::string addresses;
  for (const auto& at : m.config.listen)
    addresses += (addresses.empty() ? "" : ", ") + at.text + (at.udp && at.tcp ? "" : at.udp ? " (udp)" : " (tcp)");
  {
    // Scoped: a world held here for the life of the loop would never be freed after a reload.
    const auto world = m.publication.load();
    const std::size_t records = world->zones.record_count();
    spdlog::info("serving {} zones, {} records on {} with {} workers", world->zones.zones().size(), records,
                 addresses, m.workers.size());
    if (m.admin) m.admin->start();
    // The first probe round finished before the world was built: tell systemd
    // (Type=notify) we are ready only now.
    sd_notify(0, fmt::format("READY=1\nSTATUS=serving {} zones, {} records", world->zones.zones().size(), records)
                     .c_str());
  }

  uv_run(&m.main_loop, UV_RUN_DEFAULT);

  if (m.admin) m.admin->stop();
  std::uint64_t udp = 0, tcp = 0;
  for (auto& w : m.workers) uv_async_send(&w->stop);
  for (auto& w : m.workers) {
    w->thread.join();
    uv_loop_close(&w->loop);
    for (auto& s : w->udp) ::close(s->fd);
    for (auto& l : w->tcp) ::close(l->fd);
    udp += w->stats.total(Transport::udp);
    tcp += w->stats.total(Transport::tcp);
  }
  if (m.builder.joinable() && !m.build_done) {
    // SIGTERM while a reload is being built: the world it builds will never
    // serve, and the build cannot be interrupted; do not wait for it.
    spdlog::info("stopped after {} UDP and {} TCP queries (a reload being built was abandoned)", udp, tcp);
    spdlog::default_logger()->flush();
    std::_Exit(m.exit_code);
  }
  if (m.builder.joinable()) m.builder.join();
  uv_loop_close(&m.main_loop);
  spdlog::info("stopped after {} UDP and {} TCP queries", udp, tcp);
  return m.exit_code;
}

}  // namespace steerdns::server
