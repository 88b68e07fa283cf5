#include "health/prober.hpp"

#include <curl/curl.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <pthread.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <random>
#include <thread>

namespace steerdns::health {

namespace {

std::once_flag curl_once;

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

}  // namespace

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

  // Work for the prober thread, posted by the main thread.
  std::mutex mutex;
  std::deque<std::function<void()>> commands;

  // The first round of the apply() in progress.
  std::size_t first_pending = 0;
  std::promise<void> first_round;

  explicit Impl(std::string path) : state_file(std::move(path)) {}

  // --- threads -------------------------------------------------------------

  void post(std::function<void()> f) {
    {
      std::lock_guard lock(mutex);
      commands.push_back(std::move(f));
    }
    uv_async_send(&wake);
  }

  void run_commands() {
    std::deque<std::function<void()>> todo;
    {
      std::lock_guard lock(mutex);
      todo.swap(commands);
    }
    for (auto& f : todo) f();
    publish_if_dirty();
  }

  void publish_if_dirty() {
    if (!dirty) return;
    dirty = false;
    publication.publish(std::make_shared<const Table>(registry.table()));
  }

  // --- libcurl multi on libuv ------------------------------------------------

  struct Socket {
    uv_poll_t poll;
    curl_socket_t fd;
    Impl* impl;
  };

