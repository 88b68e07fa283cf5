#include "server/admin.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <ctime>
#include <set>
#include <stdexcept>
#include <thread>

#include "server/explain.hpp"
#include "server/failover.hpp"
#include "zones/name.hpp"

namespace steerdns::server {

namespace {

using json = nlohmann::ordered_json;

std::string rfc3339(std::chrono::system_clock::time_point t) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

json time_or_null(double seconds_since_epoch) {
  if (seconds_since_epoch <= 0) return nullptr;
  return rfc3339(
      std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::duration<double>(seconds_since_epoch))));
}

json override_json(health::Override f) {
  if (f == health::Override::none) return nullptr;
  return std::string(health::override_name(f));
}

json overrides_json(const health::Overrides& o) {
  json out = {{"regions", json::object()}, {"vips", json::object()}};
  for (const auto& [name, f] : o.regions) out["regions"][name] = health::override_name(f);
  for (const auto& [name, f] : o.vips) out["vips"][name] = health::override_name(f);
  return out;
}

void reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(2) + "\n", "application/json");
}

void fail(httplib::Response& res, int status, const std::string& error) {
  reply(res, status, json{{"error", error}});
}

// Constant time in the token's length: the comparison leaks no prefix.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

}  // namespace

std::string status_json(const World& world, std::uint64_t generation, const health::Table& table,
                        const health::Status& status, const Metrics& metrics) {
  json doc;
  doc["version"] = STEERDNS_VERSION;
  doc["identity"] = world.identity;
  doc["started"] = time_or_null(metrics.start_time);
  doc["world"] = {{"generation", generation + 1},
                  {"zones", world.zones.zones().size()},
                  {"records", world.zones.record_count()}};
  {
    const ReloadStats& r = metrics.reloads;
    std::lock_guard lock(r.mutex);
    doc["reload"] = {{"succeeded", r.succeeded.load()},
                     {"failed", r.failed.load()},
                     {"last", time_or_null(r.last_time.load())},
                     {"last_result", r.last_time.load() <= 0
                                         ? json(nullptr)
                                         : json(r.last_ok.load() ? "success" : "failure")},
                     {"last_error", r.last_error.empty() ? json(nullptr) : json(r.last_error)}};
  }
  json names = json::array();
  for (const zones::GeoName* g : world.zones.geo_names()) {
    json regions = json::array();
    for (std::size_t r = 0; r < g->regions.size(); ++r) {
      const zones::GeoRegion& region = g->regions[r];
      const RegionState st = region_state(world, table, *g, r);
      json vips = json::array();
      const RegionHealth& h = world.geo_health[g->id].regions[r];
      auto add = [&](const std::vector<zones::GeoVip>& list, const std::vector<std::uint32_t>* slots,
                     Family family) {
        for (std::size_t i = 0; i < list.size(); ++i) {
          json v;
          v["address"] = list[i].address;
          const std::uint32_t slot = (*slots)[i];
          if (slot >= status.vips.size() || !status.vips[slot].in_use) {
            v["state"] = "up";
            v["check"] = nullptr;
            vips.push_back(v);
            continue;
          }
          const health::VipStatus& s = status.vips[slot];
          v["address"] = s.vip;
          v["state"] = !s.check ? "unchecked" : !s.known ? "unknown" : s.up ? "up" : "down";
          v["served"] = vip_served(st, family, table, slot);
          v["override"] = override_json(s.overridden);
          v["check"] = s.check ? json(s.check->describe(s.vip)) : json(nullptr);
          v["reason"] = s.reason == health::Reason::none ? json(nullptr)
                                                         : json(health::reason_name(s.reason));
          v["detail"] = s.detail.empty() ? json(nullptr) : json(s.detail);
          v["since"] = s.known ? json(rfc3339(s.since)) : json(nullptr);
          vips.push_back(v);
        }
      };
      add(region.a_vips, &h.a, Family::a);
      add(region.aaaa_vips, &h.aaaa, Family::aaaa);
      regions.push_back({{"name", region.name},
                         {"state", st.up() ? "up" : "down"},
                         {"served", {{"A", st.serves(Family::a)}, {"AAAA", st.serves(Family::aaaa)}}},
                         {"override", override_json(st.overridden)},
                         {"threshold", region.threshold},
                         {"vips_up", st.total_served()},
                         {"vips_total", st.total_vips()},
                         {"vips", vips}});
    }
    json policy = std::string(all_down_name(g->all_down));
    if (g->all_down == zones::AllDown::fallback) policy = "fallback: " + g->regions[g->all_down_region].name;
    names.push_back({{"name", zones::name_to_text(g->owner)},
                     {"ttl", g->ttl},
                     {"degraded_ttl", g->degraded_ttl},
                     {"all_down", policy},
                     {"regions", regions}});
  }
  doc["geo_names"] = names;
  doc["overrides"] = overrides_json(status.overrides);
  return doc.dump(2) + "\n";
}

