// EDNS(0) options of a query (RFC 6891 §6.1.2): EDNS Client Subnet (RFC
// 7871), DNS Cookies (RFC 7873), NSID (RFC 5001) and edns-tcp-keepalive
// (RFC 7828); the part of the packet parser that reads OPT RDATA.
// Hot path: noexcept, no allocation, bounds-checked on untrusted input.
// answer() uses it; it is here so that it can be tested and fuzzed alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace steerdns::server {

inline constexpr std::uint16_t kOptionNsid = 3;        // RFC 5001
inline constexpr std::uint16_t kOptionEcs = 8;         // EDNS Client Subnet (RFC 7871)
inline constexpr std::uint16_t kOptionCookie = 10;     // RFC 7873
inline constexpr std::uint16_t kOptionKeepalive = 11;  // edns-tcp-keepalive (RFC 7828)

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

// The COOKIE option of a query: the client cookie (8 octets), then the
// server cookie (8 to 32 octets) when the client has one.
struct Cookie {
  static constexpr std::size_t kClient = 8, kMaxServer = 32;
  bool present = false;
  std::uint8_t size = 0;  // kClient, or kClient + 8 to 32
  std::uint8_t data[kClient + kMaxServer] = {};
  const std::uint8_t* client() const noexcept { return data; }
  const std::uint8_t* server() const noexcept { return data + kClient; }
  std::size_t server_size() const noexcept { return size - kClient; }
};

// Reads one COOKIE option's data into COOKIE. False (FORMERR, RFC 7873
// §5.2.2) for a second one, or a length that is not 8 or 16 to 40.
inline bool read_cookie(Cookie& cookie, const std::uint8_t* data, std::size_t len) noexcept {
  if (cookie.present) return false;
  if (len != Cookie::kClient && (len < Cookie::kClient + 8 || len > sizeof cookie.data)) return false;
  cookie.present = true;
  cookie.size = static_cast<std::uint8_t>(len);
  std::memcpy(cookie.data, data, len);
  return true;
}

// What a query asks of EDNS, read from its OPT record's options.
struct EdnsOptions {
  ClientSubnet ecs;
  Cookie cookie;
  bool nsid = false;       // the client asks for our NSID
  bool keepalive = false;  // the client offers edns-tcp-keepalive
  // It came with a TIMEOUT, which a client must not send: FORMERR over
  // TCP; over UDP the option is ignored (RFC 7828 §3.2.1).
  bool keepalive_timeout = false;
};

// Walks the options of an OPT record's RDATA (LEN octets at DATA) into
// OUT; unknown options are ignored (RFC 6891 §6.1.2). False (FORMERR) when
// an option overruns the RDATA, or the ECS or COOKIE option is bad
// (read_ecs, read_cookie). NSID's data, which a query should not carry, is
// ignored (RFC 5001 §2.1).
inline bool read_opt_options(const std::uint8_t* data, std::size_t len, EdnsOptions& out) noexcept {
  std::size_t at = 0;
  while (at < len) {
    if (len - at < 4) return false;
    const std::uint16_t code = static_cast<std::uint16_t>(data[at] << 8 | data[at + 1]);
    const std::size_t option_len = static_cast<std::size_t>(data[at + 2] << 8 | data[at + 3]);
    if (len - at - 4 < option_len) return false;
    const std::uint8_t* value = data + at + 4;
    switch (code) {
      case kOptionEcs:
        if (!read_ecs(out.ecs, value, option_len)) return false;
        break;
      case kOptionCookie:
        if (!read_cookie(out.cookie, value, option_len)) return false;
        break;
      case kOptionNsid: out.nsid = true; break;
      case kOptionKeepalive:
        out.keepalive = true;
        if (option_len != 0) out.keepalive_timeout = true;
        break;
      default: break;
    }
    at += 4 + option_len;
  }
  return true;
}

}  // namespace steerdns::server
