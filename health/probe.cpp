#include <curl/curl.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "health/prober_impl.hpp"

namespace steerdns::health {

namespace {

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

}  // namespace

int Prober::Impl::on_socket(CURL*, curl_socket_t fd, int action, void* userp, void* socketp) {
  auto* m = static_cast<Impl*>(userp);
  auto* s = static_cast<Socket*>(socketp);
  if (action == CURL_POLL_REMOVE) {
    if (s != nullptr) {
      uv_poll_stop(&s->poll);
      curl_multi_assign(m->multi, fd, nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&s->poll),
               [](uv_handle_t* h) { delete static_cast<Socket*>(h->data); });
    }
    return 0;
  }
  if (s == nullptr) {
    s = new Socket{{}, fd, m};
    if (const int err = uv_poll_init_socket(&m->loop, &s->poll, fd); err != 0) {
      spdlog::error("health: cannot watch a probe's socket: {}", uv_strerror(err));
      delete s;
      return -1;  // libcurl fails that transfer
    }
    s->poll.data = s;
    curl_multi_assign(m->multi, fd, s);
  }
  int events = 0;
  if (action == CURL_POLL_IN || action == CURL_POLL_INOUT) events |= UV_READABLE;
  if (action == CURL_POLL_OUT || action == CURL_POLL_INOUT) events |= UV_WRITABLE;
  uv_poll_start(&s->poll, events, [](uv_poll_t* h, int status, int ev) {
    auto* sock = static_cast<Socket*>(h->data);
    int flags = 0;
    if (status < 0) flags = CURL_CSELECT_ERR;
    if (ev & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (ev & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    Impl* impl = sock->impl;
    int running = 0;
    curl_multi_socket_action(impl->multi, sock->fd, flags, &running);
    impl->collect();
  });
  return 0;
}

int Prober::Impl::on_curl_timer(CURLM*, long timeout_ms, void* userp) {
  auto* m = static_cast<Impl*>(userp);
  if (timeout_ms < 0) {
    uv_timer_stop(&m->curl_timer);
  } else {
    uv_timer_start(
        &m->curl_timer,
        [](uv_timer_t* t) {
          auto* impl = static_cast<Impl*>(t->data);
          int running = 0;
          curl_multi_socket_action(impl->multi, CURL_SOCKET_TIMEOUT, 0, &running);
          impl->collect();
        },
        static_cast<std::uint64_t>(timeout_ms), 0);
  }
  return 0;
}

void Prober::Impl::collect() {
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    Probe* p = nullptr;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &p);
    const Result r = outcome(*p, msg->data.result);
    finish(*p, r);
  }
  start_waiting();
  publish_if_dirty();
}

std::size_t Prober::Impl::on_body(char* data, std::size_t size, std::size_t n, void* userp) {
  auto* p = static_cast<Probe*>(userp);
  const std::size_t len = size * n;
  if (!p->check.reads_body()) {  // the status is all we need
    p->stopped_reading = true;
    return 0;
  }
  if (p->body.size() + len > kMaxBody) {
    p->stopped_reading = p->oversize = true;
    return 0;
  }
  p->body.append(data, len);
  return len;
}

std::size_t Prober::Impl::on_header(char*, std::size_t size, std::size_t n, void* userp) {
  auto* p = static_cast<Probe*>(userp);
  p->header_bytes += size * n;
  if (p->header_bytes > kMaxBody) {
    p->oversize = true;
    return 0;
  }
  return size * n;
}

void Prober::Impl::start(Probe& p) {
  if (connecting >= kMaxConnecting) {
    p.queued = true;
    waiting.push_back(&p);
    return;
  }
  begin(p);
}

void Prober::Impl::start_waiting() {
  while (connecting < kMaxConnecting && !waiting.empty()) {
    Probe* p = waiting.front();
    waiting.pop_front();
    p->queued = false;
    begin(*p);
  }
}

void Prober::Impl::connected(Probe& p) {
  if (!p.connecting) return;
  p.connecting = false;
  --connecting;
}

int Prober::Impl::on_connected(void* userp, char*, char*, int, int) {
  auto* p = static_cast<Probe*>(userp);
  p->impl->connected(*p);
  return CURL_PREREQFUNC_OK;
}

