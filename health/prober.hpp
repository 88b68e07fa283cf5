// health: the prober. One thread with its own libuv loop drives libcurl's
// multi interface for every check (http, https, tcp), applies rise/fall,
// watches the operators' state file, and publishes a new health Table on
// every change.
//
// Thread contract: construct, apply() and destroy on one thread (the main
// thread); table() may be pinned from any thread. Every probe is bounded by
// its timeout and reads at most kMaxBody, so no backend can delay another
// probe, and nothing here ever blocks a DNS worker.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/publication.hpp"
#include "health/registry.hpp"

namespace steerdns::health {

// Counters of the prober (metrics): written by the prober thread only,
// read by any thread, relaxed. Monotonic for the life of the Prober.
struct ProbeStats {
  // Upper bounds of the probe duration histogram, in seconds.
  static constexpr std::array<double, 12> kBuckets{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                   0.1,   0.25,   0.5,   1,    2.5,   5};
  struct Histogram {
    std::array<std::atomic<std::uint64_t>, kBuckets.size() + 1> counts{};  // per bucket, +Inf last
    std::atomic<std::uint64_t> sum_us{0};
    std::atomic<std::uint64_t> count{0};
  };
  std::array<Histogram, 3> duration;                                // by CheckType
  std::array<std::atomic<std::uint64_t>, kReasonCount> failures{};  // by Reason; none unused
};

// One probed VIP as of now (Prober::status), by slot.
struct VipStatus {
  bool in_use = false;
  std::string vip;
  std::optional<Check> check;    // none: never probed, always up unless forced
  bool known = false;            // a first result arrived
  bool up = true;                // the probed state (overrides aside)
  Reason reason = Reason::none;  // of the last failure, kept after recovery
  std::string detail;
  std::chrono::system_clock::time_point since{};  // last change; epoch when never probed
  Override overridden = Override::none;
  // Probed changes of state (rise/fall applied; not the first result, nor
  // overrides) of every check of this type on this VIP since the prober
  // started, whatever slots they had: [0] to up, [1] to down.
  std::array<std::uint64_t, 2> transitions{};
};

struct Status {
  std::vector<VipStatus> vips;  // by VIP slot
  Overrides overrides;          // as applied (the state file, or the API)
};

class Prober {
 public:
  // STATE_FILE holds the operators' overrides (see load_overrides); empty:
  // none. Its folder must exist: it is watched, and an edit applies at once.
  // Throws common::LoadError when the file is malformed.
  explicit Prober(std::string state_file);
  ~Prober();
  Prober(const Prober&) = delete;
  Prober& operator=(const Prober&) = delete;

  // Start-up and reload: applies PLAN (Registry::apply: unchanged checks
  // keep their state, new ones start, removed ones stop), waits until every
  // new check has a first result (bounded by its timeout), publishes the
  // table and returns the slots. The world built with these slots must be
  // published after this returns.
  Slots apply(const Plan& plan);

  const common::Publication<Table>& table() const;
  const ProbeStats& stats() const;

  // Any thread: a copy of every slot's state, made on the prober thread.
  Status status() const;

  // Any thread: forces region or VIP NAME (KIND) up or down, or back to
  // automatic (Override::none); writes the state file first, so the override
  // outlives a restart, then publishes the table. When this returns, every
  // answer uses it. Returns an error text (no state file, or it cannot be
  // written: then nothing changed), empty on success.
  enum class Kind { region, vip };
  std::string set_override(Kind kind, const std::string& name, Override overridden);
  bool persistent() const;  // a state file is configured

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace steerdns::health
