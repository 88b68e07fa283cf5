// health: checks. What a check is (as the operator wrote it, merged from its
// layers), how it reads from zone YAML, and the matchers that judge a
// response. Load-time parsing throws common::LoadError (file:line); the
// matchers are pure and run on the prober thread.
#pragma once

#include "common/yaml.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/load_error.hpp"

namespace steerdns::health {

using Duration = std::chrono::milliseconds;

enum class CheckType : std::uint8_t { http, https, tcp };
// "http", "https", "tcp": the config's `type`, and the `check` and `type`
// labels of the metrics.
std::string_view check_type_name(CheckType t) noexcept;

// How one VIP is probed. Two checks with the same key() on the same VIP are
// one probe, shared by every geo name that uses it.
struct Check {
  CheckType type = CheckType::http;
  std::uint16_t port = 80;
  std::string path = "/";
  // The name the service answers as: Host header, and for https the SNI and
  // the certificate name verified, while connecting to the VIP's address.
  // Empty: the VIP's address is the host.
  std::string service;
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<std::pair<int, int>> expect{{200, 200}};  // inclusive status ranges
  std::string body;                                     // a substring the body must hold; empty: not checked
  bool jfrog = false;  // router.state and every services[].state must be HEALTHY
  Duration interval{10'000};
  Duration timeout{5'000};
  Duration jitter{1'000};
  unsigned rise = 2;
  unsigned fall = 3;
  std::string ca;  // https: CA bundle file; empty: the system's store
  bool insecure = false;

  // Canonical text of every field: equal keys probe identically.
  std::string key() const;
  // "https://artifacts.example.com:443/router/api/v1/system/health", or
  // "tcp:8082", with the host a VIP would replace.
  std::string describe(std::string_view vip) const;
  // Does the response need its body read?
  bool reads_body() const noexcept { return !body.empty() || jfrog; }
};

// The most a probe reads of a body (and of headers): enough for JFrog's
// health document; a backend that sends more is cut off.
inline constexpr std::size_t kMaxBody = 16 * 1024;

// Reads a check from LAYERS, least specific first (geo name, region, VIP):
// each key takes the value of the most specific layer that sets it. Null
// layers are skipped. Returns nullopt when no layer is set. Every layer comes
// from DOC's file. Throws common::LoadError on unknown keys or bad values.
std::optional<Check> read_check(const common::YamlDoc& doc, std::span<const common::Yaml> layers);

// Why a probe failed. The names (reason_name) are stable and snake_case:
// the metrics' reason label, /status, explain and the logs use them.
enum class Reason : std::uint8_t {
  none,
  refused,           // connection refused
  connect,           // other connect failure (unreachable, reset)
  timeout,           // no complete answer within the timeout
  tls_verification,  // certificate chain or name did not verify
  tls_handshake,     // other TLS handshake failure
  protocol,          // not HTTP, empty reply, receive error
  status,            // status not expected
  body_mismatch,     // body lacks the substring, or is too large to judge
  jfrog,             // JFrog health document not all HEALTHY
};
inline constexpr std::size_t kReasonCount = static_cast<std::size_t>(Reason::jfrog) + 1;
std::string_view reason_name(Reason r) noexcept;

struct Result {
  bool ok = false;
  Reason reason = Reason::none;
  std::string detail;  // human text, e.g. "status 503" or curl's message
};

// The matchers: judge a complete HTTP response (status, body as read).
Result judge_http(const Check& check, long status, std::string_view body, bool body_complete);
bool status_expected(const Check& check, long status) noexcept;
// JFrog's router health document: nullopt when healthy, else what is not.
std::optional<std::string> jfrog_unhealthy(std::string_view body);

}  // namespace steerdns::health
