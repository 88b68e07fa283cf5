// Regions and geo names of a zone file (the `regions:` and `geo:` keys):
// their VIPs, locations, thresholds, check layers, preference list rules
// and all-down policies, read into GeoNames. The GeoIP side is compiled by
// server/ (zones/ does not know GeoIP).
#include <charconv>

#include "zones/builder.hpp"

namespace steerdns::zones {

using common::fail_at;
using common::LoadError;
using common::YamlDoc;

double ZoneBuilder::read_degrees(const common::Yaml& node, std::string_view key, double limit) {
  const std::string text = common::read_string(doc_, node, key);
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  // Written so that NaN ("nan" parses) fails too: it compares false.
  if (ec != std::errc() || end != text.data() + text.size() || !(value >= -limit && value <= limit))
    fail_at(doc_, node,
            std::string(key) + ": '" + text + "' is not a number in -" +
                std::to_string(static_cast<int>(limit)) + ".." + std::to_string(static_cast<int>(limit)));
  return value;
}

void ZoneBuilder::read_regions(const common::Yaml& regions) {
  if (!regions.is_map()) fail_at(doc_, regions, "regions must be a map of region names");
  for (const auto& item : regions) {
    RegionDecl r;
    r.name = item.first.scalar();
    const common::Yaml& body = item.second;
    const std::string where = "region '" + r.name + "'";
    common::require_map_keys(doc_, body, where, {"location", "vips", "threshold", "check"});
    r.line = common::line_of(item.first);
    if (body["check"]) r.check = body["check"];
    const common::Yaml location = body["location"];
    if (!location || !location.is_sequence() || location.size() != 2)
      fail_at(doc_, location ? location : body, where + ": 'location' must be [latitude, longitude]");
    r.latitude = read_degrees(location[0], "latitude", 90);
    r.longitude = read_degrees(location[1], "longitude", 180);
    const common::Yaml vips = body["vips"];
    if (vips && vips.is_scalar())
      fail_at(doc_, vips,
              where + ": 'vips' must be a list ([" + vips.scalar() +
                  "] or one '- ADDRESS' per line), not the text '" + vips.scalar() + "'");
    if (!vips || !vips.is_sequence() || vips.size() == 0)
      fail_at(doc_, vips ? vips : body, where + ": 'vips' must list at least one address");
    for (const auto& entry : vips) {
      // An address, or {address: A, check: {...}} for a VIP's own check layer.
      common::Yaml vip, check;
      vip = entry;
      if (entry.is_map()) {
        common::require_map_keys(doc_, entry, where + " VIP", {"address", "check"});
        if (!entry["address"]) fail_at(doc_, entry, where + ": a VIP needs an 'address'");
        vip = entry["address"];
        if (entry["check"]) check = entry["check"];
      }
      const std::string text = common::read_string(doc_, vip, "vip");
      unsigned char bytes[16];
      std::vector<std::string>* family = nullptr;
      std::size_t size = 0;
      if (inet_pton(AF_INET, text.c_str(), bytes) == 1) {
        family = &r.v4;
        size = 4;
      } else if (inet_pton(AF_INET6, text.c_str(), bytes) == 1) {
        family = &r.v6;
        size = 16;
      } else {
        fail_at(doc_, vip, where + ": VIP '" + text + "' is not an IPv4 or IPv6 address");
      }
      std::string rdata(reinterpret_cast<const char*>(bytes), size);
      // An rrset holds no duplicate records (RFC 2181 §5).
      if (std::find(family->begin(), family->end(), rdata) != family->end())
        fail_at(doc_, vip, where + ": VIP '" + text + "' is listed twice");
      // One VIP, one region: its health, drains and counters are its region's.
      for (const RegionDecl& other : regions_) {
        const auto& theirs = size == 4 ? other.v4 : other.v6;
        if (std::find(theirs.begin(), theirs.end(), rdata) != theirs.end())
          fail_at(doc_, vip,
                  where + ": VIP '" + text + "' is also in region '" + other.name + "' (line " +
                      std::to_string(other.line) + "); a VIP belongs to one region");
      }
      family->push_back(std::move(rdata));
      (size == 4 ? r.v4_vips : r.v6_vips).push_back({text, check});
    }
    if (body["threshold"])
      r.threshold = static_cast<unsigned>(
          common::read_uint(doc_, body["threshold"], "threshold", 1, r.v4.size() + r.v6.size()));
    if (!fits_one_message(r.v4.size() * 14, r.v4.size()) || !fits_one_message(r.v6.size() * 26, r.v6.size()))
      fail_at(doc_, vips, where + ": more VIPs than a DNS message can carry");
    if (region_index_.count(r.name)) fail_at(doc_, item.first, where + " is declared twice");
    region_index_[r.name] = regions_.size();
    regions_.push_back(std::move(r));
  }
}

std::vector<std::uint8_t> ZoneBuilder::read_region_list(const common::Yaml& list, std::string_view where,
                                                        const std::vector<std::string>& allowed) {
  if (!list.is_sequence() || list.size() == 0)
    fail_at(doc_, list, std::string(where) + " must list region names");
  std::vector<std::uint8_t> out;
  for (const auto& item : list) {
    const std::string name = common::read_string(doc_, item, where);
    auto it = std::find(allowed.begin(), allowed.end(), name);
    if (it == allowed.end())
      fail_at(doc_, item,
              std::string(where) + ": region '" + name + "' is not one of this geo name's regions");
    const auto index = static_cast<std::uint8_t>(it - allowed.begin());
    if (std::find(out.begin(), out.end(), index) != out.end())
      fail_at(doc_, item, std::string(where) + ": region '" + name + "' is listed twice");
    out.push_back(index);
  }
  // A list is the whole failover order: a region left out is never answered,
  // so when the listed ones fail or are drained those clients get NODATA.
  std::string missing;
  for (std::size_t i = 0; i < allowed.size(); ++i)
    if (std::find(out.begin(), out.end(), i) == out.end())
      missing += (missing.empty() ? "" : ", ") + allowed[i];
  if (!missing.empty())
    fail_at(doc_, list,
            std::string(where) + ": leaves out " + missing +
                "; list every region of the geo name in the order to fail over (the clients would get "
                "NODATA once the listed regions are down or drained)");
  return out;
}

void ZoneBuilder::read_overrides(const common::Yaml& node, std::vector<GeoOverride>& out,
                                 std::string_view where, const std::vector<std::string>& allowed) {
  if (!node.is_map()) fail_at(doc_, node, std::string(where) + " must be a map of lists of regions");
  for (const auto& item : node) {
    std::string key = item.first.scalar();
    out.push_back({key, read_region_list(item.second, std::string(where) + " " + key, allowed),
                   common::line_of(item.first)});
  }
}

void ZoneBuilder::read_geo_names(const common::Yaml& geo) {
  if (!geo.is_map()) fail_at(doc_, geo, "geo must be a map of owner names");
  for (const auto& item : geo) {
    const WireName owner = read_owner(item.first);
    const std::string where = "geo name '" + item.first.scalar() + "'";
    const common::Yaml& body = item.second;
    for (const char* key : {"regions", "ttl", "overrides", "check", "all_down", "degraded_ttl"})
      if (item.first.scalar() == key)
        fail_at(doc_, item.first,
                "'" + item.first.scalar() +
                    "' is a key of a geo name, here at the level of the geo names: "
                    "indent it under the geo name it belongs to");
    common::require_map_keys(doc_, body, where,
                             {"regions", "ttl", "overrides", "check", "all_down", "degraded_ttl"});
    auto g = std::make_unique<GeoName>();
    g->file = doc_.path;
    g->line = common::line_of(item.first);
    if (body["ttl"]) g->ttl = read_ttl(body["ttl"], "ttl");
    g->degraded_ttl = g->ttl / 2;
    if (body["degraded_ttl"]) {
      g->degraded_ttl = read_ttl(body["degraded_ttl"], "degraded_ttl");
      if (g->degraded_ttl > g->ttl)
        fail_at(doc_, body["degraded_ttl"], where + ": degraded_ttl must not exceed ttl");
    }
    if (body["check"]) g->check = body["check"];
    if (!body["regions"]) fail_at(doc_, body, where + ": missing key 'regions'");
    std::vector<std::string> names;
    for (const auto& r : body["regions"]) {
      const std::string name = common::read_string(doc_, r, "regions");
      if (!region_index_.count(name))
        fail_at(doc_, r, where + ": region '" + name + "' is not declared under 'regions'");
      if (std::find(names.begin(), names.end(), name) != names.end())
        fail_at(doc_, r, where + ": region '" + name + "' is listed twice");
      names.push_back(name);
    }
    if (names.empty() || names.size() > 255)
      fail_at(doc_, body["regions"], where + ": 'regions' must list 1 to 255 regions");
    for (const auto& name : names) {
      const RegionDecl& r = regions_[region_index_.at(name)];
      GeoRegion out;
      out.name = r.name;
      out.latitude = r.latitude;
      out.longitude = r.longitude;
      out.a = make_rrset(rrtype::A, g->ttl, r.v4);
      out.aaaa = make_rrset(rrtype::AAAA, g->ttl, r.v6);
      out.a_vips = r.v4_vips;
      out.aaaa_vips = r.v6_vips;
      out.check = r.check;
      out.threshold = r.threshold;
      g->regions.push_back(std::move(out));
    }
    if (const common::Yaml policy = body["all_down"]) read_all_down(policy, *g, where, names);
    if (const common::Yaml o = body["overrides"]) {
      common::require_map_keys(doc_, o, where + " overrides", {"cidr", "country", "continent", "default"});
      if (o["cidr"]) read_overrides(o["cidr"], g->cidr, "cidr", names);
      if (o["country"]) read_overrides(o["country"], g->country, "country", names);
      if (o["continent"]) read_overrides(o["continent"], g->continent, "continent", names);
      if (o["default"]) g->default_list = read_region_list(o["default"], "default", names);
    }
    if (geo_owners_.count(owner)) fail_at(doc_, item.first, where + " is declared twice");
    geo_owners_[owner] = g.get();
    pending_geo_.push_back(std::move(g));
  }
}

void ZoneBuilder::read_all_down(const common::Yaml& policy, GeoName& g, const std::string& where,
                                const std::vector<std::string>& names) {
  if (policy.is_map()) {
    common::require_map_keys(doc_, policy, where + " all_down", {"fallback"});
    if (!policy["fallback"]) fail_at(doc_, policy, where + ": all_down needs 'fallback: REGION'");
    const std::string region = common::read_string(doc_, policy["fallback"], "fallback");
    auto it = std::find(names.begin(), names.end(), region);
    if (it == names.end())
      fail_at(doc_, policy["fallback"],
              where + ": fallback region '" + region + "' is not one of this geo name's regions");
    g.all_down = AllDown::fallback;
    g.all_down_region = static_cast<std::uint8_t>(it - names.begin());
    return;
  }
  const std::string text = common::read_string(doc_, policy, "all_down");
  if (text == "serve-nearest") g.all_down = AllDown::serve_nearest;
  else if (text == "nodata") g.all_down = AllDown::nodata;
  else if (text == "servfail") g.all_down = AllDown::servfail;
  else
    fail_at(doc_, policy,
            where + ": all_down '" + text + "' is not serve-nearest, nodata, servfail or {fallback: REGION}");
}

}  // namespace steerdns::zones
