// Load-time vocabulary shared by every module that reads operator files:
// the error that carries file:line:reason, and strict YAML accessors.
// Everything here runs at load (main thread or reload), never on the query
// path, so exceptions are the error channel (DESIGN.md, Style).
#pragma once

#include "common/yaml.hpp"

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>

namespace steerdns::common {

// An operator's file is wrong. what() is "FILE:LINE: REASON" (line 1-based,
// omitted when unknown) so that editors and humans can jump to it.
class LoadError : public std::runtime_error {
 public:
  LoadError(std::string file, int line, std::string reason);
  const std::string& file() const noexcept { return file_; }
  int line() const noexcept { return line_; }
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::string file_;
  int line_;
  std::string reason_;
};

// A parsed YAML document that remembers where it came from, so every accessor
// can blame the right file and line.
struct YamlDoc {
  std::string path;
  Yaml root;
};

// Reads and parses PATH; syntax errors become LoadError with the parser's line.
YamlDoc load_yaml_file(const std::string& path);
// Parses TEXT as the contents of PATH (named in errors; not read).
YamlDoc parse_yaml_text(std::string_view text, const std::string& path);

[[noreturn]] void fail_at(const YamlDoc& doc, const Yaml& at, const std::string& reason);

// "; did you mean 'K'?" for the KNOWN word K a typo of WORD would be (at
// most two edits), or empty.
std::string did_you_mean(std::string_view word, std::initializer_list<std::string_view> known);

// Rejects any key of MAP not in ALLOWED ("unknown key 'x' in WHERE").
// A non-map MAP is an error too ("WHERE must be a map").
void require_map_keys(const YamlDoc& doc, const Yaml& map, std::string_view where,
                      std::initializer_list<std::string_view> allowed);

std::string read_string(const YamlDoc& doc, const Yaml& node, std::string_view key);
std::uint64_t read_uint(const YamlDoc& doc, const Yaml& node, std::string_view key, std::uint64_t min,
                        std::uint64_t max);
bool read_bool(const YamlDoc& doc, const Yaml& node, std::string_view key);
// Bytes: "65536", "512k", "4m" (binary multiples), within MIN..MAX.
std::uint64_t read_size(const YamlDoc& doc, const Yaml& node, std::string_view key, std::uint64_t min,
                        std::uint64_t max);
// "250ms", "5s", "2m", "1h", or a bare integer meaning seconds.
std::chrono::milliseconds read_duration(const YamlDoc& doc, const Yaml& node, std::string_view key);

// PATH as an operator wrote it in DOC: relative paths are taken from DOC's
// folder, absolute ones stay; normalised.
std::string path_beside(const YamlDoc& doc, const std::string& path);

// The 1-based line of NODE, or 0 when it is undefined.
int line_of(const Yaml& node);

}  // namespace steerdns::common
