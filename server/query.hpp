// The query parser: header, question and OPT (with EDNS Client Subnet,
// server/edns.hpp) of one DNS message read into a Query, without
// allocation. Hot path: noexcept, bounds-checked on untrusted input. The
// question name is lower-cased into the Query; the packet is not copied
// (Query::packet points into it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "server/edns.hpp"

namespace steerdns::server {

inline constexpr std::size_t kHeader = 12;  // octets of a DNS header

// Query types and classes no zone holds (zones::rrtype names those it does).
namespace qtype {
inline constexpr std::uint16_t TKEY = 249, TSIG = 250, IXFR = 251, AXFR = 252, MAILB = 253, MAILA = 254,
                               ANY = 255;
}
namespace qclass {
inline constexpr std::uint16_t IN = 1, CH = 3, ANY = 255;
}

inline std::uint16_t read_u16(const std::uint8_t* p) noexcept {
  return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}

// ok: answer it. drop: not a query (shorter than a header, or QR=1): send
// nothing. formerr / notimp: answer with that rcode (the question and OPT,
// when they were read whole, are still in the Query).
enum class Parse : std::uint8_t { ok, drop, formerr, notimp };

// One query as parse_query() read it.
struct Query {
  const std::uint8_t* packet = nullptr;
  std::size_t size = 0;
  std::size_t question_end = 0;  // 0 until the question was read whole
  std::uint8_t qname[255];       // lower-cased wire
  std::size_t qname_size = 0;
  std::uint16_t qtype = 0, qclass = 0;
  bool edns = false;
  std::uint8_t edns_version = 0;
  bool edns_do = false;
  std::uint16_t edns_payload = 512;
  EdnsOptions options;  // ECS, cookie, NSID and keepalive (server/edns.hpp)
  // A TSIG record (RFC 8945), the last of the message: its offset and size
  // (0 when none), and inside it the algorithm name and the fields after
  // the MAC (Original ID, Error, Other Len, Other Data). Owner and
  // algorithm are uncompressed, as RFC 8945 §4.2 requires.
  std::size_t tsig_at = 0, tsig_size = 0;
  std::size_t tsig_algorithm_at = 0, tsig_algorithm_size = 0;
  std::size_t tsig_after_mac_at = 0;
  std::string_view name() const noexcept { return {reinterpret_cast<const char*>(qname), qname_size}; }
};

// Reads IN into Q. Every record is walked (bounds), the OPT record in the
// additional section read (one at most, owned by the root), a TSIG record
// located (only as the last record: RFC 8945 §5.1); other opcodes than
// QUERY are notimp after their question and OPT were read, so that the
// reply can carry OPT (RFC 6891 §7).
Parse parse_query(std::span<const std::uint8_t> in, Query& q) noexcept;

}  // namespace steerdns::server
