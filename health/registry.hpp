// health: the state of every probed VIP, operator overrides, and the health
// table that answer() reads.
//
// Thread contract: a Registry belongs to one thread (the prober's); nothing
// in it locks. A Table is an immutable snapshot: it is published (see
// common/publication.hpp) and read by any number of workers, per batch.
// No clock is read here: callers pass `now`, so tests inject time.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "health/check.hpp"
#include "health/table.hpp"

namespace steerdns::health {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

// The rise/fall state machine of one probed VIP. The first result decides
// the state at once (that is the first probe round); after it, RISE
// consecutive successes bring a down VIP up and FALL consecutive failures
// take an up VIP down.
class Tracker {
 public:
  Tracker(unsigned rise, unsigned fall) : rise_(rise), fall_(fall) {}

  // Returns true when the state changed (including the first result).
  bool record(const Result& r, TimePoint now);

  bool known() const noexcept { return known_; }
  bool up() const noexcept { return up_; }
  // The reason and detail of the last failure (kept after recovery).
  Reason reason() const noexcept { return reason_; }
  const std::string& detail() const noexcept { return detail_; }
  TimePoint since() const noexcept { return since_; }
  // Consecutive results against the current state (toward a change).
  unsigned streak() const noexcept { return streak_; }

 private:
  unsigned rise_, fall_;
  bool known_ = false;
  bool up_ = true;
  unsigned streak_ = 0;
  Reason reason_ = Reason::none;
  std::string detail_;
  TimePoint since_{};
};

enum class Override : std::uint8_t { none, up, down };

// Who forced an override, why and when: all optional, kept in the state
// file beside the state, logged and shown in /status.
struct OverrideNote {
  std::string reason;
  std::string by;
  std::string since;  // RFC 3339 UTC; the API sets it when the override is made
  bool empty() const noexcept { return reason.empty() && by.empty() && since.empty(); }
  bool operator==(const OverrideNote&) const = default;
};

// Operator overrides, by region name and by VIP address (canonical text);
// NOTES holds the note of an entry that has one, under the same key
// ("region NAME" or "vip ADDRESS", as note_key makes).
struct Overrides {
  std::map<std::string, Override> regions;
  std::map<std::string, Override> vips;
  std::map<std::string, OverrideNote> notes;
  bool operator==(const Overrides&) const = default;
};
std::string note_key(bool region, const std::string& name);

// A state file as read: the overrides it holds, and what in it could not be
// read, entry by entry ("FILE:LINE: reason"). An entry that cannot be read
// keeps its state in PREVIOUS (the last good overrides) or, without one
// there, is not applied; nothing else of the file is lost. A missing file
// means no overrides.
struct StateFile {
  Overrides overrides;
  std::vector<std::string> problems;
  std::map<std::string, int> lines;  // by note_key: where each entry is
};
// Throws common::LoadError (file:line) only when the file as a whole cannot
// be read: unreadable, not YAML, not a map of `regions` and `vips`.
StateFile read_state_file(const std::string& path, const Overrides& previous = {});
// Writes O to PATH as read_state_file reads it, atomically (a temporary
// file renamed over PATH), so a watcher never reads half a file. Throws
// std::runtime_error naming PATH when it cannot be written.
void save_overrides(const std::string& path, const Overrides& o);
// Whether the folder of PATH takes a new file, as save_overrides needs (it
// writes PATH.tmp and renames it): empty when it does, else the reason.
std::string state_folder_error(const std::string& path);
std::string_view override_name(Override f) noexcept;  // "up", "down", "automatic"
// Canonical text of an IPv4 or IPv6 address; empty when TEXT is neither.
std::string canonical_address(const std::string& text);

// One VIP as a world uses it: its address, its check (none: never probed,
// always up unless forced) and a label for logs ("artifacts.example.com paris").
struct Target {
  std::string vip;
  std::optional<Check> check;
  std::string label;
};

struct Plan {
  std::vector<Target> vips;
  std::vector<std::string> regions;
};

// Slots for a Plan, in its order.
struct Slots {
  std::vector<std::uint32_t> vips;
  std::vector<std::uint32_t> regions;
};

class Registry {
 public:
  struct Entry {
    std::string vip;  // canonical
    std::optional<Check> check;
    std::string key;  // vip + check key: what makes two targets one probe
    std::vector<std::string> labels;
    Tracker tracker{2, 3};
    bool in_use = false;
  };

  // A reload: returns the slot of each target and region. Targets with the
  // key of a live entry keep its slot and state (no flap); new keys get a
  // fresh entry (listed in STARTED); live entries no target names are
  // retired (STOPPED) and their slots reused by later plans.
  struct Applied {
    Slots slots;
    std::vector<std::uint32_t> started, stopped;
  };
  Applied apply(const Plan& plan);

  // A probe's result. Returns true when the slot's state changed.
  bool record(std::uint32_t slot, const Result& r, TimePoint now);
  void set_overrides(Overrides o) { overrides_ = std::move(o); }
  const Overrides& overrides() const noexcept { return overrides_; }

  // The table as of now: probed state, with the overrides applied. A slot
  // whose first probe has not finished reads as up.
  Table table() const;

  const std::vector<Entry>& entries() const noexcept { return entries_; }
  Entry& entry(std::uint32_t slot) { return entries_[slot]; }
  // Region names by region slot.
  const std::vector<std::string>& region_names() const noexcept { return region_names_; }
  // Overrides that no current target or region matches ("region NAME",
  // "VIP ADDRESS"): they are not applied.
  std::vector<std::string> unknown_overrides() const;
  // The overrides that do match (what the table applies), notes included.
  Overrides known_overrides() const;
  // Whether an override of that name matches a current region or VIP.
  bool known_region(const std::string& name) const;
  bool known_vip(const std::string& address) const;

 private:
  std::vector<Entry> entries_;
  std::unordered_map<std::string, std::uint32_t> by_key_;
  std::vector<std::uint32_t> free_;
  std::vector<std::string> region_names_;
  std::unordered_map<std::string, std::uint32_t> region_slots_;
  std::set<std::string> current_regions_;  // the last plan's regions
  Overrides overrides_;
};

}  // namespace steerdns::health
