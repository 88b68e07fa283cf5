// Building a world: zones (zones/) loaded, their geo names compiled into
// classifiers (geoip/), their checks read into the prober's plan and its
// slots recorded where answer() reads health (health/).
#include "server/world.hpp"

#include <algorithm>
#include <set>

#include "common/load_error.hpp"
#include "geoip/countries.hpp"
#include "server/config.hpp"
#include "server/metrics.hpp"
#include "server/serials.hpp"

namespace steerdns::server {

namespace {

const std::set<std::string> kContinents = {"AF", "AN", "AS", "EU", "NA", "OC", "SA"};

std::string upper(std::string text) {
  for (auto& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

geoip::Policy policy_for(const zones::GeoName& g) {
  geoip::Policy p;
  for (const auto& r : g.regions) {
    p.region_names.push_back(r.name);
    p.regions.push_back({r.latitude, r.longitude});
  }
  for (const auto& o : g.cidr) {
    auto network = geoip::parse_network(o.key);
    if (!network)
      throw common::LoadError(g.file, o.line,
                              "cidr '" + o.key +
                                  "' is not a network (like 192.0.2.0/24), or has host bits set");
    p.cidr.push_back({*network, o.regions});
  }
  for (const auto& o : g.country) {
    const std::string code = upper(o.key);
    if (geoip::country_continent(code).empty())
      throw common::LoadError(g.file, o.line,
                              "country '" + o.key + "' is not an ISO 3166 alpha-2 code" +
                                  (code == "UK"   ? " (the United Kingdom is GB)"
                                   : code == "EL" ? " (Greece is GR)"
                                                  : ""));
    p.country[code] = o.regions;
  }
  for (const auto& o : g.continent) {
    const std::string code = upper(o.key);
    if (!kContinents.count(code))
      throw common::LoadError(g.file, o.line, "continent '" + o.key + "' is not one of AF AN AS EU NA OC SA");
    p.continent[code] = o.regions;
  }
  p.default_list = g.default_list;
  if (p.default_list.empty())
    for (std::size_t i = 0; i < g.regions.size(); ++i)
      p.default_list.push_back(static_cast<geoip::RegionIndex>(i));
  return p;
}

}  // namespace

void compile_geo(World& world, const std::string& database_path) {
  const auto& names = world.zones.geo_names();
  if (names.empty()) return;
  world.geo_database = std::make_shared<geoip::Database>(geoip::Database::open(database_path));
  for (const zones::GeoName* g : names) {
    world.geo_policies.push_back(policy_for(*g));
    world.classifiers.push_back(geoip::compile(*world.geo_database, world.geo_policies.back()));
    GeoHealth& gh = world.geo_health.emplace_back();
    for (const zones::GeoRegion& region : g->regions) {
      RegionHealth& rh = gh.regions.emplace_back();
      rh.a.assign(region.a_vips.size(), health::Table::kNoSlot);
      rh.aaaa.assign(region.aaaa_vips.size(), health::Table::kNoSlot);
    }
  }
}

health::Plan plan_health(const World& world) {
  health::Plan plan;
  for (const zones::GeoName* geo : world.zones.geo_names()) {
    const common::YamlDoc doc{geo->file, {}};
    const std::string owner = zones::name_to_text(geo->owner);
    for (const zones::GeoRegion& region : geo->regions) {
      plan.regions.push_back(region.name);
      const std::string label = owner + " " + region.name;
      for (const auto* vips : {&region.a_vips, &region.aaaa_vips})
        for (const zones::GeoVip& vip : *vips) {
          const common::Yaml layers[] = {geo->check, region.check, vip.check};
          plan.vips.push_back({vip.address, health::read_check(doc, layers), label});
        }
    }
  }
  return plan;
}

void assign_health(World& world, const health::Slots& slots) {
  world.geo_health.clear();
  std::size_t vip = 0, region_at = 0;
  for (const zones::GeoName* geo : world.zones.geo_names()) {
    GeoHealth& gh = world.geo_health.emplace_back();
    for (const zones::GeoRegion& region : geo->regions) {
      RegionHealth& rh = gh.regions.emplace_back();
      rh.region_slot = slots.regions.at(region_at++);
      for (std::size_t i = 0; i < region.a_vips.size(); ++i) rh.a.push_back(slots.vips.at(vip++));
      for (std::size_t i = 0; i < region.aaaa_vips.size(); ++i) rh.aaaa.push_back(slots.vips.at(vip++));
    }
  }
}

std::shared_ptr<const World> build_world(const Config& config, health::Prober* prober, Metrics* metrics) {
  std::vector<std::unique_ptr<zones::Zone>> zones;
  zones.reserve(config.zone_files.size());
  SerialMemory serials(serials_path(config.state_file));
  for (const auto& file : config.zone_files) zones.push_back(zones::load_zone(file, &serials));
  auto world = std::make_shared<World>();
  world->zones = zones::ZoneTable(std::move(zones));
  world->edns_payload = config.edns_payload;
  world->cookies = config.cookies;
  world->identity = config.identity;
  world->version = config.version;
  world->tcp_keepalive = static_cast<std::uint16_t>(
      std::min<std::int64_t>(config.tcp.idle_timeout.count() / 100, UINT16_MAX));
  compile_geo(*world, config.geoip_database);
  world->geo_database_builtin = config.geoip_builtin;
  const health::Plan plan = plan_health(*world);  // reads (and so checks) every check
  // Last: the prober starts new checks only for a world that is complete.
  if (metrics != nullptr) metrics->assign(*world);
  if (prober != nullptr) assign_health(*world, prober->apply(plan));
  // Only serve remembers the serials it gave (check and explain only read).
  if (prober != nullptr) serials.save();
  return world;
}

bool has_region(const World& world, const std::string& name) {
  for (const zones::GeoName* g : world.zones.geo_names())
    for (const zones::GeoRegion& r : g->regions)
      if (r.name == name) return true;
  return false;
}

bool has_vip(const World& world, const std::string& address) {
  for (const zones::GeoName* g : world.zones.geo_names())
    for (const zones::GeoRegion& r : g->regions)
      for (const auto* vips : {&r.a_vips, &r.aaaa_vips})
        for (const zones::GeoVip& v : *vips)
          if (health::canonical_address(v.address) == address) return true;
  return false;
}

std::vector<std::string> state_file_problems(const std::string& path, const World& world) {
  health::StateFile read;
  try {
    read = health::read_state_file(path);
  } catch (const std::exception& e) {
    return {e.what()};
  }
  std::vector<std::string> out = read.problems;
  for (const bool region : {true, false})
    for (const auto& [name, overridden] : region ? read.overrides.regions : read.overrides.vips) {
      if (region ? has_region(world, name) : has_vip(world, name)) continue;
      const int line = read.lines[health::note_key(region, name)];
      out.push_back(path + ":" + std::to_string(line) + ": " + (region ? "regions " : "vips ") + name +
                    (region ? ": no geo name has this region" : ": no region has this VIP") +
                    "; serve ignores it");
    }
  return out;
}

}  // namespace steerdns::server
