#include "health/registry.hpp"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <stdexcept>

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

Overrides load_overrides(const std::string& path) {
  Overrides o;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) return o;
  const common::YamlDoc doc = common::load_yaml_file(path);
  if (!doc.root || doc.root.is_null()) return o;
  common::require_map_keys(doc, doc.root, "the state file", {"regions", "vips"});
  auto read = [&doc](const common::Yaml& map, std::string_view what, bool address,
                     std::map<std::string, Override>& out) {
    if (!map || map.is_null()) return;
    if (!map.is_map()) common::fail_at(doc, map, std::string(what) + " must be a map of names to up or down");
    for (const auto& item : map) {
      std::string name = item.first.scalar();
      if (address) {
        const std::string canonical = canonical_address(name);
        if (canonical.empty())
          common::fail_at(doc, item.first, "vips: '" + name + "' is not an IPv4 or IPv6 address");
        name = canonical;
      }
      const std::string state = common::read_string(doc, item.second, name);
      if (state == "up") out[name] = Override::up;
      else if (state == "down") out[name] = Override::down;
      else
        common::fail_at(doc, item.second,
                        std::string(what) + " " + name + ": '" + state + "' is not up or down");
    }
  };
  read(doc.root["regions"], "regions", false, o.regions);
  read(doc.root["vips"], "vips", true, o.vips);
  return o;
}

std::string_view override_name(Override f) noexcept {
  return f == Override::up ? "up" : f == Override::down ? "down" : "automatic";
}

void save_overrides(const std::string& path, const Overrides& o) {
  std::vector<common::YamlSection> sections;
  for (const auto& [key, map] : {std::pair{"regions", &o.regions}, std::pair{"vips", &o.vips}}) {
    auto& section = sections.emplace_back(key, std::vector<std::pair<std::string, std::string>>{});
    for (const auto& [name, overridden] : *map)
      section.second.emplace_back(name, std::string(override_name(overridden)));
  }
  const std::string text =
      "# steerdns overrides: regions and VIPs forced up or down (written by the admin API)\n" +
      common::emit_yaml(sections);
  const std::string temporary = path + ".tmp";
  {
    std::ofstream file(temporary, std::ios::trunc);
    file << text;
    file.flush();
    if (!file) throw std::runtime_error(temporary + ": cannot write: " + std::strerror(errno));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(temporary.c_str());
    throw std::runtime_error(path + ": cannot replace: " + std::strerror(err));
  }
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
  for (const std::string& name : plan.regions) {
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

std::vector<std::string> Registry::unknown_overrides() const {
  std::set<std::string> vips, regions(region_names_.begin(), region_names_.end());
  for (const auto& e : entries_)
    if (e.in_use) vips.insert(e.vip);
  std::vector<std::string> out;
  for (const auto& [name, overridden] : overrides_.regions)
    if (!regions.count(name)) out.push_back("region " + name);
  for (const auto& [name, overridden] : overrides_.vips)
    if (!vips.count(name)) out.push_back("VIP " + name);
  return out;
}

}  // namespace steerdns::health