struct Admin::Impl {
  explicit Impl(AdminContext c) : context(std::move(c)) {}

  AdminContext context;
  httplib::Server server;
  std::thread thread;
  bool bound = false;

  bool authorized(const httplib::Request& req, httplib::Response& res) const {
    const std::string& token = context.config.admin.token;
    if (token.empty()) {
      fail(res, 403,
           "changes through the admin API need a token: set admin.token_file, or health.state_file "
           "(steerdns then makes one beside it)");
      return false;
    }
    const std::string header = req.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    if (header.rfind(prefix, 0) == 0 && same_secret(header.substr(prefix.size()), token)) return true;
    res.set_header("WWW-Authenticate", "Bearer");
    fail(res, 401,
         "this call needs Authorization: Bearer <token> (admin.token_file, or the admin-token file beside "
         "the state file)");
    return false;
  }

  void routes() {
    server.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(
          "steerdns admin API\n"
          "GET    /metrics\nGET    /status\nGET    "
          "/explain?name=NAME&client=ADDRESS[/PREFIX][&ecs=no][&format=json]\n"
          "GET    /v1/overrides\nPOST   /v1/reload\n"
          "PUT    /v1/overrides/regions/NAME  {\"state\":\"down\"|\"up\"}\n"
          "PUT    /v1/overrides/vips/ADDRESS  {\"state\":\"down\"|\"up\"}\n"
          "DELETE /v1/overrides/regions/NAME, /v1/overrides/vips/ADDRESS\n",
          "text/plain");
    });
    server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      const auto world = context.world.load();
      const auto table = context.prober.table().load();
      const health::Status status = context.prober.status();
      res.set_content(render_metrics(context.metrics, *world, context.world.generation(), *table, status,
                                     context.prober.stats()),
                      "text/plain; version=0.0.4; charset=utf-8");
    });
    server.Get("/status", [this](const httplib::Request&, httplib::Response& res) {
      const auto world = context.world.load();
      const auto table = context.prober.table().load();
      const health::Status status = context.prober.status();
      res.set_content(status_json(*world, context.world.generation(), *table, status, context.metrics),
                      "application/json");
    });
    server.Get("/explain", [this](const httplib::Request& req, httplib::Response& res) {
      if (!req.has_param("name") || !req.has_param("client")) {
        res.status = 400;
        res.set_content("usage: /explain?name=NAME&client=ADDRESS[/PREFIX]\n", "text/plain");
        return;
      }
      const auto world = context.world.load();
      const auto table = context.prober.table().load();
      const health::Status status = context.prober.status();
      const ExplainHealth health{*table, status};
      try {
        const Placed placed = req.get_param_value("ecs") == "no" ? Placed::by_resolver : Placed::by_ecs;
        const std::string text = explain(*world, req.get_param_value("name"), req.get_param_value("client"),
                                         &health, placed);
        if (req.get_param_value("format") == "json") res.set_content(explain_json(text), "application/json");
        else res.set_content(text, "text/plain");
      } catch (const std::invalid_argument& e) {
        res.status = 400;
        res.set_content(std::string(e.what()) + "\n", "text/plain");
      }
    });
    server.Get("/v1/overrides", [this](const httplib::Request&, httplib::Response& res) {
      reply(res, 200, overrides_json(context.prober.status().overrides));
    });
    auto reload = [this](const httplib::Request& req, httplib::Response& res) {
      if (!authorized(req, res)) return;
      const ReloadOutcome r = context.reload();
      if (r.ok)
        reply(res, 200,
              {{"result", "success"}, {"seconds", r.seconds}, {"zones", r.zones}, {"records", r.records}});
      else
        reply(res, 422,
              {{"result", "failure"},
               {"error", r.error},
               {"note", "still serving the previous configuration"}});
    };
    server.Post("/v1/reload", reload);
    // KIND is "regions" or "vips"; a PUT without a body drains (state down).
    auto change = [this](const httplib::Request& req, httplib::Response& res, const std::string& kind,
                         std::string name, bool remove) {
      if (!authorized(req, res)) return;
      const bool region = kind == "regions";
      health::Override overridden = health::Override::none;
      if (!remove) {
        const json body = req.body.empty() ? json{{"state", "down"}} : json::parse(req.body, nullptr, false);
        const std::string state = body.is_object() && body.contains("state") && body["state"].is_string()
                                      ? body["state"].get<std::string>()
                                      : "";
        if (state != "down" && state != "up")
          return fail(res, 400, R"(the body must be {"state":"down"} or {"state":"up"})");
        overridden = state == "down" ? health::Override::down : health::Override::up;
      }
      if (!region) {
        const std::string canonical = health::canonical_address(name);
        if (canonical.empty()) return fail(res, 400, "'" + name + "' is not an IPv4 or IPv6 address");
        name = canonical;
      }
      // Only what the running world has: a typo must not pass silently. A
      // DELETE may also clear an override that no zone uses any more.
      const auto world = context.world.load();
      std::set<std::string> known;
      for (const zones::GeoName* g : world->zones.geo_names())
        for (const zones::GeoRegion& r : g->regions) {
          if (region) known.insert(r.name);
          else
            for (const auto* vips : {&r.a_vips, &r.aaaa_vips})
              for (const zones::GeoVip& v : *vips) known.insert(health::canonical_address(v.address));
        }
      if (!remove && !known.count(name))
        return fail(res, 404,
                    std::string(region ? "no geo name has a region '" : "no region has the VIP '") + name +
                        "'");
      const std::string error = context.prober.set_override(region ? health::Prober::Kind::region
                                                                   : health::Prober::Kind::vip,
                                                            name, overridden);
      if (!error.empty()) return fail(res, 409, error);
      reply(res, 200,
            {{"kind", region ? "region" : "vip"},
             {"name", name},
             {"state", remove ? "automatic" : std::string(health::override_name(overridden))}});
    };
    const char* pattern = R"(/v1/overrides/(regions|vips)/([^/]+))";
    server.Put(pattern, [change](const httplib::Request& req, httplib::Response& res) {
      change(req, res, req.matches[1], req.matches[2], false);
    });
    server.Delete(pattern, [change](const httplib::Request& req, httplib::Response& res) {
      change(req, res, req.matches[1], req.matches[2], true);
    });
    // cpp-httplib refuses a POST or PUT without Content-Length (a plain
    // `curl -X POST`) with an empty 400 before routing: such a request has
    // no body, so it is answered here as one with an empty body.
    server.set_error_handler([reload, change](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      if (res.status == 400 && !req.has_header("Content-Length") && !req.has_header("Transfer-Encoding")) {
        httplib::Request empty = req;
        empty.body.clear();
        if (req.method == "POST" && req.path == "/v1/reload") {
          res.status = 200;
          return reload(empty, res);
        }
        // /v1/overrides/(regions|vips)/NAME, as the PUT route's pattern.
        constexpr std::string_view prefix = "/v1/overrides/";
        const std::string_view path = req.path;
        if (req.method == "PUT" && path.substr(0, prefix.size()) == prefix) {
          const std::string_view rest = path.substr(prefix.size());
          const std::size_t slash = rest.find('/');
          const std::string_view kind = rest.substr(0, slash);
          const std::string_view name = slash == std::string_view::npos ? std::string_view()
                                                                        : rest.substr(slash + 1);
          if ((kind == "regions" || kind == "vips") && !name.empty() &&
              name.find('/') == std::string_view::npos) {
            res.status = 200;
            return change(empty, res, std::string(kind), std::string(name), false);
          }
        }
        return fail(res, 400, "bad request: " + req.method + " " + req.path);
      }
      if (res.status == 404)
        fail(res, 404, "no such endpoint: " + req.method + " " + req.path + " (see GET /)");
    });
    server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr e) {
      std::string what = "internal error";
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        what = x.what();
      } catch (...) {
      }
      spdlog::error("admin: {}", what);
      fail(res, 500, what);
    });
  }
};

