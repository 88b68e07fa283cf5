#include "common/load_error.hpp"

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace steerdns::common {

namespace {
std::string format_error(const std::string& file, int line, const std::string& reason) {
  if (line > 0) return file + ":" + std::to_string(line) + ": " + reason;
  return file + ": " + reason;
}

std::string scalar_text(const Yaml& node) {
  if (node.is_scalar()) return node.scalar();
  if (node.is_sequence()) return "a list";
  if (node.is_map()) return "a map";
  return "nothing";
}
}  // namespace

LoadError::LoadError(std::string file, int line, std::string reason)
    : std::runtime_error(format_error(file, line, reason)),
      file_(std::move(file)),
      line_(line),
      reason_(std::move(reason)) {}

int line_of(const Yaml& node) { return node.line(); }

YamlDoc load_yaml_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw LoadError(path, 0, "cannot open file");
  std::stringstream text;
  text << in.rdbuf();
  return parse_yaml_text(text.str(), path);
}

YamlDoc parse_yaml_text(std::string_view text, const std::string& path) {
  try {
    return YamlDoc{path, Yaml::parse(text)};
  } catch (const YamlSyntaxError& e) {
    throw LoadError(path, e.line(), std::string("YAML syntax: ") + e.what());
  }
}

void fail_at(const YamlDoc& doc, const Yaml& at, const std::string& reason) {
  throw LoadError(doc.path, line_of(at), reason);
}

void require_map_keys(const YamlDoc& doc, const Yaml& map, std::string_view where,
                      std::initializer_list<std::string_view> allowed) {
  if (!map.is_map()) fail_at(doc, map, std::string(where) + " must be a map");
  for (const auto& item : map) {
    const std::string key = item.first.scalar();
    bool known = false;
    for (auto a : allowed) known = known || a == key;
    if (!known) fail_at(doc, item.first, "unknown key '" + key + "' in " + std::string(where));
  }
}

std::string read_string(const YamlDoc& doc, const Yaml& node, std::string_view key) {
  if (!node.is_scalar()) fail_at(doc, node, std::string(key) + " must be a string, not " + scalar_text(node));
  return node.scalar();
}

std::uint64_t read_uint(const YamlDoc& doc, const Yaml& node, std::string_view key, std::uint64_t min,
                        std::uint64_t max) {
  const std::string text = read_string(doc, node, key);
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size())
    fail_at(doc, node, std::string(key) + ": '" + text + "' is not a whole number");
  if (value < min || value > max)
    fail_at(doc, node,
            std::string(key) + ": " + text + " is out of range " + std::to_string(min) + ".." +
                std::to_string(max));
  return value;
}

bool read_bool(const YamlDoc& doc, const Yaml& node, std::string_view key) {
  const std::string text = read_string(doc, node, key);
  if (text == "true" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "no" || text == "off") return false;
  fail_at(doc, node, std::string(key) + ": '" + text + "' is not true or false");
}

std::uint64_t read_size(const YamlDoc& doc, const Yaml& node, std::string_view key, std::uint64_t min,
                        std::uint64_t max) {
  const std::string text = read_string(doc, node, key);
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  const std::string_view unit(end, text.data() + text.size() - end);
  int shift = -1;
  if (unit.empty()) shift = 0;
  else if (unit == "k" || unit == "K") shift = 10;
  else if (unit == "m" || unit == "M") shift = 20;
  if (ec != std::errc() || end == text.data() || shift < 0)
    fail_at(doc, node, std::string(key) + ": '" + text + "' is not a size (like 65536, 512k, 4m)");
  if (value > (max >> shift) || (value << shift) < min)
    fail_at(doc, node,
            std::string(key) + ": " + text + " is out of range " + std::to_string(min) + ".." +
                std::to_string(max));
  return value << shift;
}

std::chrono::milliseconds read_duration(const YamlDoc& doc, const Yaml& node, std::string_view key) {
  const std::string text = read_string(doc, node, key);
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  const std::string_view unit(end, text.data() + text.size() - end);
  std::uint64_t scale = 0;
  if (unit.empty() || unit == "s") scale = 1000;
  else if (unit == "ms") scale = 1;
  else if (unit == "m") scale = 60'000;
  else if (unit == "h") scale = 3'600'000;
  if (ec != std::errc() || end == text.data() || scale == 0 || value > (1ull << 40))
    fail_at(doc, node, std::string(key) + ": '" + text + "' is not a duration (like 500ms, 5s, 2m)");
  return std::chrono::milliseconds(value * scale);
}

std::string path_beside(const YamlDoc& doc, const std::string& path) {
  return (std::filesystem::path(doc.path).parent_path() / path).lexically_normal().string();
}

}  // namespace steerdns::common
