#include "server/tcp.hpp"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <memory>

#include "server/answer.hpp"
#include "server/socket.hpp"
#include "server/text.hpp"
#include "server/worker.hpp"

namespace steerdns::server {

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

bool ClientConnections::acquire(const ClientKey& key, unsigned limit) {
  std::lock_guard lock(mutex_);
  unsigned& n = open_[key];
  if (n >= limit) {
    if (n == 0) open_.erase(key);
    return false;
  }
  ++n;
  return true;
}

void ClientConnections::release(const ClientKey& key) {
  std::lock_guard lock(mutex_);
  auto it = open_.find(key);
  if (it != open_.end() && --it->second == 0) open_.erase(it);
}

namespace {

constexpr std::uint64_t kAcceptPauseMs = 100;  // after accept() fails for want of a resource

struct TcpWrite {
  uv_write_t request;
  TcpConnection* connection;
  std::unique_ptr<std::uint8_t[]> data;
};

void tcp_process(TcpConnection* c);

void on_connection_closed(uv_handle_t* handle) {
  auto* c = static_cast<TcpConnection*>(handle->data);
  if (--c->open_handles > 0) return;
  if (c->counted) c->worker->shared.metrics.tcp_connections.fetch_sub(1, std::memory_order_relaxed);
  if (c->client_counted) c->worker->shared.clients.release(c->client);
  c->worker->connections.erase(c);
  delete c;
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
    const Worker::Received received = w.received();
    const AnswerInfo info = answer(world, w.health.refresh(), query, {w.tcp_answer.get(), kMaxTcpMessage},
                                   Transport::tcp, &c->peer, static_cast<std::uint32_t>(std::time(nullptr)));
    w.record(Transport::tcp, c->peer, c->local_known ? &c->local : nullptr, query,
             {w.tcp_answer.get(), info.size}, info, world, received);
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
    if (uv_write(&write->request, reinterpret_cast<uv_stream_t*>(&c->tcp), &out, 1, on_tcp_written) != 0) {
      --c->in_flight;
      delete write;
      tcp_close(c);
      return;
    }
    // Written at once unless earlier answers of the connection wait in libuv's queue.
    w.stats.answer_duration[1].observe(monotonic_ns() - c->received_at);
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
  c->received_at = monotonic_ns();
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
  if (w.shared.dnstap != nullptr) {
    len = sizeof c->local;
    c->local_known = uv_tcp_getsockname(&c->tcp, reinterpret_cast<sockaddr*>(&c->local), &len) == 0;
  }
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

}  // namespace

void tcp_close(TcpConnection* c) {
  if (c->closing) return;
  c->closing = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_connection_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->timer), on_connection_closed);
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

}  // namespace steerdns::server
