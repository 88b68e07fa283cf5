// EDNS(0) options of a query (RFC 6891 §6.1.2) and the EDNS Client Subnet
// option (RFC 7871): the part of the packet parser that reads OPT RDATA.
// Hot path: noexcept, no allocation, bounds-checked on untrusted input.
// answer() uses it; it is here so that it can be tested and fuzzed alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace steerdns::server {

inline constexpr std::uint16_t kOptionEcs = 8;  // EDNS Client Subnet (RFC 7871)

// The EDNS Client Subnet option of a query, validated. When present:
// family is 1 (IPv4) or 2 (IPv6), source is at most 32 or 128, address
// holds address_size() octets and no bit set beyond the source prefix,
// and the rest of address is zero.
struct ClientSubnet {
  bool present = false;
  std::uint16_t family = 0;  // 1 = IPv4, 2 = IPv6
  std::uint8_t source = 0;   // SOURCE PREFIX-LENGTH
  std::uint8_t address[16] = {};
  std::size_t address_size() const noexcept { return (source + 7u) / 8u; }
  unsigned max_bits() const noexcept { return family == 1 ? 32 : family == 2 ? 128 : 0; }
};

// Reads one ECS option's data (LEN octets at DATA) into ECS. False (the
// query is FORMERR, RFC 7871 §7.1.1) for a second ECS option, an unknown
// family, a source prefix longer than the family's address, a non-zero
// scope in a query, an address of the wrong length, or address bits set
// beyond the source prefix.
inline bool read_ecs(ClientSubnet& ecs, const std::uint8_t* data, std::size_t len) noexcept {
  if (ecs.present || len < 4) return false;
  ClientSubnet out;
  out.family = static_cast<std::uint16_t>(data[0] << 8 | data[1]);
  out.source = data[2];
  const std::uint8_t scope = data[3];
  const unsigned max_bits = out.max_bits();
  if (max_bits == 0 || out.source > max_bits || scope != 0) return false;
  if (len - 4 != out.address_size()) return false;
  std::memcpy(out.address, data + 4, len - 4);
  if (out.source % 8 != 0 && (out.address[out.source / 8] & (0xFF >> (out.source % 8))) != 0) return false;
  out.present = true;
  ecs = out;
  return true;
}

// Walks the options of an OPT record's RDATA (LEN octets at DATA): ECS
// into ECS, every other option ignored (RFC 6891 §6.1.2). False (FORMERR)
// when an option overruns the RDATA or the ECS option is bad (read_ecs).
inline bool read_opt_options(const std::uint8_t* data, std::size_t len, ClientSubnet& ecs) noexcept {
  std::size_t at = 0;
  while (at < len) {
    if (len - at < 4) return false;
    const std::uint16_t code = static_cast<std::uint16_t>(data[at] << 8 | data[at + 1]);
    const std::size_t option_len = static_cast<std::size_t>(data[at + 2] << 8 | data[at + 3]);
    if (len - at - 4 < option_len) return false;
    if (code == kOptionEcs && !read_ecs(ecs, data + at + 4, option_len)) return false;
    at += 4 + option_len;
  }
  return true;
}

}  // namespace steerdns::server
