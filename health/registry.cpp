#include "health/registry.hpp"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "common/file.hpp"

namespace steerdns::health {

bool Tracker::record(const Result& r, TimePoint now) {
  if (!r.ok) {
    reason_ = r.reason;
    detail_ = r.detail;
  }
  if (!known_) {
    known_ = true;
    up_ = r.ok;
    streak_ = 0;
    since_ = now;
    return true;
  }
  if (r.ok == up_) {  // agrees with the state: any streak toward a change ends
    streak_ = 0;
    return false;
  }
  if (++streak_ < (up_ ? fall_ : rise_)) return false;
  up_ = r.ok;
  streak_ = 0;
  since_ = now;
  return true;
}

std::string canonical_address(const std::string& text) {
  unsigned char bytes[16];
  char out[INET6_ADDRSTRLEN];
  if (inet_pton(AF_INET, text.c_str(), bytes) == 1) return inet_ntop(AF_INET, bytes, out, sizeof out);
  if (inet_pton(AF_INET6, text.c_str(), bytes) == 1) return inet_ntop(AF_INET6, bytes, out, sizeof out);
  return {};
}

std::string note_key(bool region, const std::string& name) { return (region ? "region " : "vip ") + name; }

StateFile read_state_file(const std::string& path, const Overrides& previous) {
  StateFile out;
  Overrides& o = out.overrides;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) return out;
  const common::YamlDoc doc = common::load_yaml_file(path);
  if (!doc.root || doc.root.is_null()) return out;
  common::require_map_keys(doc, doc.root, "the state file", {"regions", "vips"});
  auto problem = [&](const common::Yaml& node, const std::string& why) {
    out.problems.push_back(path + ":" + std::to_string(node.line()) + ": " + why);
  };
  auto read = [&](const common::Yaml& map, bool region, std::map<std::string, Override>& into,
                  const std::map<std::string, Override>& before) {
    const char* what = region ? "regions" : "vips";
    if (!map || map.is_null()) return;
    if (!map.is_map()) common::fail_at(doc, map, std::string(what) + " must be a map of names to up or down");
    for (const auto& item : map) {
      std::string name = item.first.scalar();
      if (!region) {
        const std::string canonical = canonical_address(name);
        if (canonical.empty()) {
          problem(item.first, "vips: '" + name + "' is not an IPv4 or IPv6 address; not applied");
          continue;
        }
        name = canonical;
      }
      // A value is `down`/`up`, or {state: down, reason: ..., by: ..., since: ...}.
      std::string state, why;
      OverrideNote note;
      const common::Yaml& value = item.second;
      if (value.is_map()) {
        for (const auto& field : value) {
          const std::string key = field.first.scalar();
          std::string* slot = key == "state"    ? &state
                              : key == "reason" ? &note.reason
                              : key == "by"     ? &note.by
                              : key == "since"  ? &note.since
                                                : nullptr;
          if (slot == nullptr) why = "unknown key '" + key + "' (state, reason, by, since)";
          else if (!field.second.is_scalar()) why = key + " must be a string";
          else *slot = field.second.scalar();
        }
        if (why.empty() && state.empty()) why = "no state (up or down)";
      } else if (value.is_scalar()) {
        state = value.scalar();
      }
      if (why.empty() && state != "up" && state != "down") why = "'" + state + "' is not up or down";
      const std::string key = note_key(region, name);
      out.lines[key] = item.first.line();
      if (why.empty()) {
        into[name] = state == "down" ? Override::down : Override::up;
        if (!note.empty()) o.notes[key] = note;
        continue;
      }
      auto last = before.find(name);
      if (last == before.end()) {
        problem(value, std::string(what) + " " + name + ": " + why + "; not applied");
        continue;
      }
      problem(value, std::string(what) + " " + name + ": " + why + "; keeping the last good state, " +
                         std::string(override_name(last->second)));
      into[name] = last->second;
      if (auto n = previous.notes.find(key); n != previous.notes.end()) o.notes[key] = n->second;
    }
  };
  read(doc.root["regions"], true, o.regions, previous.regions);
  read(doc.root["vips"], false, o.vips, previous.vips);
  return out;
}

std::string_view override_name(Override f) noexcept {
  return f == Override::up ? "up" : f == Override::down ? "down" : "automatic";
}

void save_overrides(const std::string& path, const Overrides& o) {
  std::vector<common::YamlSection> sections;
  for (const bool region : {true, false}) {
    auto& section = sections.emplace_back(region ? "regions" : "vips",
                                          std::vector<std::pair<std::string, common::YamlValue>>{});
    for (const auto& [name, overridden] : region ? o.regions : o.vips) {
      const std::string state(override_name(overridden));
      auto n = o.notes.find(note_key(region, name));
      if (n == o.notes.end() || n->second.empty()) {
        section.second.emplace_back(name, state);
        continue;
      }
      std::vector<std::pair<std::string, std::string>> fields{{"state", state}};
      if (!n->second.reason.empty()) fields.emplace_back("reason", n->second.reason);
      if (!n->second.by.empty()) fields.emplace_back("by", n->second.by);
      if (!n->second.since.empty()) fields.emplace_back("since", n->second.since);
      section.second.emplace_back(name, common::YamlValue(std::move(fields)));
    }
  }
  const std::string text =
      "# steerdns overrides: regions and VIPs forced up or down (written by the admin API)\n" +
      common::emit_yaml(sections);
  common::replace_file(path, text);
}

