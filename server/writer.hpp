// Writer: appends to a DNS message under construction with a hard size
// limit and RFC 1035 §4.1.4 name compression. Hot path: noexcept, no
// allocation; every put returns false instead of writing past the limit, and
// the caller rolls back to a mark.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "zones/name.hpp"
#include "zones/zone.hpp"

namespace steerdns::server {

class Writer {
 public:
  // Offsets of names (and their suffixes) we may point at. Answers hold a
  // handful of names; past this many we simply stop compressing against more.
  static constexpr int kMaxTargets = 48;

  struct Mark {
    std::size_t size;
    int targets;
  };

  Writer(std::uint8_t* buf, std::size_t limit) noexcept : buf_(buf), limit_(limit) {}

  std::size_t size() const noexcept { return size_; }
  std::uint8_t* data() noexcept { return buf_; }
  void set_limit(std::size_t limit) noexcept { limit_ = limit; }
  Mark mark() const noexcept { return {size_, n_targets_}; }
  void rollback(Mark m) noexcept {
    size_ = m.size;
    n_targets_ = m.targets;
  }

  bool put(const void* p, std::size_t n) noexcept {
    if (size_ + n > limit_) return false;
    std::memcpy(buf_ + size_, p, n);
    size_ += n;
    return true;
  }
  bool put_u16(std::uint16_t v) noexcept {
    const std::uint8_t b[2] = {static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
    return put(b, 2);
  }
  void patch_u16(std::size_t at, std::uint16_t v) noexcept {
    buf_[at] = static_cast<std::uint8_t>(v >> 8);
    buf_[at + 1] = static_cast<std::uint8_t>(v);
  }

  void patch_u32(std::size_t at, std::uint32_t v) noexcept {
    patch_u16(at, static_cast<std::uint16_t>(v >> 16));
    patch_u16(at + 2, static_cast<std::uint16_t>(v));
  }

  // Makes the uncompressed name at OFFSET (already written) and all its
  // suffixes available as compression targets.
  void add_targets(std::size_t offset) noexcept {
    while (buf_[offset] != 0 && (buf_[offset] & 0xC0) == 0) {
      add_target(offset);
      offset += 1 + buf_[offset];
    }
  }

  // Writes a lower-cased wire NAME, pointing at the longest suffix already
  // in the message (case-insensitively, so the question's case survives).
  bool put_name(std::string_view name) noexcept {
    for (std::size_t i = 0; i < name.size() && name[i] != 0; i += 1 + static_cast<std::uint8_t>(name[i])) {
      const int t = find_target(name.substr(i));
      if (t < 0) continue;
      const std::size_t start = size_;
      if (!put(name.data(), i) || !put_u16(static_cast<std::uint16_t>(0xC000 | targets_[t]))) return false;
      add_targets(start);
      return true;
    }
    const std::size_t start = size_;
    if (!put(name.data(), name.size())) return false;
    add_targets(start);
    return true;
  }

 private:
  void add_target(std::size_t offset) noexcept {
    if (offset < 0x4000 && n_targets_ < kMaxTargets)
      targets_[n_targets_++] = static_cast<std::uint16_t>(offset);
  }

  int find_target(std::string_view suffix) const noexcept {
    for (int t = 0; t < n_targets_; ++t)
      if (equals_at(targets_[t], suffix)) return t;
    return -1;
  }

  // Does the (possibly compressed) name at AT equal the lower-cased NAME?
  // Only our own, backward-pointing names are ever targets, so the walk ends.
  bool equals_at(std::size_t at, std::string_view name) const noexcept {
    std::size_t i = 0;
    for (int hops = 0; hops < 64;) {
      const std::uint8_t len = buf_[at];
      if ((len & 0xC0) == 0xC0) {
        at = static_cast<std::size_t>((len & 0x3F) << 8 | buf_[at + 1]);
        ++hops;
        continue;
      }
      if (i >= name.size() || len != static_cast<std::uint8_t>(name[i])) return false;
      if (len == 0) return true;
      for (std::size_t k = 1; k <= len; ++k)
        if (zones::ascii_lower(buf_[at + k]) != static_cast<std::uint8_t>(name[i + k])) return false;
      at += 1 + len;
      i += 1 + len;
    }
    return false;
  }

  std::uint8_t* buf_;
  std::size_t limit_;
  std::size_t size_ = 0;
  std::uint16_t targets_[kMaxTargets];
  int n_targets_ = 0;
};

// Appends every record of RRSET with owner OWNER (a lower-cased wire name),
// or with a pointer to the question name when OWNER is empty, with TTL in
// place of the rrset's own when it is not kKeepTtl. Returns false when it
// does not fit; the caller rolls back.
inline constexpr std::uint32_t kKeepTtl = UINT32_MAX;
bool put_rrset(Writer& w, std::string_view owner, const zones::RRset& rrset,
               std::uint32_t ttl = kKeepTtl) noexcept;

}  // namespace steerdns::server
