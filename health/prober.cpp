#include "health/prober.hpp"

#include <curl/curl.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>

#include "common/log.hpp"
#include "health/prober_impl.hpp"

namespace steerdns::health {

namespace {

std::once_flag curl_once;

}  // namespace

void Prober::Impl::post(std::function<void()> f) {
  {
    std::lock_guard lock(mutex);
    commands.push_back(std::move(f));
  }
  uv_async_send(&wake);
}

void Prober::Impl::run_commands() {
  std::deque<std::function<void()>> todo;
  {
    std::lock_guard lock(mutex);
    todo.swap(commands);
  }
  for (auto& f : todo) f();
  publish_if_dirty();
}

void Prober::Impl::publish_if_dirty() {
  if (!dirty) return;
  dirty = false;
  publication.publish(std::make_shared<const Table>(registry.table()));
  if (published) published();
}

Status Prober::Impl::make_status() const {
  Status out;
  out.overrides = registry.known_overrides();
  out.ignored = registry.unknown_overrides();
  out.state_problems = state_problems;
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
      v.since = wall_now - std::chrono::duration_cast<std::chrono::system_clock::duration>(steady_now -
                                                                                           e.tracker.since());
    if (auto it = out.overrides.vips.find(e.vip); it != out.overrides.vips.end()) v.overridden = it->second;
    if (e.check)
      if (auto it = transitions.find({e.vip, e.check->type}); it != transitions.end())
        v.transitions = it->second;
  }
  return out;
}

std::string Prober::Impl::change_override(Prober::Kind kind, const std::string& name, Override overridden,
                                          const OverrideNote& note) {
  if (state_file.empty())
    return "no health.state_file is configured: an override would not survive a restart";
  const bool region = kind == Prober::Kind::region;
  Overrides next = registry.overrides();
  auto& map = region ? next.regions : next.vips;
  const std::string key = note_key(region, name);
  if (overridden == Override::none) {
    map.erase(name);
    next.notes.erase(key);
  } else {
    map[name] = overridden;
    if (note.empty()) next.notes.erase(key);
    else next.notes[key] = note;
  }
  if (next == registry.overrides()) return {};
  try {
    save_overrides(state_file, next);
  } catch (const std::exception& e) {
    return e.what();
  }
  common::event(spdlog::level::warn,
                fmt::format("health: {} {} {} by the admin API", region ? "region" : "VIP", name,
                            overridden == Override::none
                                ? "back to automatic"
                                : "forced " + std::string(override_name(overridden))),
                {{region ? "region" : "vip", name},
                 {"state", std::string(override_name(overridden))},
                 {"reason", note.reason},
                 {"by", note.by}});
  registry.set_overrides(std::move(next));
  keep_last_good();
  dirty = true;
  publish_if_dirty();
  return {};
}

void Prober::Impl::keep_last_good() {
  try {
    save_overrides(state_file + ".last-good", registry.overrides());
    last_good_failed = false;
  } catch (const std::exception& e) {
    if (!last_good_failed) spdlog::warn("health: cannot keep the last good overrides: {}", e.what());
    last_good_failed = true;
  }
}

void Prober::Impl::report_unknown() {
  std::set<std::string> now;
  for (const auto& name : registry.unknown_overrides()) {
    now.insert(name);
    if (reported_unknown.count(name)) continue;
    common::event(spdlog::level::err,
                  fmt::format("health: the state file forces {}, which no geo name has: ignored", name),
                  {{"target", name}});
  }
  reported_unknown = std::move(now);
}

Slots Prober::Impl::apply(const Plan& plan) {
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
  report_unknown();
  // The table holds the new slots before apply() returns and the world that
  // uses them is published.
  publish_if_dirty();
  if (first_pending == 0) first_round.set_value();
  return applied.slots;
}

