// Response rate limiting (RRL) for UDP, in the manner of BIND's and Knot's:
// answers are counted per client network (a /24 or /56 by default) and
// response kind, and for answers and NODATA also per question, so a
// resolver asking many different names is not limited while a flood of
// one answer towards a spoofed victim is. Geo answers are counted per
// client network, question and answered region, at a rate of their own: a
// resolver asking one geo name for many client subnets (ECS) gets one small
// answer per region, which is what a spoofed victim would receive, and a
// busy resolver must never be cut off. Past the kind's rate in one second,
// every SLIP-th limited response goes out as an empty TC=1 answer (a real
// client retries over TCP) and the others are dropped. Never limited: TCP
// (its source addresses cannot be forged) and queries with a valid server
// cookie (RFC 7873 §5.3.2: the client proved its address).
//
// The table is one array of 64-bit words shared by every worker, updated
// with compare-and-swap: no lock, and a client's count is the same whatever
// worker its packets reach. Each word holds a tag of the bucket's hash, the
// second it counts and the count. Two keys that share a word evict each
// other (the count restarts): a collision can only let a response through,
// never limit an innocent client.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "geoip/geoip.hpp"
#include "server/answer.hpp"

namespace steerdns::server {

enum class ResponseKind : std::uint8_t { answer, geo_answer, nodata, nxdomain, referral, error };
inline constexpr std::size_t kResponseKinds = 6;
std::string_view response_kind_name(ResponseKind kind) noexcept;

struct RateLimitConfig {
  // Responses per second and bucket; 0 for all four: rate limiting is off.
  unsigned responses_per_second = 0;    // answers, NODATA and referrals
  unsigned geo_answers_per_second = 0;  // answers by a geo name's region
  unsigned nxdomains_per_second = 0;
  unsigned errors_per_second = 0;  // FORMERR, SERVFAIL, REFUSED, NOTIMP, BADVERS
  unsigned slip = 2;               // 0: drop every limited response; 1: slip all
  unsigned ipv4_prefix = 24;
  unsigned ipv6_prefix = 56;
  std::size_t table_size = 65536;  // buckets (8 bytes each), rounded up to a power of two
  std::vector<geoip::Network> exempt;
  bool log_only = false;  // count and log what would be limited, limit nothing
  bool operator==(const RateLimitConfig&) const = default;

  bool enabled() const noexcept {
    return responses_per_second + geo_answers_per_second + nxdomains_per_second + errors_per_second > 0;
  }
  unsigned rate(ResponseKind kind) const noexcept;
};

enum class RateAction : std::uint8_t { pass, slip, drop };
inline constexpr std::size_t kRateActions = 3;  // pass (log_only: would be limited), slip, drop

class RateLimiter {
 public:
  explicit RateLimiter(const RateLimitConfig& config);

  struct Verdict {
    RateAction action = RateAction::pass;
    ResponseKind kind = ResponseKind::answer;
    bool limited = false;  // over the rate (also in log_only, where the action stays pass)
    bool started = false;  // the first limited response of this bucket in this second
  };

  // The RESPONSE answer() wrote for CLIENT (INFO its summary), at NOW_MS
  // (any monotonic clock in milliseconds). Thread-safe, lock-free.
  Verdict check(const sockaddr_storage& client, std::span<const std::uint8_t> response,
                const AnswerInfo& info, std::uint64_t now_ms) noexcept;

  // CLIENT's network as counted, e.g. "192.0.2.0/24".
  std::string network_text(const sockaddr_storage& client) const;

  const RateLimitConfig& config() const noexcept { return config_; }

 private:
  bool exempt(const sockaddr_storage& client) const noexcept;

  RateLimitConfig config_;
  std::size_t mask_;
  std::uint64_t seed_ = 0;  // per process: bucket places cannot be predicted
  std::unique_ptr<std::atomic<std::uint64_t>[]> table_;
};

// The kind of RESPONSE (written by answer(); at least a header).
ResponseKind classify_response(std::span<const std::uint8_t> response, const AnswerInfo& info) noexcept;

// Rewrites RESPONSE in place as a slip: its header and question, TC=1, no
// records. Returns the new size.
std::size_t slip_response(std::span<std::uint8_t> response, std::size_t size) noexcept;

}  // namespace steerdns::server
