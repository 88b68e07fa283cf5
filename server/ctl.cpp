#include "server/ctl.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <stdexcept>

#include "health/registry.hpp"
#include "server/config.hpp"

namespace steerdns::server {

namespace {

using json = nlohmann::ordered_json;

// The admin API to talk to: the config's, then --admin and --token-file.
AdminConfig resolve(const CtlOptions& o) {
  AdminConfig admin;
  if (!o.config_path.empty()) {
    const Config config = load_config(o.config_path);
    if (!config.admin.enabled)
      throw std::runtime_error(o.config_path + ": has no admin section, so no admin API is listening");
    admin = config.admin;
    if (admin.token_made) {
      try {
        admin.token = read_token_file(admin.token_file);
      } catch (const std::exception& e) {
        admin.token_error = std::string("cannot read the admin token: ") + e.what() +
                            " (run as root or the server's user, or pass --token-file)";
      }
    }
  }
  if (!o.admin.empty() && !parse_admin_address(o.admin, admin))
    throw std::runtime_error("--admin '" + o.admin + "' is not HOST:PORT");
  if (!o.token_file.empty()) {
    admin.token = read_token_file(o.token_file);
    admin.token_error.clear();
  }
  return admin;
}

// A path segment: unreserved characters (RFC 3986) and ':' pass as they are.
std::string percent_encoded(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == ':') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// Who runs ctl: the user sudo ran it for, else the login of the real uid.
std::string login_name() {
  if (const char* sudo = std::getenv("SUDO_USER"); sudo != nullptr && *sudo != '\0') return sudo;
  if (const passwd* pw = getpwuid(getuid()); pw != nullptr) return pw->pw_name;
  return "uid " + std::to_string(getuid());
}

// " (forced down by alice: maintenance)", from a /status override_note.
std::string note_text(const json& note) {
  if (!note.is_object()) return {};
  std::string out;
  if (note.contains("by") && note["by"].is_string()) out += " by " + note["by"].get<std::string>();
  if (note.contains("since") && note["since"].is_string()) out += " at " + note["since"].get<std::string>();
  if (note.contains("reason") && note["reason"].is_string()) out += ": " + note["reason"].get<std::string>();
  return out;
}

std::string state_text(const json& v) { return v.is_string() ? v.get<std::string>() : std::string("-"); }

void print_status(const json& doc) {
  const json& world = doc["world"];
  std::printf("steerdns %s: world %llu, %llu zones, %llu records\n", state_text(doc["version"]).c_str(),
              world["generation"].get<unsigned long long>(), world["zones"].get<unsigned long long>(),
              world["records"].get<unsigned long long>());
  const json& reload = doc["reload"];
  if (!reload["last"].is_null())
    std::printf("last reload: %s, %s%s%s\n", state_text(reload["last"]).c_str(),
                state_text(reload["last_result"]).c_str(), reload["last_error"].is_null() ? "" : ": ",
                reload["last_error"].is_null() ? "" : state_text(reload["last_error"]).c_str());
  for (const json& g : doc["geo_names"]) {
    std::printf("\n%s  ttl %u, degraded ttl %u, all down: %s\n", state_text(g["name"]).c_str(),
                g["ttl"].get<unsigned>(), g["degraded_ttl"].get<unsigned>(),
                state_text(g["all_down"]).c_str());
    for (const json& r : g["regions"]) {
      std::string state = state_text(r["state"]);
      if (!r["override"].is_null()) state += " (forced " + state_text(r["override"]) + ")";
      std::printf("  %-14s %-20s %u of %u VIPs up, threshold %u\n", state_text(r["name"]).c_str(),
                  state.c_str(), r["vips_up"].get<unsigned>(), r["vips_total"].get<unsigned>(),
                  r.contains("threshold") ? r["threshold"].get<unsigned>() : 1u);
      if (r.contains("override_note") && r["override_note"].is_object())
        std::printf("                 forced %s%s\n", state_text(r["override"]).c_str(),
                    note_text(r["override_note"]).c_str());
      for (const json& v : r["vips"]) {
        std::string vstate = state_text(v["state"]);
        if (v.contains("override") && !v["override"].is_null())
          vstate += " (forced " + state_text(v["override"]) + ")";
        std::string line = "    " + state_text(v["address"]);
        line.resize(std::max<std::size_t>(line.size() + 1, 24), ' ');
        line += vstate;
        if (v.contains("since") && !v["since"].is_null()) line += " since " + state_text(v["since"]);
        if (v.contains("reason") && !v["reason"].is_null()) {
          line += (v["state"] == "down" ? ": " : ", last failure: ") + state_text(v["reason"]);
          if (!v["detail"].is_null()) line += " (" + state_text(v["detail"]) + ")";
        }
        std::printf("%s\n", line.c_str());
        if (v.contains("override_note") && v["override_note"].is_object())
          std::printf("                        forced %s%s\n", state_text(v["override"]).c_str(),
                      note_text(v["override_note"]).c_str());
      }
    }
  }
  const json& o = doc["overrides"];
  if (!o["regions"].empty() || !o["vips"].empty()) {
    std::printf("\noverrides:");
    for (const auto& [name, state] : o["regions"].items())
      std::printf(" region %s %s;", name.c_str(), state_text(state).c_str());
    for (const auto& [name, state] : o["vips"].items())
      std::printf(" VIP %s %s;", name.c_str(), state_text(state).c_str());
    std::printf("\n");
  }
  for (const char* key : {"ignored", "state_file_problems"}) {
    if (!o.contains(key) || o[key].empty()) continue;
    std::printf("\n%s:\n", std::string_view(key) == "ignored"
                               ? "overrides not applied (no region or VIP has these names)"
                               : "state file problems (those entries are not applied)");
    for (const json& line : o[key]) std::printf("  %s\n", state_text(line).c_str());
  }
}

}  // namespace

// Why the API could not be reached, in words: httplib says only
// "Connection"; a plain connect() says what the kernel said.
static std::string unreachable_reason(const AdminConfig& t, httplib::Error error) {
  if (error != httplib::Error::Connection) return httplib::to_string(error);
  ListenAddress at;
  if (!parse_socket_address(t.text, at)) return "cannot connect";
  const int fd = ::socket(at.address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::string("cannot connect: ") + std::strerror(errno);
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&at.address), at.address_size);
  const int saved = errno;
  ::close(fd);
  if (rc == 0) return "cannot connect (the port answers now: try again)";
  return std::string("cannot connect: ") + std::strerror(saved) +
         (saved == ECONNREFUSED ? " (is steerdns running, with an admin section?)" : "");
}

