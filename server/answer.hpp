// answer(): the core of steerdns. A pure function from (world, query bytes)
// to response bytes: no I/O, clock, lock, log or allocation, noexcept. Any
// number of workers call it concurrently on the same world.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <sys/socket.h>

#include "server/cookie.hpp"
#include "server/edns.hpp"
#include "server/world.hpp"

namespace steerdns::server {

enum class Transport : std::uint8_t { udp, tcp };

namespace rcode {
inline constexpr std::uint16_t NOERROR = 0, FORMERR = 1, SERVFAIL = 2, NXDOMAIN = 3, NOTIMP = 4, REFUSED = 5,
                               NOTAUTH = 9, BADVERS = 16, BADCOOKIE = 23;
}

struct AnswerInfo {
  std::size_t size = 0;     // bytes written to out; 0 means: send nothing (drop)
  std::uint16_t qtype = 0;  // 0 when the question could not be read
  std::uint16_t rcode = 0;  // extended rcode (BADVERS = 16, BADCOOKIE = 23)
  bool truncated = false;
  // Geo answers: not the client's first region with every VIP up (or an
  // all-down policy), so the degraded TTL applies; all_down: the policy fired.
  bool degraded = false;
  bool all_down = false;
  // Geo answers (metrics): the geo name (GeoName::id) and the index in its
  // regions of the region answered; kNoRegion when none was (NODATA or
  // SERVFAIL by an all-down policy, or everything forced down).
  static constexpr std::uint32_t kNoGeo = UINT32_MAX;
  static constexpr std::uint8_t kNoRegion = UINT8_MAX;
  std::uint32_t geo = kNoGeo;
  std::uint8_t region = kNoRegion;
  // The apex (wire format) of the zone that answered; empty when none did.
  // Points into the world: valid while the caller holds it.
  std::string_view zone;
  std::uint16_t qclass = 0;
  // What the query's COOKIE was worth (CookieState::none without one, or
  // with cookies off): the rate limiter never limits a valid one.
  CookieState cookie = CookieState::none;
  // The query's EDNS Client Subnet (present: false without one) and the
  // scope answered (query log, dnstap).
  ClientSubnet ecs;
  std::uint8_t ecs_scope = 0;
};

// The smallest OUT buffer answer() accepts; TCP needs kMaxTcpMessage.
inline constexpr std::size_t kMinAnswerBuffer = 512;
inline constexpr std::size_t kMaxTcpMessage = 65535;

// SOURCE is the packet's source address; geo names place the client by it
// when the query carries no EDNS Client Subnet, and server cookies are made
// for it (nullptr: unknown). HEALTH is the health table of the world's slots
// (see World::geo_health). NOW is the time in seconds since the epoch, for
// server cookies (answer() reads no clock).
AnswerInfo answer(const World& world, const health::Table& health, std::span<const std::uint8_t> query,
                  std::span<std::uint8_t> out, Transport transport, const sockaddr_storage* source = nullptr,
                  std::uint32_t now = 0) noexcept;

// As above with every VIP up: tests, and worlds built without a prober.
AnswerInfo answer(const World& world, std::span<const std::uint8_t> query, std::span<std::uint8_t> out,
                  Transport transport, const sockaddr_storage* source = nullptr,
                  std::uint32_t now = 0) noexcept;

}  // namespace steerdns::server
