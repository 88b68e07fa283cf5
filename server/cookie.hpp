// DNS Cookies (RFC 7873) with interoperable server cookies (RFC 9018):
// version 1, a 32-bit timestamp and SipHash-2-4 of the client cookie, the
// version, reserved octets, timestamp and client address under a 128-bit
// secret. Every instance holding the same secret makes and accepts the same
// cookies, so several instances behind one address (or anycast) work as
// one. Hot path: noexcept, no allocation; the clock is the caller's.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "server/edns.hpp"

namespace steerdns::server {

// SipHash-2-4 (Aumasson and Bernstein) of LEN octets at DATA under KEY: 8
// octets, written to OUT in the algorithm's (little-endian) order.
void siphash24(const std::uint8_t key[16], const std::uint8_t* data, std::size_t len,
               std::uint8_t out[8]) noexcept;

inline constexpr std::size_t kServerCookie = 16;  // version, reserved, timestamp, hash

using CookieSecret = std::array<std::uint8_t, 16>;

// The secrets of a world: the current one makes cookies; a previous one
// (during a rollover) is still accepted, and what it made is replaced.
struct CookieSecrets {
  bool enabled = false;
  CookieSecret current{};
  bool has_previous = false;
  CookieSecret previous{};
};

// A random secret (the default when the config names no secret file).
CookieSecret random_cookie_secret();

// Reads a secret file: one line of 32 hexadecimal digits, the current
// secret; optionally a second, the previous one. Blank lines and '#'
// comments are skipped. Throws common::LoadError (file:line:reason).
CookieSecrets read_cookie_secrets(const std::string& path);

// What a query's COOKIE option was worth.
enum class CookieState : std::uint8_t {
  none,         // no COOKIE option (or cookies are off)
  client_only,  // a client cookie alone: the client's first query to us
  valid,        // our server cookie for this client and address, fresh
  invalid,      // a server cookie we did not make, for another address, or stale
};

// RFC 9018 §4.3: a cookie older than an hour or more than five minutes
// ahead of our clock is stale; past half an hour it is replaced.
inline constexpr std::uint32_t kCookieLifetime = 3600, kCookieFuture = 300, kCookieRefresh = 1800;

struct CookieVerdict {
  CookieState state = CookieState::none;
  // The server cookie to send back with the client cookie.
  std::uint8_t server[kServerCookie] = {};
};

// Checks COOKIE (a present one) from SOURCE (nullptr: an empty address) at
// NOW (seconds since the epoch) and picks the server cookie to return: the
// one sent when it is valid under the current secret and not yet due for a
// refresh, else a new one made at NOW.
CookieVerdict check_cookie(const CookieSecrets& secrets, const Cookie& cookie, const sockaddr_storage* source,
                           std::uint32_t now) noexcept;

// The server cookie for CLIENT_COOKIE (8 octets) from SOURCE at TIMESTAMP.
void make_server_cookie(const CookieSecret& secret, const std::uint8_t* client_cookie,
                        const sockaddr_storage* source, std::uint32_t timestamp,
                        std::uint8_t out[kServerCookie]) noexcept;

}  // namespace steerdns::server
