// A parsed YAML document as an immutable tree with line numbers, built from
// libyaml's event parser.
//
// Why not yaml-cpp (the first choice): on a zone of 100,000 records (2.6 MB)
// yaml-cpp 0.7 takes 1.6 s and 190 MB to build its node tree, 0.45 s of it
// scanning; libyaml's parser reads the same file in 0.09 s, and this tree
// costs a few tens of bytes per node (bench/README.md, "Start-up").
//
// Semantics kept from YAML 1.1/1.2 as operators write it:
//   * a plain scalar "", "~", "null", "Null" or "NULL" is null; every other
//     scalar keeps its text (quoted "null" is the string null), and typing
//     (numbers, booleans, durations) is the reader's job;
//   * anchors and aliases are supported (an alias shares the anchored node);
//   * a mapping with the same key twice is an error, with both lines;
//   * one document per file.
// Thread contract: a tree is immutable once built; handles may be copied and
// read from any thread.
#pragma once

#include <cstdint>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace steerdns::common {

struct YamlTree;

// Where a document could not be parsed: LINE is 1-based (0: unknown).
class YamlSyntaxError : public std::runtime_error {
 public:
  YamlSyntaxError(int line, const std::string& reason) : std::runtime_error(reason), line_(line) {}
  int line() const noexcept { return line_; }

 private:
  int line_;
};

struct YamlEntry;

// A handle on one node of a tree (or on nothing: undefined). Cheap to copy;
// it keeps its tree alive.
class Yaml {
 public:
  Yaml() = default;

  bool is_defined() const noexcept { return tree_ != nullptr; }
  bool is_null() const noexcept;
  bool is_scalar() const noexcept;
  bool is_sequence() const noexcept;
  bool is_map() const noexcept;
  explicit operator bool() const noexcept { return is_defined(); }

  // The text of a scalar; empty for anything else.
  const std::string& scalar() const noexcept;
  // Items of a sequence or entries of a map; 0 for anything else.
  std::size_t size() const noexcept;
  // The value of KEY in a map; undefined when absent or not a map.
  Yaml operator[](std::string_view key) const;
  Yaml operator[](const char* key) const { return (*this)[std::string_view(key)]; }
  // Item I of a sequence; undefined when out of range or not a sequence.
  Yaml operator[](std::size_t i) const;
  Yaml operator[](int i) const { return i < 0 ? Yaml() : (*this)[static_cast<std::size_t>(i)]; }
  // The 1-based line where the node starts; 0 when undefined.
  int line() const noexcept;

  // Iterates a sequence's items or a map's entries (key in `first`, value
  // in `second`; for a sequence both are the item).
  class Iterator {
   public:
    using value_type = YamlEntry;
    using difference_type = std::ptrdiff_t;
    YamlEntry operator*() const;
    Iterator& operator++() noexcept {
      ++at_;
      return *this;
    }
    bool operator==(const Iterator& o) const noexcept { return at_ == o.at_; }

   private:
    friend class Yaml;
    Iterator(const Yaml* node, std::size_t at) : node_(node), at_(at) {}
    const Yaml* node_;
    std::size_t at_;
  };
  Iterator begin() const noexcept { return {this, 0}; }
  Iterator end() const noexcept { return {this, size()}; }

  // Parses TEXT (one document). Throws YamlSyntaxError.
  static Yaml parse(std::string_view text);

 private:
  Yaml(std::shared_ptr<const YamlTree> tree, std::uint32_t index) : tree_(std::move(tree)), index_(index) {}
  std::shared_ptr<const YamlTree> tree_;
  std::uint32_t index_ = 0;
};

// Block YAML for a map of maps (as the state file holds), with libyaml's
// emitter choosing quotes where a string needs them. A value is a string
// or, when FIELDS is not empty, a flow map of FIELDS ({state: down, by: x}).
struct YamlValue {
  std::string text;
  std::vector<std::pair<std::string, std::string>> fields;
  YamlValue(std::string t = {}) : text(std::move(t)) {}  // NOLINT: a string is a value
  YamlValue(const char* t) : text(t) {}                  // NOLINT
  explicit YamlValue(std::vector<std::pair<std::string, std::string>> f) : fields(std::move(f)) {}
};
using YamlSection = std::pair<std::string, std::vector<std::pair<std::string, YamlValue>>>;
std::string emit_yaml(const std::vector<YamlSection>& sections);

// One step of iteration: the item itself for a sequence, the value for a map.
struct YamlEntry : Yaml {
  Yaml first, second;
};

}  // namespace steerdns::common
