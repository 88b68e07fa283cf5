// The parts of a reply around its records: the header, our OPT record with
// the options we send back (ECS, cookie, NSID, edns-tcp-keepalive), the
// TSIG record of an error (RFC 8945), and the CHAOS-class identity answers
// (id.server, hostname.bind, version.bind). answer() (server/answer.cpp)
// decides; these write. Hot path: noexcept, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "server/cookie.hpp"
#include "server/query.hpp"
#include "server/world.hpp"
#include "server/writer.hpp"

namespace steerdns::server {

// What the reply holds, as answer() decides it.
struct Sections {
  std::uint16_t an = 0, ns = 0, ar = 0;
  std::uint16_t rcode = 0;     // extended: the upper bits go to OPT
  std::uint8_t ecs_scope = 0;  // SCOPE PREFIX-LENGTH of the echoed ECS option
  bool aa = false, tc = false;
  bool copy_cd = true;  // CD is copied (RFC 6840 §5.9), but not for an opcode we do not know
  bool degraded = false, all_down = false;
  std::uint32_t geo = UINT32_MAX;
  std::uint8_t region = UINT8_MAX;
};

// The options of our OPT record; the sizes are known before the records are
// written, so that the records leave room for them.
struct ReplyOptions {
  const ClientSubnet* ecs = nullptr;            // echoed, with Sections::ecs_scope
  const std::uint8_t* client_cookie = nullptr;  // with server_cookie: the COOKIE option
  const std::uint8_t* server_cookie = nullptr;
  std::string_view nsid;      // empty: no NSID option
  bool keepalive = false;     // edns-tcp-keepalive with TIMEOUT
  std::uint16_t timeout = 0;  // in units of 100 ms
  // The OPT record with these options, in octets.
  std::size_t size() const noexcept;
};

// Appends our OPT record (RFC 6891 §6.1.2): PAYLOAD, the upper bits of
// RCODE, DO as DO_BIT (copied: RFC 3225 §3), and OPTIONS, ECS with SCOPE.
bool put_opt(Writer& w, std::uint16_t payload, bool do_bit, std::uint16_t rcode, const ReplyOptions& options,
             std::uint8_t scope) noexcept;

// Writes the header of the reply to QUERY at OUT: its ID, QR, its opcode
// and RD, AA and TC as decided, RA never; CD as S says; the counts.
void put_header(std::uint8_t* out, const std::uint8_t* query, const Sections& s,
                std::uint16_t qdcount) noexcept;

// The TSIG record of an unsigned error reply to Q's TSIG (RFC 8945 §5.3.2):
// its key name and algorithm, Time Signed and Fudge copied, no MAC, the
// Original ID, ERROR. tsig_error_size(): its size in octets.
inline constexpr std::uint16_t kTsigBadKey = 17;
std::size_t tsig_error_size(const Query& q) noexcept;
bool put_tsig_error(Writer& w, const Query& q, std::uint16_t error) noexcept;

// A CHAOS-class question (RFC 4892): id.server and hostname.bind answer
// WORLD's identity, version.bind and version.server its version, as one TXT
// record with TTL 0; another type of those names is NODATA. False: not a
// name we answer (REFUSED), or an empty identity or version.
bool answer_chaos(const World& world, const Query& q, Writer& w, Sections& s) noexcept;

}  // namespace steerdns::server