void Prober::Impl::read_overrides(bool at_start) {
  if (state_file.empty()) return;
  // The fallback of every entry the state file cannot give: the overrides
  // in force (at start: those the last server kept, STATE_FILE.last-good).
  Overrides last_good = registry.overrides();
  if (at_start) {
    try {
      last_good = read_state_file(state_file + ".last-good").overrides;
    } catch (const std::exception& e) {
      spdlog::warn("health: the last good overrides cannot be read: {}", e.what());
    }
  }
  StateFile read;
  try {
    read = read_state_file(state_file, last_good);
    for (const auto& problem : read.problems)
      common::event(spdlog::level::err, "health: state file: " + problem, {{"reason", "state_file"}});
  } catch (const std::exception& e) {
    // Never a reason not to start, nor to lose the overrides in force.
    common::event(spdlog::level::err,
                  fmt::format("health: state file not applied, keeping the last good overrides: {}",
                              e.what()),
                  {{"reason", "state_file"}});
    read.problems = {e.what()};
    read.overrides = std::move(last_good);
  }
  state_problems = std::move(read.problems);
  const Overrides& prev = registry.overrides();  // at start: none
  Overrides& next = read.overrides;
  if (next == prev) return;
  auto report = [&](bool region, const std::map<std::string, Override>& before,
                    const std::map<std::string, Override>& after) {
    const char* kind = region ? "region" : "VIP";
    for (const auto& [name, overridden] : after) {
      auto it = before.find(name);
      const std::string key = note_key(region, name);
      const auto note = next.notes.find(key);
      const auto old_note = prev.notes.find(key);
      const bool note_changed = (note == next.notes.end()) != (old_note == prev.notes.end()) ||
                                (note != next.notes.end() && note->second != old_note->second);
      if (it != before.end() && it->second == overridden && !note_changed) continue;
      const OverrideNote n = note == next.notes.end() ? OverrideNote{} : note->second;
      common::event(spdlog::level::warn,
                    fmt::format("health: {} {} forced {} by the state file", kind, name,
                                override_name(overridden)),
                    {{region ? "region" : "vip", name},
                     {"state", std::string(override_name(overridden))},
                     {"reason", n.reason},
                     {"by", n.by}});
    }
    for (const auto& [name, overridden] : before)
      if (!after.count(name))
        common::event(spdlog::level::info, fmt::format("health: {} {} back to automatic", kind, name),
                      {{region ? "region" : "vip", name}, {"state", "automatic"}});
  };
  report(true, prev.regions, next.regions);
  report(false, prev.vips, next.vips);
  registry.set_overrides(std::move(next));
  keep_last_good();
  // At start no plan is applied yet: apply() reports what no zone has.
  if (!at_start) report_unknown();
  dirty = true;
  publish_if_dirty();
}

void Prober::Impl::watch_state_file() {
  if (state_file.empty()) return;
  const auto slash = state_file.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : state_file.substr(0, slash);
  uv_fs_event_init(&loop, &watch);
  watch.data = this;
  const int err = uv_fs_event_start(
      &watch,
      [](uv_fs_event_t* h, const char* filename, int, int) {
        auto* m = static_cast<Impl*>(h->data);
        const std::string& path = m->state_file;
        const std::string base = path.substr(path.rfind('/') + 1);
        if (filename == nullptr || base == filename) m->read_overrides(false);
      },
      dir.c_str(), 0);
  if (err != 0)
    throw common::LoadError(state_file, 0, std::string("cannot watch its folder: ") + uv_strerror(err));
  watching = true;
}

void Prober::Impl::shutdown() {
  for (std::uint32_t slot = 0; slot < probes.size(); ++slot) retire(slot);
  if (watching) uv_close(reinterpret_cast<uv_handle_t*>(&watch), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&curl_timer), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&wake), nullptr);
}

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

std::string Prober::set_override(Kind kind, const std::string& name, Override overridden,
                                 const OverrideNote& note) {
  Impl& m = *impl_;
  std::promise<std::string> result;
  auto future = result.get_future();
  m.post([&] { result.set_value(m.change_override(kind, name, overridden, note)); });
  return future.get();
}

void Prober::on_publish(std::function<void()> f) {
  Impl& m = *impl_;
  std::promise<void> done;
  m.post([&] {
    m.published = std::move(f);
    done.set_value();
  });
  done.get_future().get();
}

}  // namespace steerdns::health