Admin::Admin(AdminContext context) : impl_(std::make_unique<Impl>(std::move(context))) {
  Impl& m = *impl_;
  // Two threads: a slow scrape does not hold up a drain.
  m.server.new_task_queue = [] { return new httplib::ThreadPool(2); };
  m.server.set_read_timeout(std::chrono::seconds(5));
  m.server.set_write_timeout(std::chrono::seconds(5));
  m.server.set_keep_alive_timeout(5);
  m.server.set_payload_max_length(64 * 1024);
  // SO_REUSEADDR only: cpp-httplib's default also sets SO_REUSEPORT, with
  // which a second instance binds the same admin address without an error
  // and the kernel splits the scrapes (and `ctl drain`) between the two.
  m.server.set_socket_options([](socket_t sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  m.routes();
}

Admin::~Admin() { stop(); }

void Admin::bind() {
  Impl& m = *impl_;
  const AdminConfig& a = m.context.config.admin;
  if (!m.server.bind_to_port(a.host, a.port))
    throw std::runtime_error(a.text + " (admin): cannot bind: " + std::strerror(errno) +
                             (errno == EADDRINUSE ? " (is another server running there?)" : ""));
  m.bound = true;
}

void Admin::start() {
  Impl& m = *impl_;
  if (!m.bound) return;
  m.thread = std::thread([&m] {
    pthread_setname_np(pthread_self(), "admin");
    m.server.listen_after_bind();
  });
  spdlog::info("admin API on http://{}/", m.context.config.admin.text);
}

void Admin::stop() {
  Impl& m = *impl_;
  if (!m.thread.joinable()) return;
  m.server.stop();
  m.thread.join();
}

}  // namespace steerdns::server
