#include "server/cookie.hpp"

#include <netinet/in.h>

#include <cstring>
#include <fstream>
#include <random>

#include "common/load_error.hpp"
#include "server/source.hpp"

namespace steerdns::server {

namespace {

std::uint64_t rotl(std::uint64_t x, int b) noexcept { return (x << b) | (x >> (64 - b)); }

std::uint64_t load_le(const std::uint8_t* p, std::size_t n) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t{p[i]} << (8 * i);
  return v;
}

struct SipState {
  std::uint64_t v0, v1, v2, v3;
  void round() noexcept {
    v0 += v1;
    v1 = rotl(v1, 13);
    v1 ^= v0;
    v0 = rotl(v0, 32);
    v2 += v3;
    v3 = rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl(v1, 17);
    v1 ^= v2;
    v2 = rotl(v2, 32);
  }
  void absorb(std::uint64_t m) noexcept {
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
};

// The client address as the hash covers it: 4 octets for IPv4 (and
// IPv4-mapped IPv6, as source_address() reads it), 16 for IPv6, none when
// unknown.
std::size_t client_ip(const sockaddr_storage* source, std::uint8_t out[16]) noexcept {
  bool v6 = false;
  geoip::Address6 address = 0;
  if (source == nullptr || !source_address(*source, v6, address)) return 0;
  const std::size_t size = v6 ? 16 : 4;
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<std::uint8_t>(address >> (8 * (size - 1 - i)));
  return size;
}

std::uint32_t read_u32(const std::uint8_t* p) noexcept {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

// Serial number arithmetic (RFC 1982) on 32-bit timestamps: how far T lies
// behind NOW (negative: ahead).
std::int64_t age(std::uint32_t t, std::uint32_t now) noexcept { return static_cast<std::int32_t>(now - t); }

bool hex_secret(const std::string& text, CookieSecret& out) {
  if (text.size() != 32) return false;
  for (std::size_t i = 0; i < 16; ++i) {
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    const int hi = nibble(text[2 * i]), lo = nibble(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return true;
}

}  // namespace

void siphash24(const std::uint8_t key[16], const std::uint8_t* data, std::size_t len,
               std::uint8_t out[8]) noexcept {
  const std::uint64_t k0 = load_le(key, 8), k1 = load_le(key + 8, 8);
  SipState s{k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL, k0 ^ 0x6c7967656e657261ULL,
             k1 ^ 0x7465646279746573ULL};
  const std::size_t whole = len - len % 8;
  for (std::size_t i = 0; i < whole; i += 8) s.absorb(load_le(data + i, 8));
  s.absorb(load_le(data + whole, len % 8) | std::uint64_t{static_cast<std::uint8_t>(len)} << 56);
  s.v2 ^= 0xFF;
  for (int i = 0; i < 4; ++i) s.round();
  const std::uint64_t h = s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
  for (int i = 0; i < 8; ++i) out[i] = static_cast<std::uint8_t>(h >> (8 * i));
}

CookieSecret random_cookie_secret() {
  std::random_device random;
  CookieSecret secret;
  for (std::size_t i = 0; i < secret.size(); i += 4) {
    const std::uint32_t r = random();
    std::memcpy(secret.data() + i, &r, 4);
  }
  return secret;
}

CookieSecrets read_cookie_secrets(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw common::LoadError(path, 0, "cannot read the cookie secret file");
  CookieSecrets secrets;
  secrets.enabled = true;
  std::string line;
  int number = 0, found = 0;
  while (std::getline(in, line)) {
    ++number;
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    const auto last = line.find_last_not_of(" \t\r");
    const std::string text = line.substr(first, last - first + 1);
    if (found == 2)
      throw common::LoadError(path, number,
                              "a third secret: the file holds the current and the previous one");
    CookieSecret& target = found == 0 ? secrets.current : secrets.previous;
    if (!hex_secret(text, target))
      throw common::LoadError(path, number, "a cookie secret is 32 hexadecimal digits (128 bits)");
    ++found;
  }
  if (found == 0) throw common::LoadError(path, 0, "no cookie secret (32 hexadecimal digits)");
  secrets.has_previous = found == 2;
  return secrets;
}

void make_server_cookie(const CookieSecret& secret, const std::uint8_t* client_cookie,
                        const sockaddr_storage* source, std::uint32_t timestamp,
                        std::uint8_t out[kServerCookie]) noexcept {
  // Client Cookie | Version | Reserved | Timestamp | Client-IP (RFC 9018 §4.4).
  std::uint8_t input[Cookie::kClient + 8 + 16];
  std::memcpy(input, client_cookie, Cookie::kClient);
  std::uint8_t* head = input + Cookie::kClient;
  head[0] = 1;
  head[1] = head[2] = head[3] = 0;
  head[4] = static_cast<std::uint8_t>(timestamp >> 24);
  head[5] = static_cast<std::uint8_t>(timestamp >> 16);
  head[6] = static_cast<std::uint8_t>(timestamp >> 8);
  head[7] = static_cast<std::uint8_t>(timestamp);
  const std::size_t ip = client_ip(source, head + 8);
  std::memcpy(out, head, 8);
  siphash24(secret.data(), input, Cookie::kClient + 8 + ip, out + 8);
}

CookieVerdict check_cookie(const CookieSecrets& secrets, const Cookie& cookie, const sockaddr_storage* source,
                           std::uint32_t now) noexcept {
  CookieVerdict v;
  v.state = CookieState::client_only;
  if (cookie.server_size() > 0) {
    v.state = CookieState::invalid;
    const std::uint8_t* sent = cookie.server();
    if (cookie.server_size() == kServerCookie && sent[0] == 1 && sent[1] == 0 && sent[2] == 0 &&
        sent[3] == 0) {
      const std::uint32_t timestamp = read_u32(sent + 4);
      const std::int64_t behind = age(timestamp, now);
      if (behind <= kCookieLifetime && behind >= -static_cast<std::int64_t>(kCookieFuture)) {
        std::uint8_t expected[kServerCookie];
        make_server_cookie(secrets.current, cookie.client(), source, timestamp, expected);
        if (std::memcmp(expected, sent, kServerCookie) == 0) {
          v.state = CookieState::valid;
          if (behind < kCookieRefresh) {
            std::memcpy(v.server, sent, kServerCookie);
            return v;
          }
        } else if (secrets.has_previous) {
          make_server_cookie(secrets.previous, cookie.client(), source, timestamp, expected);
          if (std::memcmp(expected, sent, kServerCookie) == 0) v.state = CookieState::valid;
        }
      }
    }
  }
  make_server_cookie(secrets.current, cookie.client(), source, now, v.server);
  return v;
}

}  // namespace steerdns::server