std::string state_folder_error(const std::string& path) {
  const std::string probe = path + ".tmp";
  std::FILE* f = std::fopen(probe.c_str(), "w");
  if (f == nullptr)
    return "cannot write " + probe + ": " + std::strerror(errno) + " (a drain could not be saved)";
  std::fclose(f);
  std::remove(probe.c_str());
  return {};
}

Registry::Applied Registry::apply(const Plan& plan) {
  Applied out;
  std::vector<bool> wanted(entries_.size(), false);
  for (auto& e : entries_) e.labels.clear();
  for (const Target& t : plan.vips) {
    Entry probe;
    probe.vip = canonical_address(t.vip);
    if (probe.vip.empty()) probe.vip = t.vip;
    probe.key = probe.vip + '\x1e' + (t.check ? t.check->key() : std::string("unchecked"));
    std::uint32_t slot;
    if (auto it = by_key_.find(probe.key); it != by_key_.end()) {
      slot = it->second;
    } else {
      probe.check = t.check;
      if (t.check) probe.tracker = Tracker(t.check->rise, t.check->fall);
      probe.in_use = true;
      if (!free_.empty()) {
        slot = free_.back();
        free_.pop_back();
        entries_[slot] = std::move(probe);
      } else {
        slot = static_cast<std::uint32_t>(entries_.size());
        entries_.push_back(std::move(probe));
        wanted.push_back(false);
      }
      by_key_[entries_[slot].key] = slot;
      out.started.push_back(slot);
    }
    wanted[slot] = true;
    auto& labels = entries_[slot].labels;
    if (std::find(labels.begin(), labels.end(), t.label) == labels.end()) labels.push_back(t.label);
    out.slots.vips.push_back(slot);
  }
  for (std::uint32_t slot = 0; slot < entries_.size(); ++slot) {
    Entry& e = entries_[slot];
    if (!e.in_use || wanted[slot]) continue;
    by_key_.erase(e.key);
    e = Entry{};
    free_.push_back(slot);
    out.stopped.push_back(slot);
  }
  current_regions_.clear();
  for (const std::string& name : plan.regions) {
    current_regions_.insert(name);
    auto [it, added] = region_slots_.try_emplace(name, static_cast<std::uint32_t>(region_names_.size()));
    if (added) region_names_.push_back(name);
    out.slots.regions.push_back(it->second);
  }
  return out;
}

bool Registry::record(std::uint32_t slot, const Result& r, TimePoint now) {
  return entries_[slot].tracker.record(r, now);
}

Table Registry::table() const {
  Table t;
  t.vips.resize(entries_.size(), Table::kUp);
  for (std::uint32_t slot = 0; slot < entries_.size(); ++slot) {
    const Entry& e = entries_[slot];
    if (!e.in_use) continue;
    std::uint8_t flags = (!e.check || !e.tracker.known() || e.tracker.up()) ? Table::kUp : 0;
    if (auto it = overrides_.vips.find(e.vip); it != overrides_.vips.end()) {
      if (it->second == Override::down) flags = Table::kOverriddenDown;
      else flags = Table::kUp | Table::kOverriddenUp;
    }
    t.vips[slot] = flags;
  }
  t.regions.resize(region_names_.size(), 0);
  for (std::uint32_t slot = 0; slot < region_names_.size(); ++slot) {
    auto it = overrides_.regions.find(region_names_[slot]);
    if (it == overrides_.regions.end()) continue;
    t.regions[slot] = it->second == Override::down ? Table::kOverriddenDown
                                                   : (Table::kUp | Table::kOverriddenUp);
  }
  return t;
}

bool Registry::known_region(const std::string& name) const { return current_regions_.count(name) != 0; }

bool Registry::known_vip(const std::string& address) const {
  return std::any_of(entries_.begin(), entries_.end(),
                     [&](const Entry& e) { return e.in_use && e.vip == address; });
}

std::vector<std::string> Registry::unknown_overrides() const {
  std::vector<std::string> out;
  for (const auto& [name, overridden] : overrides_.regions)
    if (!known_region(name)) out.push_back("region " + name);
  for (const auto& [name, overridden] : overrides_.vips)
    if (!known_vip(name)) out.push_back("VIP " + name);
  return out;
}

Overrides Registry::known_overrides() const {
  Overrides out = overrides_;
  for (const bool region : {true, false}) {
    auto& map = region ? out.regions : out.vips;
    std::erase_if(map, [&](const auto& item) {
      if (region ? known_region(item.first) : known_vip(item.first)) return false;
      out.notes.erase(note_key(region, item.first));
      return true;
    });
  }
  return out;
}

}  // namespace steerdns::health
