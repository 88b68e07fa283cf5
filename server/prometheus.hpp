// The Prometheus text exposition format (version 0.0.4), as the metrics
// (server/metrics.cpp, server/metrics_health.cpp) write it. Scrape time only:
// it allocates.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace steerdns::server::prometheus {

// A label value escapes backslash, quote and newline.
std::string escape(std::string_view value);
// The shortest text that reads back as V.
std::string number(double v);

using Label = std::pair<const char*, std::string_view>;
using Labels = std::initializer_list<Label>;

class Text {
 public:
  // A family's HELP and TYPE lines; its samples follow.
  void family(const char* name, const char* type, const char* help);
  void sample(std::string_view name, Labels labels, const std::string& value);
  void sample(std::string_view name, Labels labels, std::uint64_t value) {
    sample(name, labels, std::to_string(value));
  }
  // The samples of one histogram series: COUNTS per bucket (not cumulative;
  // the last is +Inf's, so one more than BOUNDS), their SUM; _count is the
  // sum of COUNTS, so that it always equals the +Inf bucket.
  void histogram(std::string_view name, Label label, std::span<const double> bounds,
                 std::span<const std::uint64_t> counts, double sum);
  std::string take() { return std::move(out_); }

 private:
  void labels(Labels labels, const Label* extra);
  std::string out_;
};

}  // namespace steerdns::server::prometheus
