#include "server/worker.hpp"

#include <unistd.h>

#include "server/socket.hpp"
#include "server/source.hpp"
#include "server/text.hpp"

namespace steerdns::server {

namespace {

void on_stop(uv_async_t* async) {
  auto* w = static_cast<Worker*>(async->data);
  for (auto& s : w->udp) uv_close(reinterpret_cast<uv_handle_t*>(&s->poll), nullptr);
  for (auto& l : w->tcp) {
    uv_close(reinterpret_cast<uv_handle_t*>(&l->poll), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&l->pause), nullptr);
  }
  const std::vector<TcpConnection*> open(w->connections.begin(), w->connections.end());
  for (TcpConnection* c : open) tcp_close(c);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->stop_async), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->refresh), nullptr);
}

}  // namespace

Worker::Worker(int index, Shared& shared)
    : index(index),
      shared(shared),
      pin(shared.world),
      health(shared.health),
      stats(*shared.metrics.workers[index]) {
  uv_loop_init(&loop);
  uv_async_init(&loop, &stop_async, on_stop);
  stop_async.data = this;
  // Moves the pins to the current world and health table once a second
  // even without traffic, so an idle worker does not keep a retired world
  // (and its memory) alive.
  uv_timer_init(&loop, &refresh);
  refresh.data = this;
  uv_timer_start(
      &refresh,
      [](uv_timer_t* t) {
        auto* worker = static_cast<Worker*>(t->data);
        worker->pin.refresh();
        worker->health.refresh();
      },
      1000, 1000);
  const Config& config = shared.config;
  for (const auto& at : config.listen) {
    if (at.udp) {
      auto s = std::make_unique<UdpSocket>();
      s->fd = open_socket(at, SOCK_DGRAM, true);
      if (config.udp_receive_buffer > 0) set_receive_buffer(s->fd, at, config.udp_receive_buffer, index == 0);
      s->pktinfo = is_wildcard(at);
      s->worker = this;
      s->local = &at.address;
      uv_poll_init(&loop, &s->poll, s->fd);
      s->poll.data = s.get();
      udp.push_back(std::move(s));
    }
    if (at.tcp) {
      auto l = std::make_unique<TcpListener>();
      l->fd = open_listener(at);
      l->worker = this;
      uv_poll_init(&loop, &l->poll, l->fd);
      uv_timer_init(&loop, &l->pause);
      l->poll.data = l->pause.data = l.get();
      tcp.push_back(std::move(l));
    }
  }
}

Worker::~Worker() {
  // A worker that never ran (Runtime::bind failed after building it): close
  // its handles on its loop and free the loop, as join() does for one that ran.
  if (!loop_closed) {
    uv_walk(
        &loop,
        [](uv_handle_t* handle, void*) {
          if (!uv_is_closing(handle)) uv_close(handle, nullptr);
        },
        nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
  for (auto& s : udp) ::close(s->fd);
  for (auto& l : tcp) ::close(l->fd);
}

void Worker::start() {
  for (auto& s : udp) uv_poll_start(&s->poll, UV_READABLE, on_udp_readable);
  for (auto& l : tcp) uv_poll_start(&l->poll, UV_READABLE, on_tcp_acceptable);
  thread = std::thread([this] { uv_run(&loop, UV_RUN_DEFAULT); });
}

void Worker::stop() { uv_async_send(&stop_async); }

void Worker::join() {
  if (!thread.joinable()) return;
  thread.join();
  uv_loop_close(&loop);
  loop_closed = true;
}

void Worker::log_limited(const sockaddr_storage& peer, const RateLimiter::Verdict& v,
                         std::span<const std::uint8_t> query) {
  const std::uint64_t now = uv_now(&loop);
  if (last_limit_log != 0 && now - last_limit_log < 1000) {
    ++suppressed_limits;
    return;
  }
  const RateLimiter& limiter = *shared.limiter;
  spdlog::warn("rate limit{}: {} responses to {} over {}/s ({}){}",
               limiter.config().log_only ? " (log only)" : "", response_kind_name(v.kind),
               limiter.network_text(peer), limiter.config().rate(v.kind), question_text(query),
               suppressed_limits > 0
                   ? fmt::format("; {} more networks limited in the last second", suppressed_limits)
                   : std::string());
  suppressed_limits = 0;
  last_limit_log = now;
}

namespace {

std::string_view cookie_text(CookieState state) {
  switch (state) {
    case CookieState::none: return "none";
    case CookieState::client_only: return "client";
    case CookieState::valid: return "valid";
    case CookieState::invalid: return "invalid";
  }
  return "none";
}

// "192.0.2.0/24 scope=20", or "-" without ECS.
std::string ecs_text(const AnswerInfo& info) {
  if (!info.ecs.present) return "-";
  geoip::Network n;
  n.v6 = info.ecs.family == 2;
  n.prefix = info.ecs.source;
  n.address = subnet_address(info.ecs);
  return fmt::format("{} scope={}", n.text(), info.ecs_scope);
}

}  // namespace

Worker::Received Worker::received() const noexcept {
  Received r;
  if (shared.config.query_log) r.steady = std::chrono::steady_clock::now();
  if (shared.dnstap != nullptr) clock_gettime(CLOCK_REALTIME, &r.real);
  return r;
}

void Worker::record(Transport transport, const sockaddr_storage& peer, const sockaddr_storage* local,
                    std::span<const std::uint8_t> query, std::span<const std::uint8_t> response,
                    const AnswerInfo& info, const World& world, const Received& received) {
  shared.metrics.count(index, world, transport, info);
  if (shared.config.query_log)
    log_query(transport == Transport::tcp ? "tcp" : "udp", peer, query, info, world,
              std::chrono::steady_clock::now() - received.steady);
  if (shared.dnstap != nullptr) {
    timespec answered{};
    clock_gettime(CLOCK_REALTIME, &answered);
    shared.dnstap->log(index, transport, peer, local, query, response, info.zone, world.identity,
                       received.real, answered);
  }
}

void Worker::log_query(const char* transport, const sockaddr_storage& peer,
                       std::span<const std::uint8_t> query, const AnswerInfo& info, const World& world,
                       std::chrono::steady_clock::duration spent) {
  std::string_view region = "-";
  const auto& geo_names = world.zones.geo_names();
  if (info.geo < geo_names.size() && info.region < geo_names[info.geo]->regions.size())
    region = geo_names[info.geo]->regions[info.region].name;
  std::string flags;
  for (const auto& [on, name] : {std::pair{info.truncated, "tc"}, std::pair{info.degraded, "degraded"},
                                 std::pair{info.all_down, "all_down"}})
    if (on) flags += flags.empty() ? name : fmt::format(",{}", name);
  spdlog::info(
      "query {} client={} ecs={} name={} type={} rcode={} region={} size={} flags={} cookie={} us={}",
      transport, address_text(peer), ecs_text(info), question_text(query), qtype_text(info.qtype),
      rcode_text(info.rcode), region, info.size, flags.empty() ? "-" : flags, cookie_text(info.cookie),
      std::chrono::duration_cast<std::chrono::microseconds>(spent).count());
}

}  // namespace steerdns::server
