#include "health/check.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>

namespace steerdns::health {

namespace {

// The certificates of the PEM file PATH; -1 when a block does not parse.
int pem_certificates(const std::string& path) {
  BIO* bio = BIO_new_file(path.c_str(), "r");
  if (bio == nullptr) return 0;
  STACK_OF(X509_INFO)* infos = PEM_X509_INFO_read_bio(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (infos == nullptr) {
    ERR_clear_error();
    return -1;
  }
  int count = 0;
  for (int i = 0; i < sk_X509_INFO_num(infos); ++i)
    if (sk_X509_INFO_value(infos, i)->x509 != nullptr) ++count;
  sk_X509_INFO_pop_free(infos, X509_INFO_free);
  return count;
}

}  // namespace

using common::fail_at;
using common::YamlDoc;

namespace {

// Only for http and https.
constexpr std::string_view kHttpOnly[] = {"path", "service", "headers", "expect", "body", "jfrog"};

bool valid_hostname(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_')) return false;
  return s.front() != '.' && s.front() != '-';
}

bool valid_header_text(std::string_view s) {
  for (char c : s)
    if (c == '\r' || c == '\n' || c == '\0') return false;
  return true;
}

std::pair<int, int> read_status_range(const YamlDoc& doc, const common::Yaml& node) {
  const std::string text = common::read_string(doc, node, "expect");
  auto parse = [&](std::string_view part) {
    int v = 0;
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    if (ec != std::errc() || end != part.data() + part.size() || v < 100 || v > 599)
      fail_at(doc, node, "expect: '" + text + "' is not a status code (100-599) or a range like 200-299");
    return v;
  };
  const auto dash = text.find('-');
  if (dash == std::string::npos) {
    const int v = parse(text);
    return {v, v};
  }
  const int lo = parse(std::string_view(text).substr(0, dash));
  const int hi = parse(std::string_view(text).substr(dash + 1));
  if (lo > hi) fail_at(doc, node, "expect: range '" + text + "' is empty");
  return {lo, hi};
}

}  // namespace

std::optional<Check> read_check(const YamlDoc& doc, std::span<const common::Yaml> layers) {
  // The node setting each key: the most specific layer wins.
  std::map<std::string, common::Yaml, std::less<>> value;
  bool any = false;
  auto unset = [](const common::Yaml& layer) { return !layer.is_defined() || layer.is_null(); };
  for (const auto& layer : layers) {
    if (unset(layer)) continue;
    any = true;
    common::require_map_keys(doc, layer, "check",
                             {"type", "port", "path", "service", "headers", "expect", "body", "jfrog",
                              "interval", "timeout", "rise", "fall", "jitter", "ca", "insecure"});
    for (const auto& item : layer) value[item.first.scalar()] = item.second;
  }
  if (!any) return std::nullopt;
  const common::Yaml anchor = [&] {
    common::Yaml last;
    for (const auto& layer : layers)
      if (!unset(layer)) last = layer;
    return last;
  }();
  auto get = [&](std::string_view key) -> const common::Yaml* {
    auto it = value.find(key);
    return it == value.end() ? nullptr : &it->second;
  };

  Check c;
  const common::Yaml* type = get("type");
  if (type == nullptr) fail_at(doc, anchor, "check: missing key 'type' (http, https or tcp)");
  const std::string type_text = common::read_string(doc, *type, "type");
  if (type_text == "http") c.type = CheckType::http;
  else if (type_text == "https") c.type = CheckType::https;
  else if (type_text == "tcp") c.type = CheckType::tcp;
  else fail_at(doc, *type, "check: type '" + type_text + "' is not http, https or tcp");

  if (c.type == CheckType::tcp) {
    for (std::string_view key : kHttpOnly)
      if (const common::Yaml* n = get(key))
        fail_at(doc, *n, "check: '" + std::string(key) + "' is only for http and https checks");
    if (get("port") == nullptr) fail_at(doc, anchor, "check: a tcp check needs a 'port'");
  }
  if (c.type != CheckType::https) {
    for (std::string_view key : {"ca", "insecure"})
      if (const common::Yaml* n = get(key))
        fail_at(doc, *n, "check: '" + std::string(key) + "' is only for https checks");
  }
  c.port = c.type == CheckType::https ? 443 : 80;
  if (const common::Yaml* n = get("port"))
    c.port = static_cast<std::uint16_t>(common::read_uint(doc, *n, "port", 1, 65535));
  if (const common::Yaml* n = get("path")) {
    c.path = common::read_string(doc, *n, "path");
    if (c.path.empty() || c.path.front() != '/' || !valid_header_text(c.path) ||
        c.path.find_first_of(" \t") != std::string::npos)
      fail_at(doc, *n, "check: path '" + c.path + "' must start with '/' and hold no spaces");
  }
  if (const common::Yaml* n = get("service")) {
    c.service = common::read_string(doc, *n, "service");
    if (!valid_hostname(c.service)) fail_at(doc, *n, "check: service '" + c.service + "' is not a host name");
  }
  if (const common::Yaml* n = get("headers")) {
    if (!n->is_map()) fail_at(doc, *n, "check: headers must be a map of header names to values");
    for (const auto& item : *n) {
      const std::string name = item.first.scalar();
      const std::string text = common::read_string(doc, item.second, name);
      if (name.empty() || name.find_first_of(": \t\r\n") != std::string::npos || !valid_header_text(text))
        fail_at(doc, item.first, "check: header '" + name + "' is not a valid header line");
      c.headers.emplace_back(name, text);
    }
  }
  if (const common::Yaml* n = get("expect")) {
    c.expect.clear();
    if (n->is_sequence()) {
      if (n->size() == 0) fail_at(doc, *n, "check: expect must list at least one status");
      for (const auto& item : *n) c.expect.push_back(read_status_range(doc, item));
    } else {
      c.expect.push_back(read_status_range(doc, *n));
    }
  }
  if (const common::Yaml* n = get("body")) {
    c.body = common::read_string(doc, *n, "body");
    if (c.body.empty() || c.body.size() > kMaxBody)
      fail_at(doc, *n, "check: body must be a non-empty substring of at most 16 KiB");
  }
  if (const common::Yaml* n = get("jfrog")) c.jfrog = common::read_bool(doc, *n, "jfrog");
  if (const common::Yaml* n = get("interval")) {
    c.interval = common::read_duration(doc, *n, "interval");
    if (c.interval < Duration(1000) || c.interval > Duration(3'600'000))
      fail_at(doc, *n, "check: interval must be between 1s and 1h");
  }
  c.timeout = std::min(c.interval / 2, Duration(5000));
  if (const common::Yaml* n = get("timeout")) {
    c.timeout = common::read_duration(doc, *n, "timeout");
    if (c.timeout < Duration(100) || c.timeout > c.interval)
      fail_at(doc, *n, "check: timeout must be at least 100ms and at most the interval");
  }
  c.jitter = c.interval / 10;
  if (const common::Yaml* n = get("jitter")) {
    c.jitter = common::read_duration(doc, *n, "jitter");
    if (c.jitter > c.interval / 2) fail_at(doc, *n, "check: jitter must be at most half the interval");
  }
  if (const common::Yaml* n = get("rise")) c.rise = common::read_uint(doc, *n, "rise", 1, 100);
  if (const common::Yaml* n = get("fall")) c.fall = common::read_uint(doc, *n, "fall", 1, 100);
  if (const common::Yaml* n = get("insecure")) c.insecure = common::read_bool(doc, *n, "insecure");
  if (const common::Yaml* n = get("ca")) {
    c.ca = common::read_string(doc, *n, "ca");
    if (c.insecure) fail_at(doc, *n, "check: 'ca' and 'insecure' exclude each other");
    const bool named = !c.ca.empty();
    c.ca = common::path_beside(doc, c.ca);  // relative to the zone file's folder
    if (!named || std::filesystem::is_directory(c.ca) || !std::ifstream(c.ca))
      fail_at(doc, *n, "check: cannot read the CA bundle '" + c.ca + "'");
    // Every probe would fail tls_verification with a bundle of no
    // certificate (and serve-nearest would hide it): refuse it here.
    const int certificates = pem_certificates(c.ca);
    if (certificates <= 0)
      fail_at(doc, *n,
              "check: the CA bundle '" + c.ca + "' holds no PEM certificate" +
                  (certificates < 0 ? " (a block of it does not parse)" : "") +
                  ": every HTTPS probe would fail verification");
  }
  return c;
}

std::string Check::key() const {
  std::string k(check_type_name(type));
  auto add = [&k](std::string_view s) {
    k += '\x1f';
    k += s;
  };
  add(std::to_string(port));
  add(path);
  add(service);
  for (const auto& [name, value] : headers) add(name + ":" + value);
  add("expect");
  for (const auto& [lo, hi] : expect) add(std::to_string(lo) + "-" + std::to_string(hi));
  add(body);
  add(jfrog ? "jfrog" : "");
  add(std::to_string(interval.count()));
  add(std::to_string(timeout.count()));
  add(std::to_string(jitter.count()));
  add(std::to_string(rise));
  add(std::to_string(fall));
  add(ca);
  add(insecure ? "insecure" : "");
  return k;
}

std::string Check::describe(std::string_view vip) const {
  const bool v6 = vip.find(':') != std::string_view::npos;
  const std::string host = !service.empty() ? service : v6 ? "[" + std::string(vip) + "]" : std::string(vip);
  if (type == CheckType::tcp) return "tcp:" + host + ":" + std::to_string(port);
  return std::string(check_type_name(type)) + "://" + host + ":" + std::to_string(port) + path;
}

std::string_view check_type_name(CheckType t) noexcept {
  switch (t) {
    case CheckType::http: return "http";
    case CheckType::https: return "https";
    case CheckType::tcp: return "tcp";
  }
  return "?";
}

std::string_view reason_name(Reason r) noexcept {
  switch (r) {
    case Reason::none: return "none";
    case Reason::refused: return "refused";
    case Reason::connect: return "connect";
    case Reason::timeout: return "timeout";
    case Reason::tls_verification: return "tls_verification";
    case Reason::tls_handshake: return "tls_handshake";
    case Reason::protocol: return "protocol";
    case Reason::status: return "status";
    case Reason::body_mismatch: return "body_mismatch";
    case Reason::jfrog: return "jfrog";
  }
  return "?";
}

bool status_expected(const Check& check, long status) noexcept {
  for (const auto& [lo, hi] : check.expect)
    if (status >= lo && status <= hi) return true;
  return false;
}

std::optional<std::string> jfrog_unhealthy(std::string_view body) {
  const auto doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return "body is not a JSON object";
  auto state_of = [](const nlohmann::json& j) -> std::string {
    if (!j.is_object()) return "missing";
    auto it = j.find("state");
    if (it == j.end() || !it->is_string()) return "missing";
    return it->get<std::string>();
  };
  auto router = doc.find("router");
  if (router == doc.end()) return "no router in the document";
  if (const std::string s = state_of(*router); s != "HEALTHY") return "router " + s;
  auto services = doc.find("services");
  if (services != doc.end()) {
    if (!services->is_array()) return "services is not a list";
    for (const auto& svc : *services) {
      const std::string s = state_of(svc);
      if (s == "HEALTHY") continue;
      std::string id = "a service";
      if (svc.is_object())
        if (auto it = svc.find("service_id"); it != svc.end() && it->is_string()) id = it->get<std::string>();
      return id + " " + s;
    }
  }
  return std::nullopt;
}

Result judge_http(const Check& check, long status, std::string_view body, bool body_complete) {
  if (!status_expected(check, status)) return {false, Reason::status, "status " + std::to_string(status)};
  if (!check.reads_body()) return {true, Reason::none, {}};
  if (!body_complete) return {false, Reason::body_mismatch, "body larger than 16 KiB"};
  if (!check.body.empty() && body.find(check.body) == std::string_view::npos)
    return {false, Reason::body_mismatch, "body mismatch: no \"" + check.body + "\""};
  if (check.jfrog)
    if (auto why = jfrog_unhealthy(body)) return {false, Reason::jfrog, "JFrog: " + *why};
  return {true, Reason::none, {}};
}

}  // namespace steerdns::health
