#include "common/load_error.hpp"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

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
    // A tab in the indentation is the usual cause, and libyaml's words for it
    // ("found character that cannot start any token") do not say so.
    int line = 1;
    for (std::size_t at = 0; at < text.size(); ++at) {
      if (text[at] == '\n') {
        ++line;
        continue;
      }
      if ((at == 0 || text[at - 1] == '\n') && line <= e.line() && line >= e.line() - 1) {
        std::size_t i = at;
        while (i < text.size() && text[i] == ' ') ++i;
        if (i < text.size() && text[i] == '\t')
          throw LoadError(path, line, "YAML syntax: a tab in the indentation; YAML indents with spaces only");
      }
    }
    throw LoadError(path, e.line(), std::string("YAML syntax: ") + e.what());
  }
}

void fail_at(const YamlDoc& doc, const Yaml& at, const std::string& reason) {
  throw LoadError(doc.path, line_of(at), reason);
}

namespace {

// Levenshtein distance between A and B (keys are short).
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string did_you_mean(std::string_view word, std::initializer_list<std::string_view> known) {
  std::string_view best;
  std::size_t best_distance = 0;
  for (auto k : known) {
    const std::size_t d = edit_distance(word, k);
    if (best.empty() || d < best_distance) {
      best = k;
      best_distance = d;
    }
  }
  // Close enough to be a typo: at most a third of the word, and 2 edits.
  if (best.empty() || best_distance == 0 || best_distance > 2 || best_distance * 3 > word.size() + 1)
    return {};
  return "; did you mean '" + std::string(best) + "'?";
}

void require_map_keys(const YamlDoc& doc, const Yaml& map, std::string_view where,
                      std::initializer_list<std::string_view> allowed) {
  if (!map.is_map()) fail_at(doc, map, std::string(where) + " must be a map");
  for (const auto& item : map) {
    const std::string key = item.first.scalar();
    bool known = false;
    for (auto a : allowed) known = known || a == key;
    if (!known)
      fail_at(doc, item.first,
              "unknown key '" + key + "' in " + std::string(where) + did_you_mean(key, allowed));
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
  // A bare number is refused (0 aside): HAProxy counts milliseconds where
  // other tools count seconds, and `interval: 2000` must not mean 33 minutes.
  if (unit.empty() && ec == std::errc() && end != text.data() && value != 0)
    fail_at(doc, node,
            std::string(key) + ": '" + text + "' has no unit: write " + text + "ms or " + text +
                "s (a duration is a number with ms, s, m or h)");
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
