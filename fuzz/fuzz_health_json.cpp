// fuzz_health_json: the matchers that judge a probe's HTTP response
// (health/check.hpp): JFrog's router health document and judge_http(). The
// input is a response body, as a backend may send it (the prober reads at
// most kMaxBody of it). Nothing may throw; judge_http() must agree with
// jfrog_unhealthy() and with a plain substring search.
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fixture.hpp"
#include "health/check.hpp"

using namespace steerdns;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const bool complete = size <= health::kMaxBody;
  const std::string_view body(reinterpret_cast<const char*>(data), complete ? size : health::kMaxBody);

  const auto why = health::jfrog_unhealthy(body);
  if (why && why->empty()) fuzz::broken("unhealthy without a reason");

  health::Check jfrog;
  jfrog.jfrog = true;
  const health::Result r = health::judge_http(jfrog, 200, body, complete);
  if (!complete) {
    if (r.ok || r.reason != health::Reason::body_mismatch) fuzz::broken("an incomplete body was judged");
    return 0;
  }
  if (r.ok != !why) fuzz::broken("judge_http and jfrog_unhealthy disagree");
  if (!r.ok && r.reason != health::Reason::jfrog) fuzz::broken("a JFrog failure with another reason");

  health::Check both = jfrog;
  both.body = "HEALTHY";
  const health::Result b = health::judge_http(both, 200, body, true);
  const bool has = body.find("HEALTHY") != std::string_view::npos;
  if (b.ok != (has && !why)) fuzz::broken("judge_http with body and jfrog is not both");

  health::Check status;  // no body read: only the status counts
  status.expect = {{200, 299}};
  if (!health::judge_http(status, 204, body, false).ok || health::judge_http(status, 503, body, true).ok)
    fuzz::broken("status ranges");
  return 0;
}