int run_ctl(const CtlOptions& o) {
  AdminConfig t;
  try {
    t = resolve(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  httplib::Client client(t.host, t.port);
  client.set_connection_timeout(std::chrono::seconds(3));
  client.set_read_timeout(std::chrono::seconds(60));  // a reload waits for a first probe round
  httplib::Headers headers;
  if (!t.token.empty()) headers.emplace("Authorization", "Bearer " + t.token);

  std::optional<httplib::Result> sent;
  const std::string& cmd = o.command;
  auto need = [&](std::size_t n, const char* usage) {
    if (o.arguments.size() != n) throw std::invalid_argument(std::string("usage: steerdns ctl ") + usage);
  };
  try {
    if (cmd == "status") {
      need(0, "status");
      sent = client.Get("/status", headers);
    } else if (cmd == "explain") {
      need(2, "explain NAME CLIENT");
      httplib::Params params{{"name", o.arguments[0]}, {"client", o.arguments[1]}};
      if (o.no_ecs) params.emplace("ecs", "no");
      if (o.json) params.emplace("format", "json");
      sent = client.Get("/explain", params, headers);
    } else if (cmd == "drain" || cmd == "undrain") {
      need(1, "drain|undrain REGION|VIP-ADDRESS");
      const std::string& target = o.arguments[0];
      const bool vip = !health::canonical_address(target).empty();
      const std::string path = std::string("/v1/overrides/") + (vip ? "vips/" : "regions/") +
                               percent_encoded(target);
      if (cmd == "drain") {
        json body = {{"state", "down"}, {"by", o.by.empty() ? login_name() : o.by}};
        if (!o.reason.empty()) body["reason"] = o.reason;
        sent = client.Put(path, headers, body.dump(), "application/json");
      } else sent = client.Delete(path, headers);
    } else if (cmd == "reload") {
      need(0, "reload");
      sent = client.Post("/v1/reload", headers, "", "application/json");
    } else {
      throw std::invalid_argument("unknown command '" + cmd + "': status, explain, drain, undrain or reload");
    }
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  const httplib::Result& res = *sent;
  if (!res) {
    std::fprintf(stderr, "cannot reach the admin API at http://%s/: %s\n", t.text.c_str(),
                 unreachable_reason(t, res.error()).c_str());
    return 2;
  }
  const bool ok = res->status >= 200 && res->status < 300;
  const bool is_json = res->get_header_value("Content-Type").rfind("application/json", 0) == 0;
  if (!ok) {
    std::string message = res->body;
    if (is_json) {
      const json body = json::parse(res->body, nullptr, false);
      if (body.is_object() && body.contains("error")) message = state_text(body["error"]) + "\n";
    }
    std::fprintf(stderr, "%s (HTTP %d): %s", cmd.c_str(), res->status, message.c_str());
    if ((res->status == 401 || res->status == 403) && !t.token_error.empty())
      std::fprintf(stderr, "%s\n", t.token_error.c_str());
    return 1;
  }
  if (o.json || !is_json) {
    std::fputs(res->body.c_str(), stdout);
    return 0;
  }
  const json body = json::parse(res->body, nullptr, false);
  if (cmd == "status") {
    print_status(body);
  } else if (cmd == "reload") {
    std::printf("reloaded: %llu zones, %llu records in %.1f ms\n", body["zones"].get<unsigned long long>(),
                body["records"].get<unsigned long long>(), body["seconds"].get<double>() * 1e3);
  } else {
    std::printf("%s %s: %s\n", state_text(body["kind"]).c_str(), state_text(body["name"]).c_str(),
                cmd == "drain" ? "forced down" : "back to automatic");
  }
  return 0;
}

}  // namespace steerdns::server