  static int on_socket(CURL*, curl_socket_t fd, int action, void* userp, void* socketp) {
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

  static int on_curl_timer(CURLM*, long timeout_ms, void* userp) {
    auto* m = static_cast<Impl*>(userp);
    if (timeout_ms < 0) {
      uv_timer_stop(&m->curl_timer);
    } else {
      uv_timer_start(&m->curl_timer, [](uv_timer_t* t) {
        auto* impl = static_cast<Impl*>(t->data);
        int running = 0;
        curl_multi_socket_action(impl->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        impl->collect();
      }, static_cast<std::uint64_t>(timeout_ms), 0);
    }
    return 0;
  }

  // Finished transfers: judge them, then publish once for the lot.
  void collect() {
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

  // --- one probe --------------------------------------------------------------

  static std::size_t on_body(char* data, std::size_t size, std::size_t n, void* userp) {
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

  static std::size_t on_header(char*, std::size_t size, std::size_t n, void* userp) {
    auto* p = static_cast<Probe*>(userp);
    p->header_bytes += size * n;
    if (p->header_bytes > kMaxBody) {
      p->oversize = true;
      return 0;
    }
    return size * n;
  }

  void start(Probe& p) {
    if (connecting >= kMaxConnecting) {
      p.queued = true;
      waiting.push_back(&p);
      return;
    }
    begin(p);
  }

  void start_waiting() {
    while (connecting < kMaxConnecting && !waiting.empty()) {
      Probe* p = waiting.front();
      waiting.pop_front();
      p->queued = false;
      begin(*p);
    }
  }

  void connected(Probe& p) {
    if (!p.connecting) return;
    p.connecting = false;
    --connecting;
  }

  // Runs inside libcurl (no multi calls here): the connection is up, TLS
  // included; only the request and the answer remain.
  static int on_connected(void* userp, char*, char*, int, int) {
    auto* p = static_cast<Probe*>(userp);
    p->impl->connected(*p);
    return CURL_PREREQFUNC_OK;
  }

  void begin(Probe& p) {
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

  Result outcome(Probe& p, CURLcode code) {
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
      case CURLE_SSL_ISSUER_ERROR:
        return {false, Reason::tls_verification, detail};
      case CURLE_SSL_CONNECT_ERROR:
      case CURLE_SSL_CERTPROBLEM:
      case CURLE_SSL_CIPHER:
        return {false, Reason::tls, detail};
      case CURLE_WRITE_ERROR:
        if (p.oversize) return {false, Reason::protocol, "headers larger than 16 KiB"};
        return {false, Reason::protocol, detail};
      default:
        return {false, Reason::protocol, detail};
    }
  }

  void finish(Probe& p, const Result& r) {
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
    uv_timer_start(&p.timer, [](uv_timer_t* t) {
      auto* probe = static_cast<Probe*>(t->data);
      probe->impl->start(*probe);
    }, static_cast<std::uint64_t>(wait), 0);
  }

  void record_stats(const Probe& p, const Result& r, TimePoint now) {
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

  Status make_status() const {
    Status out;
    out.overrides = registry.overrides();
    const auto steady_now = Clock::now();
    const auto wall_now = std::chrono::system_clock::now();
    for (const Registry::Entry& e : registry.entries()) {
      VipStatus& v = out.vips.emplace_back();
      v.in_use = e.in_use;
      if (!e.in_use) continue;
      v.vip = e.vip;
      v.check = e.check;
      v.known = e.tracker.known();
      v.up = !e.check || !v.known || e.tracker.up();
      v.reason = e.tracker.reason();
      v.detail = e.tracker.detail();
      if (v.known)
        v.since = wall_now - std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                 steady_now - e.tracker.since());
      if (auto it = out.overrides.vips.find(e.vip); it != out.overrides.vips.end()) v.overridden = it->second;
    }
    return out;
  }

  // On the prober thread: the state file first, then the table.
  std::string change_override(Prober::Kind kind, const std::string& name, Override overridden) {
    if (state_file.empty()) return "no health.state_file is configured: an override would not survive a restart";
    Overrides next = registry.overrides();
    auto& map = kind == Prober::Kind::region ? next.regions : next.vips;
    if (overridden == Override::none) map.erase(name);
    else map[name] = overridden;
    if (next == registry.overrides()) return {};
    try {
      save_overrides(state_file, next);
    } catch (const std::exception& e) {
      return e.what();
    }
    spdlog::warn("health: {} {} {} by the admin API", kind == Prober::Kind::region ? "region" : "VIP", name,
                 overridden == Override::none ? "back to automatic" : "forced " + std::string(override_name(overridden)));
    registry.set_overrides(std::move(next));
    dirty = true;
    publish_if_dirty();
    return {};
  }

  void log_change(const Registry::Entry& e, bool was_known, bool was_up, const Result& r) {
    const std::string what = e.vip + " [" + join(e.labels) + "] " + e.check->describe(e.vip);
    const bool up = e.tracker.up();
    if (!was_known) {
      if (up) spdlog::info("health: {} up", what);
      else spdlog::warn("health: {} down: {} ({})", what, reason_name(r.reason), r.detail);
      return;
    }
    if (up) spdlog::info("health: {} {} -> up after {} successes", what, was_up ? "up" : "down", e.check->rise);
    else spdlog::warn("health: {} up -> down after {} failures: {} ({})", what, e.check->fall,
                      reason_name(r.reason), r.detail);
  }

  void close(Probe& p) {
    uv_timer_stop(&p.timer);
    uv_close(reinterpret_cast<uv_handle_t*>(&p.timer),
             [](uv_handle_t* h) { delete static_cast<Probe*>(h->data); });
  }

  Probe* make_probe(std::uint32_t slot) {
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
        p->connect_to = curl_slist_append(nullptr, (c.service + ":" + port + ":" + address + ":" + port).c_str());
      for (const auto& [name, value] : c.headers)
        p->headers = curl_slist_append(p->headers, (name + ": " + value).c_str());
    }
    return p;
  }

  void retire(std::uint32_t slot) {
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

  // On the prober thread.
  Slots apply(const Plan& plan) {
    const Registry::Applied applied = registry.apply(plan);
    for (std::uint32_t slot : applied.stopped) retire(slot);
    // A new round: probes of an earlier round that the main thread stopped
    // waiting for no longer count toward it.
    for (Probe* p : probes)
      if (p != nullptr) p->first_pending = false;
    first_pending = 0;
    first_round = std::promise<void>();
    std::vector<Probe*> started;
    for (std::uint32_t slot : applied.started) {
      if (!registry.entries()[slot].check) continue;  // never probed: always up
      if (probes.size() <= slot) probes.resize(slot + 1, nullptr);
      probes[slot] = make_probe(slot);
      started.push_back(probes[slot]);
    }
    first_pending = started.size();
    for (Probe* p : started) start(*p);
    if (!applied.stopped.empty() || !applied.started.empty()) dirty = true;
    for (const auto& name : registry.unknown_overrides())
      spdlog::warn("health: the state file forces {}, which no zone uses", name);
    // The table holds the new slots before apply() returns and the world that
    // uses them is published.
    publish_if_dirty();
    if (first_pending == 0) first_round.set_value();
    return applied.slots;
  }

  // --- the state file -------------------------------------------------------

  void read_overrides(bool at_start) {
    if (state_file.empty()) return;
    Overrides next;
    try {
      next = load_overrides(state_file);
    } catch (const std::exception& e) {
      if (at_start) throw;
      spdlog::error("health: state file not applied, keeping the previous overrides: {}", e.what());
      return;
    }
    const Overrides& prev = registry.overrides();
    if (next == prev) return;
    auto report = [](const char* kind, const std::map<std::string, Override>& before,
                     const std::map<std::string, Override>& after) {
      for (const auto& [name, overridden] : after) {
        auto it = before.find(name);
        if (it == before.end() || it->second != overridden)
          spdlog::warn("health: {} {} forced {} by the state file", kind, name, override_name(overridden));
      }
      for (const auto& [name, overridden] : before)
        if (!after.count(name)) spdlog::info("health: {} {} back to automatic", kind, name);
    };
    report("region", prev.regions, next.regions);
    report("VIP", prev.vips, next.vips);
    registry.set_overrides(std::move(next));
    dirty = true;
    publish_if_dirty();
  }

  void watch_state_file() {
    if (state_file.empty()) return;
    const auto slash = state_file.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : state_file.substr(0, slash);
    uv_fs_event_init(&loop, &watch);
    watch.data = this;
    const int err = uv_fs_event_start(&watch, [](uv_fs_event_t* h, const char* filename, int, int) {
      auto* m = static_cast<Impl*>(h->data);
      const std::string& path = m->state_file;
      const std::string base = path.substr(path.rfind('/') + 1);
      if (filename == nullptr || base == filename) m->read_overrides(false);
    }, dir.c_str(), 0);
    if (err != 0)
      throw common::LoadError(state_file, 0, std::string("cannot watch its folder: ") + uv_strerror(err));
    watching = true;
  }

  void shutdown() {
    for (std::uint32_t slot = 0; slot < probes.size(); ++slot) retire(slot);
    if (watching) uv_close(reinterpret_cast<uv_handle_t*>(&watch), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&curl_timer), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&wake), nullptr);
  }
};

Prober::Prober(std::string state_file) : impl_(std::make_unique<Impl>(std::move(state_file))) {
  std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  Impl& m = *impl_;
  uv_loop_init(&m.loop);
  m.multi = curl_multi_init();
  curl_multi_setopt(m.multi, CURLMOPT_SOCKETFUNCTION, Impl::on_socket);
  curl_multi_setopt(m.multi, CURLMOPT_SOCKETDATA, &m);
  curl_multi_setopt(m.multi, CURLMOPT_TIMERFUNCTION, Impl::on_curl_timer);
  curl_multi_setopt(m.multi, CURLMOPT_TIMERDATA, &m);
  uv_timer_init(&m.loop, &m.curl_timer);
  m.curl_timer.data = &m;
  uv_async_init(&m.loop, &m.wake, [](uv_async_t* a) { static_cast<Impl*>(a->data)->run_commands(); });
  m.wake.data = &m;
  try {
    m.read_overrides(true);
    m.watch_state_file();
  } catch (...) {
    m.shutdown();
    uv_run(&m.loop, UV_RUN_DEFAULT);
    uv_loop_close(&m.loop);
    curl_multi_cleanup(m.multi);
    throw;
  }
  m.publish_if_dirty();
  m.thread = std::thread([&m] {
    pthread_setname_np(pthread_self(), "prober");
    uv_run(&m.loop, UV_RUN_DEFAULT);
  });
}

Prober::~Prober() {
  Impl& m = *impl_;
  m.post([&m] { m.shutdown(); });
  m.thread.join();
  uv_loop_close(&m.loop);
  curl_multi_cleanup(m.multi);
}

Slots Prober::apply(const Plan& plan) {
  Impl& m = *impl_;
  std::promise<Slots> result;
  std::future<void> first_round;
  Duration longest{0};
  std::size_t checks = 0;
  for (const auto& t : plan.vips)
    if (t.check) {
      longest = std::max(longest, t.check->timeout);
      ++checks;
    }
  m.post([&] {
    Slots slots = m.apply(plan);
    first_round = m.first_round.get_future();
    result.set_value(std::move(slots));
  });
  Slots slots = result.get_future().get();
  // Every probe ends by its timeout, in waves of kMaxConnecting at worst
  // (every VIP unreachable); the margin covers a busy machine.
  const auto waves = static_cast<long>(1 + checks / Impl::kMaxConnecting);
  if (first_round.wait_for(longest * waves + Duration(2000)) != std::future_status::ready)
    spdlog::warn("health: the first probe round did not finish in time; unprobed VIPs count as up");
  return slots;
}

const common::Publication<Table>& Prober::table() const { return impl_->publication; }
const ProbeStats& Prober::stats() const { return impl_->stats; }
bool Prober::persistent() const { return !impl_->state_file.empty(); }

Status Prober::status() const {
  Impl& m = *impl_;
  std::promise<Status> result;
  auto future = result.get_future();
  m.post([&] { result.set_value(m.make_status()); });
  return future.get();
}

std::string Prober::set_override(Kind kind, const std::string& name, Override overridden) {
  Impl& m = *impl_;
  std::promise<std::string> result;
  auto future = result.get_future();
  m.post([&] { result.set_value(m.change_override(kind, name, overridden)); });
  return future.get();
}

}  // namespace steerdns::health
