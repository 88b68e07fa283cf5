#include "server/prometheus.hpp"

#include <charconv>
#include <system_error>

namespace steerdns::server::prometheus {

std::string escape(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string number(double v) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, ec == std::errc() ? end : buf);
}

namespace {

// A bucket's bound as the Go client writes it (%g, shortest): "1e-05",
// "0.0005", "2.5", never "5e-04".
std::string bound(double v) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general);
  return std::string(buf, ec == std::errc() ? end : buf);
}

}  // namespace

void Text::family(const char* name, const char* type, const char* help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += help;
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void Text::labels(Labels labels, const Label* extra) {
  if (labels.size() == 0 && extra == nullptr) return;
  out_ += '{';
  bool first = true;
  auto put = [&](const Label& l) {
    if (!first) out_ += ',';
    first = false;
    out_ += l.first;
    out_ += "=\"";
    out_ += escape(l.second);
    out_ += '"';
  };
  for (const Label& l : labels) put(l);
  if (extra != nullptr) put(*extra);
  out_ += '}';
}

void Text::sample(std::string_view name, Labels labels, const std::string& value) {
  out_ += name;
  this->labels(labels, nullptr);
  out_ += ' ';
  out_ += value;
  out_ += '\n';
}

void Text::histogram(std::string_view name, Label label, std::span<const double> bounds,
                     std::span<const std::uint64_t> counts, double sum) {
  std::uint64_t cumulative = 0;
  const std::string bucket = std::string(name) + "_bucket";
  for (std::size_t b = 0; b < counts.size(); ++b) {
    cumulative += counts[b];
    const std::string le = b < bounds.size() ? bound(bounds[b]) : "+Inf";
    const Label at{"le", le};
    out_ += bucket;
    labels({label}, &at);
    out_ += ' ';
    out_ += std::to_string(cumulative);
    out_ += '\n';
  }
  sample(std::string(name) + "_sum", {label}, number(sum));
  sample(std::string(name) + "_count", {label}, cumulative);
}

}  // namespace steerdns::server::prometheus
