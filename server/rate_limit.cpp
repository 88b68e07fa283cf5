#include "server/rate_limit.hpp"

#include <bit>
#include <cstring>
#include <random>

#include "server/source.hpp"
#include "zones/name.hpp"

namespace steerdns::server {

namespace {

constexpr std::size_t kHeader = 12;

// A bucket word: tag (24 bits) | second (16 bits) | count (24 bits).
constexpr std::uint64_t kCountMask = 0xFFFFFF;
constexpr std::uint64_t kSecondMask = 0xFFFF;

std::uint64_t mix(std::uint64_t h, std::uint64_t v) noexcept {
  h ^= v + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
  h *= 0xBF58476D1CE4E5B9ULL;
  return h ^ (h >> 31);
}

// CLIENT's address cut to the counted prefix; false for another family.
bool client_network(const sockaddr_storage& client, unsigned v4_prefix, unsigned v6_prefix,
                    geoip::Network& out) noexcept {
  if (!source_address(client, out.v6, out.address)) return false;
  out.prefix = static_cast<std::uint8_t>(out.v6 ? v6_prefix : v4_prefix);
  out.address &= geoip::prefix_mask(out.v6, out.prefix);
  return true;
}

}  // namespace

std::string_view response_kind_name(ResponseKind kind) noexcept {
  switch (kind) {
    case ResponseKind::answer: return "answer";
    case ResponseKind::geo_answer: return "geo_answer";
    case ResponseKind::nodata: return "nodata";
    case ResponseKind::nxdomain: return "nxdomain";
    case ResponseKind::referral: return "referral";
    case ResponseKind::error: return "error";
  }
  return "answer";
}

unsigned RateLimitConfig::rate(ResponseKind kind) const noexcept {
  switch (kind) {
    case ResponseKind::geo_answer: return geo_answers_per_second;
    case ResponseKind::nxdomain: return nxdomains_per_second;
    case ResponseKind::error: return errors_per_second;
    default: return responses_per_second;
  }
}

ResponseKind classify_response(std::span<const std::uint8_t> response, const AnswerInfo& info) noexcept {
  if (info.rcode == rcode::NXDOMAIN) return ResponseKind::nxdomain;
  if (info.rcode != rcode::NOERROR || response.size() < kHeader) return ResponseKind::error;
  const unsigned an = response[6] << 8 | response[7];
  const unsigned ns = response[8] << 8 | response[9];
  const bool aa = (response[2] & 0x04) != 0;
  if (an > 0) return info.region != AnswerInfo::kNoRegion ? ResponseKind::geo_answer : ResponseKind::answer;
  if (!aa && ns > 0) return ResponseKind::referral;
  return ResponseKind::nodata;
}

std::size_t slip_response(std::span<std::uint8_t> response, std::size_t size) noexcept {
  if (size < kHeader) return size;
  std::size_t end = kHeader;
  const unsigned qdcount = response[4] << 8 | response[5];
  if (qdcount == 1) {
    while (end < size && response[end] != 0 && (response[end] & 0xC0) == 0) end += 1 + response[end];
    end += 1 + 4;  // root label, QTYPE, QCLASS
    if (end > size) {
      end = kHeader;
      response[4] = response[5] = 0;
    }
  }
  response[2] |= 0x02;                     // TC
  std::memset(response.data() + 6, 0, 6);  // no answer, authority or additional
  return end;
}

RateLimiter::RateLimiter(const RateLimitConfig& config)
    : config_(config),
      mask_(std::bit_ceil(std::max<std::size_t>(config.table_size, 1024)) - 1),
      table_(std::make_unique<std::atomic<std::uint64_t>[]>(mask_ + 1)) {
  std::random_device random;
  seed_ = (std::uint64_t{random()} << 32) ^ random();
}

bool RateLimiter::exempt(const sockaddr_storage& client) const noexcept {
  if (config_.exempt.empty()) return false;
  geoip::Network host;
  if (!client_network(client, 32, 128, host)) return false;
  for (const auto& network : config_.exempt)
    if (network.contains(host)) return true;
  return false;
}

std::string RateLimiter::network_text(const sockaddr_storage& client) const {
  geoip::Network n;
  if (!client_network(client, config_.ipv4_prefix, config_.ipv6_prefix, n)) return "?";
  return n.text();
}

RateLimiter::Verdict RateLimiter::check(const sockaddr_storage& client,
                                        std::span<const std::uint8_t> response, const AnswerInfo& info,
                                        std::uint64_t now_ms) noexcept {
  Verdict v;
  v.kind = classify_response(response, info);
  if (info.cookie == CookieState::valid) return v;
  const unsigned rate = config_.rate(v.kind);
  if (rate == 0) return v;
  geoip::Network network;
  if (!client_network(client, config_.ipv4_prefix, config_.ipv6_prefix, network) || exempt(client)) return v;

  // The bucket: network and kind; answers and NODATA also by question (name
  // and type), geo answers by question and region, NXDOMAIN and referrals
  // by zone (a flood of random names in one zone is one bucket), errors by
  // network alone.
  std::uint64_t h = mix(seed_, static_cast<std::uint64_t>(v.kind) << 8 | (network.v6 ? 1 : 0));
  h = mix(h, static_cast<std::uint64_t>(network.address));
  h = mix(h, static_cast<std::uint64_t>(network.address >> 64));
  if (v.kind == ResponseKind::geo_answer) h = mix(h, std::uint64_t{info.geo} << 8 | info.region);
  if (v.kind == ResponseKind::answer || v.kind == ResponseKind::geo_answer ||
      v.kind == ResponseKind::nodata) {
    std::uint64_t chunk = 0;
    int filled = 0;
    std::size_t pos = kHeader;
    while (pos < response.size() && response[pos] != 0 && (response[pos] & 0xC0) == 0) {
      const std::size_t end = std::min(response.size(), pos + 1 + response[pos]);
      for (; pos < end; ++pos) {
        chunk = chunk << 8 | zones::ascii_lower(response[pos]);
        if (++filled == 8) {
          h = mix(h, chunk);
          chunk = 0;
          filled = 0;
        }
      }
    }
    h = mix(h, chunk);
    h = mix(h, info.qtype);
  } else if (v.kind != ResponseKind::error) {
    for (const char c : info.zone) h = mix(h, static_cast<std::uint8_t>(c));
  }

  std::atomic<std::uint64_t>& bucket = table_[h & mask_];
  const std::uint64_t tag = (h >> 40) & 0xFFFFFF;
  const std::uint64_t second = (now_ms / 1000) & kSecondMask;
  std::uint64_t old = bucket.load(std::memory_order_relaxed);
  std::uint64_t count;
  for (;;) {
    const bool same = (old >> 40) == tag && ((old >> 24) & kSecondMask) == second;
    count = same ? std::min<std::uint64_t>((old & kCountMask) + 1, kCountMask) : 1;
    const std::uint64_t next = tag << 40 | second << 24 | count;
    if (bucket.compare_exchange_weak(old, next, std::memory_order_relaxed)) break;
  }
  if (count <= rate) return v;
  v.limited = true;
  v.started = count == std::uint64_t{rate} + 1;
  if (config_.log_only) return v;
  const std::uint64_t over = count - rate;
  v.action = config_.slip > 0 && over % config_.slip == 0 ? RateAction::slip : RateAction::drop;
  return v;
}

}  // namespace steerdns::server
