#include "server/reload.hpp"

#include "common/log.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

namespace steerdns::server {

namespace {

const ReloadOutcome kStopping{false, "the server is stopping", 0, 0, 0};

}  // namespace

Reloader::Reloader(const Config& config, common::Publication<World>& world, health::Prober& prober,
                   Metrics& metrics, std::function<void()> on_published)
    : config_(config),
      world_(world),
      prober_(prober),
      metrics_(metrics),
      on_published_(std::move(on_published)) {}

Reloader::~Reloader() {
  if (builder_.joinable()) builder_.join();
}

void Reloader::attach(uv_loop_t* loop) {
  uv_async_init(loop, &built_, [](uv_async_t* a) { static_cast<Reloader*>(a->data)->finish(); });
  built_.data = this;
  uv_async_init(loop, &requests_, [](uv_async_t* a) { static_cast<Reloader*>(a->data)->run_requests(); });
  requests_.data = this;
}

// Settings the workers hold for their lifetime; a reload cannot change them.
void Reloader::warn_restart_only_changes(const Config& next) const {
  auto listen_text = [](const Config& c) {
    std::string out;
    for (const auto& at : c.listen) out += at.text + (at.udp ? "/udp" : "") + (at.tcp ? "/tcp" : "") + " ";
    return out;
  };
  auto warn = [](const char* what) { spdlog::warn("reload: {} changes only on restart", what); };
  const Config& config = config_;
  if (listen_text(next) != listen_text(config)) warn("server.listen");
  if (next.workers != config.workers) warn("server.workers");
  if (next.tcp != config.tcp) warn("server.tcp");
  if (next.rate_limit != config.rate_limit) warn("server.rate_limit");
  if (next.query_log != config.query_log) warn("logging.query_log");
  if (next.dnstap != config.dnstap) warn("logging.dnstap");
  if (next.state_file != config.state_file) warn("health.state_file");
  if (next.admin.enabled != config.admin.enabled || next.admin.text != config.admin.text ||
      next.admin.token_file != config.admin.token_file ||
      (!next.admin.token_made && next.admin.token != config.admin.token))
    warn("admin");
  if (next.user != config.user) warn("server.user");
}

void Reloader::start(Waiting waiting) {
  if (stopping_) {
    for (auto* p : waiting) p->set_value(kStopping);
    return;
  }
  if (builder_.joinable()) {  // the files may have changed after the build read them: build again after it
    again_ = true;
    answered_by_next_.insert(answered_by_next_.end(), waiting.begin(), waiting.end());
    return;
  }
  build_done_ = false;
  answered_by_build_ = std::move(waiting);
  build_started_ = std::chrono::steady_clock::now();
  sd_notify(0, "RELOADING=1\nSTATUS=reloading");
  builder_ = std::thread([this] {
    setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 19);
    try {
      next_config_ = load_config(config_.path);
      // server.tcp changes only on restart: the world advertises (in
      // edns-tcp-keepalive) the idle timeout the connections really have.
      Config running_tcp = next_config_;
      running_tcp.tcp = config_.tcp;
      next_world_ = build_world(running_tcp, &prober_, &metrics_);
    } catch (...) {
      build_failure_ = std::current_exception();
    }
    build_done_ = true;
    uv_async_send(&built_);
  });
}

void Reloader::finish() {
  if (!builder_.joinable()) return;
  builder_.join();
  ReloadOutcome out;
  try {
    if (build_failure_) std::rethrow_exception(std::exchange(build_failure_, nullptr));
    warn_restart_only_changes(next_config_);
    common::setup_logging(next_config_.log_format, spdlog::level::from_str(next_config_.log_level));
    out.records = next_world_->zones.record_count();
    out.zones = next_world_->zones.zones().size();
    world_.publish(std::move(next_world_));
    on_published_();
    out.ok = true;
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  next_world_.reset();
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - build_started_).count();
  ReloadStats& rs = metrics_.reloads;
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
  for (auto* p : std::exchange(answered_by_build_, {})) p->set_value(out);
  if (std::exchange(again_, false)) start(std::exchange(answered_by_next_, {}));
}

ReloadOutcome Reloader::request() {
  std::promise<ReloadOutcome> done;
  auto future = done.get_future();
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return kStopping;
    queued_.push_back(&done);
  }
  uv_async_send(&requests_);
  return future.get();
}

void Reloader::run_requests() {
  std::deque<std::promise<ReloadOutcome>*> todo;
  {
    std::lock_guard lock(mutex_);
    todo.swap(queued_);
  }
  // One reload answers every request queued before it started.
  if (!todo.empty()) start({todo.begin(), todo.end()});
}

void Reloader::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (auto* p : queued_) p->set_value(kStopping);
    queued_.clear();
  }
  for (auto* list : {&answered_by_build_, &answered_by_next_})
    for (auto* p : std::exchange(*list, {})) p->set_value(kStopping);
  uv_close(reinterpret_cast<uv_handle_t*>(&built_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&requests_), nullptr);
}

bool Reloader::abandon_or_join() {
  if (builder_.joinable() && !build_done_) return true;
  if (builder_.joinable()) builder_.join();
  return false;
}

}  // namespace steerdns::server
