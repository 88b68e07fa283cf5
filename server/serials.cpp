#include "server/serials.hpp"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <filesystem>
#include <stdexcept>
#include <sys/stat.h>
#include <vector>

#include "common/file.hpp"
#include "common/load_error.hpp"
#include "common/yaml.hpp"

namespace steerdns::server {

std::string serials_path(const std::string& state_file) {
  if (state_file.empty()) return {};
  return (std::filesystem::path(state_file).parent_path() / "serials.yaml").string();
}

SerialMemory::SerialMemory(std::string path) : path_(std::move(path)) {
  struct stat st;
  if (path_.empty() || (::stat(path_.c_str(), &st) != 0 && errno == ENOENT)) return;
  try {
    const common::YamlDoc doc = common::load_yaml_file(path_);
    if (!doc.root || doc.root.is_null()) return;
    const common::Yaml zones = doc.root["zones"];
    if (!zones || !zones.is_map()) return;
    for (const auto& item : zones) {
      const std::string digest = item.second["digest"].scalar();
      const std::string serial = item.second["serial"].scalar();
      last_[item.first.scalar()] = {std::stoull(digest, nullptr, 16),
                                    static_cast<std::uint32_t>(std::stoul(serial))};
    }
  } catch (const std::exception& e) {
    last_.clear();
    spdlog::warn("zones: {}: not read, serial: auto starts afresh: {}", path_, e.what());
  }
}

std::uint32_t SerialMemory::serial(const std::string& apex, std::uint64_t digest) {
  auto it = last_.find(apex);
  std::uint32_t serial = candidate(digest, 0);
  if (it != last_.end()) {
    const auto [last_digest, last_serial] = it->second;
    if (last_digest == digest) return last_serial;
    for (unsigned k = 0; !greater(serial, last_serial); serial = candidate(digest, ++k)) {
    }
  }
  last_[apex] = {digest, serial};
  return serial;
}

void SerialMemory::save() const {
  if (path_.empty()) return;
  std::vector<std::pair<std::string, common::YamlValue>> entries;
  for (const auto& [apex, last] : last_) {
    char digest[17];
    std::snprintf(digest, sizeof digest, "%016llx", static_cast<unsigned long long>(last.first));
    entries.emplace_back(apex,
                         common::YamlValue({{"digest", digest}, {"serial", std::to_string(last.second)}}));
  }
  const std::string text =
      "# steerdns: the last `serial: auto` of each zone and its content's digest (written by steerdns)\n" +
      common::emit_yaml({{"zones", entries}});
  try {
    common::replace_file(path_, text);
  } catch (const std::exception& e) {
    spdlog::warn("zones: cannot keep the auto serials: {}", e.what());
  }
}

}  // namespace steerdns::server