void Prober::Impl::begin(Probe& p) {
  p.body.clear();
  p.header_bytes = 0;
  p.stopped_reading = p.oversize = false;
  p.error[0] = 0;
  p.easy = curl_easy_init();
  CURL* e = p.easy;
  const Check& c = p.check;
  curl_easy_setopt(e, CURLOPT_PRIVATE, &p);
  curl_easy_setopt(e, CURLOPT_URL, p.url.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, p.error.data());
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(c.timeout.count()));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(c.timeout.count()));
  // Every probe opens its own connection: a kept-alive one would hide a
  // backend that stopped accepting.
  curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
  curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
  // Straight to the VIP: never a proxy from the environment, never a redirect.
  curl_easy_setopt(e, CURLOPT_PROXY, "");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  if (c.type == CheckType::tcp) {
    curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
  } else {
    curl_easy_setopt(e, CURLOPT_USERAGENT, "steerdns-health");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &p);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &p);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_connected);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, &p);
    if (p.headers) curl_easy_setopt(e, CURLOPT_HTTPHEADER, p.headers);
    if (p.connect_to) curl_easy_setopt(e, CURLOPT_CONNECT_TO, p.connect_to);
    if (c.type == CheckType::https) {
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, c.insecure ? 0L : 1L);
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, c.insecure ? 0L : 2L);
      if (!c.ca.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, c.ca.c_str());
      // The bundle file only (the system's, or the check's `ca`), never
      // Debian's default CA folder as well: with a folder, libcurl (7.88,
      // OpenSSL) builds the store anew for every probe, 35-45 ms of CPU
      // each; from a file alone it caches the store (CURLOPT_CA_CACHE_TIMEOUT,
      // 24 h) across the probes of our multi handle.
      curl_easy_setopt(e, CURLOPT_CAPATH, nullptr);
    }
  }
  p.running = true;
  p.connecting = true;
  ++connecting;
  p.started = Clock::now();
  curl_multi_add_handle(multi, e);
}

Result Prober::Impl::outcome(Probe& p, CURLcode code) {
  if (p.check.type == CheckType::tcp) {
    if (code == CURLE_OK) return {true, Reason::none, {}};
  } else if (code == CURLE_OK || (code == CURLE_WRITE_ERROR && p.stopped_reading)) {
    long status = 0;
    curl_easy_getinfo(p.easy, CURLINFO_RESPONSE_CODE, &status);
    return judge_http(p.check, status, p.body, !p.oversize);
  }
  const std::string detail = p.error[0] ? p.error.data() : curl_easy_strerror(code);
  switch (code) {
    case CURLE_COULDNT_CONNECT: {
      long os_errno = 0;
      curl_easy_getinfo(p.easy, CURLINFO_OS_ERRNO, &os_errno);
      if (os_errno == ECONNREFUSED) return {false, Reason::refused, "connection refused"};
      return {false, Reason::connect, detail};
    }
    case CURLE_OPERATION_TIMEDOUT:
      return {false, Reason::timeout, "no answer within " + std::to_string(p.check.timeout.count()) + " ms"};
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR: return {false, Reason::tls_verification, detail};
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER: return {false, Reason::tls_handshake, detail};
    case CURLE_WRITE_ERROR:
      if (p.oversize) return {false, Reason::protocol, "headers larger than 16 KiB"};
      return {false, Reason::protocol, detail};
    default: return {false, Reason::protocol, detail};
  }
}

void Prober::Impl::finish(Probe& p, const Result& r) {
  curl_multi_remove_handle(multi, p.easy);
  curl_easy_cleanup(p.easy);
  p.easy = nullptr;
  p.running = false;
  connected(p);
  const auto now = Clock::now();
  record_stats(p, r, now);
  const Registry::Entry& e = registry.entries()[p.slot];
  const bool was_known = e.tracker.known();
  const bool was_up = e.tracker.up();
  if (registry.record(p.slot, r, now)) {
    dirty = true;
    if (was_known) ++transitions[{e.vip, e.check->type}][e.tracker.up() ? 0 : 1];
    log_change(e, was_known, was_up, r);
  }
  if (p.first_pending) {
    p.first_pending = false;
    if (first_pending > 0 && --first_pending == 0) {
      publish_if_dirty();
      first_round.set_value();
    }
  }
  // Next start: one interval (± jitter) after this one started.
  const auto elapsed = std::chrono::duration_cast<Duration>(now - p.started);
  const long jitter = p.check.jitter.count();
  std::uniform_int_distribution<long> spread(-jitter, jitter);
  const long wait = std::max(0L, static_cast<long>(p.check.interval.count()) + spread(random) -
                                     static_cast<long>(elapsed.count()));
  uv_timer_start(
      &p.timer,
      [](uv_timer_t* t) {
        auto* probe = static_cast<Probe*>(t->data);
        probe->impl->start(*probe);
      },
      static_cast<std::uint64_t>(wait), 0);
}

