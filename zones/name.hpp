// Domain names as the zone table stores them: uncompressed wire format,
// lower-cased (RFC 4343), so that equality is byte equality and hashing is
// cheap. All functions here are pure and noexcept except the text
// conversions, which run at load only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace steerdns::zones {

// Lower-cased uncompressed wire name, e.g. "\3www\7example\3com\0".
using WireName = std::string;

inline constexpr std::uint8_t ascii_lower(std::uint8_t c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<std::uint8_t>(c + 32) : c;
}

// The name with its first label removed; the root stays the root.
inline std::string_view parent_name(std::string_view name) noexcept {
  if (name.size() <= 1) return name;
  return name.substr(1 + static_cast<std::uint8_t>(name[0]));
}

inline int label_count(std::string_view name) noexcept {
  int n = 0;
  for (std::size_t i = 0; i < name.size() && name[i] != 0; i += 1 + static_cast<std::uint8_t>(name[i])) ++n;
  return n;
}

// True when NAME equals ANCESTOR or lies below it (label-aligned suffix).
inline bool is_at_or_below(std::string_view name, std::string_view ancestor) noexcept {
  while (name.size() > ancestor.size()) name = parent_name(name);
  return name == ancestor;
}

inline bool is_wildcard(std::string_view name) noexcept {
  return name.size() >= 2 && name[0] == 1 && name[1] == '*';
}

struct NameHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view name) const noexcept {
    // FNV-1a: names are short, and this is branch-free per byte.
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
    return static_cast<std::size_t>(h);
  }
};

// Presentation text ("www.Example.com", relative names are not completed
// here) to a lower-cased wire name; nullopt when it is not a valid name.
std::optional<WireName> name_from_text(std::string_view text);

// Wire name to presentation text with a trailing dot ("www.example.com.").
std::string name_to_text(std::string_view wire);

}  // namespace steerdns::zones