void Prober::Impl::record_stats(const Probe& p, const Result& r, TimePoint now) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now - p.started).count();
  const double seconds = static_cast<double>(us) / 1e6;
  ProbeStats::Histogram& h = stats.duration[static_cast<std::size_t>(p.check.type)];
  std::size_t bucket = 0;
  while (bucket < ProbeStats::kBuckets.size() && seconds > ProbeStats::kBuckets[bucket]) ++bucket;
  // One writer: a load and a store, no locked instruction.
  auto bump = [](std::atomic<std::uint64_t>& c, std::uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  };
  bump(h.counts[bucket], 1);
  bump(h.sum_us, static_cast<std::uint64_t>(us));
  bump(h.count, 1);
  if (!r.ok) bump(stats.failures[static_cast<std::size_t>(r.reason)], 1);
}

void Prober::Impl::log_change(const Registry::Entry& e, bool was_known, bool was_up, const Result& r) {
  const std::string what = e.vip + " [" + join(e.labels) + "] " + e.check->describe(e.vip);
  const bool up = e.tracker.up();
  if (!was_known) {
    if (up) spdlog::info("health: {} up", what);
    else spdlog::warn("health: {} down: {} ({})", what, reason_name(r.reason), r.detail);
    return;
  }
  if (up) spdlog::info("health: {} {} -> up after {} successes", what, was_up ? "up" : "down", e.check->rise);
  else
    spdlog::warn("health: {} up -> down after {} failures: {} ({})", what, e.check->fall,
                 reason_name(r.reason), r.detail);
}

void Prober::Impl::close(Probe& p) {
  uv_timer_stop(&p.timer);
  uv_close(reinterpret_cast<uv_handle_t*>(&p.timer),
           [](uv_handle_t* h) { delete static_cast<Probe*>(h->data); });
}

Prober::Impl::Probe* Prober::Impl::make_probe(std::uint32_t slot) {
  const Registry::Entry& e = registry.entries()[slot];
  auto* p = new Probe;
  p->impl = this;
  p->slot = slot;
  p->vip = e.vip;
  p->check = *e.check;
  uv_timer_init(&loop, &p->timer);
  p->timer.data = p;
  const Check& c = p->check;
  const bool v6 = p->vip.find(':') != std::string::npos;
  const std::string address = v6 ? "[" + p->vip + "]" : p->vip;
  const std::string port = std::to_string(c.port);
  if (c.type == CheckType::tcp) {
    p->url = "http://" + address + ":" + port + "/";
  } else {
    const std::string host = c.service.empty() ? address : c.service;
    p->url = std::string(c.type == CheckType::https ? "https" : "http") + "://" + host + ":" + port + c.path;
    // The service's name in the URL (Host, SNI, certificate), the VIP on the wire.
    if (!c.service.empty())
      p->connect_to = curl_slist_append(nullptr,
                                        (c.service + ":" + port + ":" + address + ":" + port).c_str());
    for (const auto& [name, value] : c.headers)
      p->headers = curl_slist_append(p->headers, (name + ": " + value).c_str());
  }
  return p;
}

void Prober::Impl::retire(std::uint32_t slot) {
  if (slot >= probes.size() || probes[slot] == nullptr) return;
  Probe* p = probes[slot];
  probes[slot] = nullptr;
  curl_slist_free_all(p->headers);
  curl_slist_free_all(p->connect_to);
  p->headers = p->connect_to = nullptr;
  if (p->first_pending && first_pending > 0 && --first_pending == 0) first_round.set_value();
  if (p->running) {
    curl_multi_remove_handle(multi, p->easy);
    curl_easy_cleanup(p->easy);
    p->easy = nullptr;
    connected(*p);
  }
  if (p->queued) waiting.erase(std::find(waiting.begin(), waiting.end(), p));
  close(*p);
}

}  // namespace steerdns::health
