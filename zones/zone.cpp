#include "zones/zone.hpp"

#include "common/ldns.hpp"
#include <arpa/inet.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>

#include "common/load_error.hpp"

namespace steerdns::zones {

using common::fail_at;
using common::LoadError;
using common::YamlDoc;

namespace {

constexpr std::uint32_t kDefaultTtl = 3600;
constexpr std::uint32_t kMaxTtl = 0x7fffffff;  // RFC 2181 §8
// Whether an rrset fits one TCP message (RFC 1035 §4.2.2) when answered: its
// records, a compressed owner (2 octets) each, the header, the largest
// question, and OPT with an IPv6 ECS option. One that does not could never be
// answered, not even over TCP, so it is refused at load.
bool fits_one_message(std::size_t wire, std::size_t count) {
  constexpr std::size_t kOverhead = 12 + 255 + 4 + 11 + 8 + 16;
  return wire + 2 * count + kOverhead <= 65535;
}

struct TypeInfo {
  std::string_view name;
  std::uint16_t type;
};
constexpr TypeInfo kRecordTypes[] = {
    {"A", rrtype::A},     {"AAAA", rrtype::AAAA}, {"CNAME", rrtype::CNAME},
    {"MX", rrtype::MX},   {"TXT", rrtype::TXT},   {"SRV", rrtype::SRV},
    {"CAA", rrtype::CAA}, {"PTR", rrtype::PTR},   {"NS", rrtype::NS},
};

void append_u16(std::string& out, std::uint16_t v) {
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v & 0xff);
}
void append_u32(std::string& out, std::uint32_t v) {
  append_u16(out, static_cast<std::uint16_t>(v >> 16));
  append_u16(out, static_cast<std::uint16_t>(v & 0xffff));
}

std::string render_records(std::uint16_t type, std::uint32_t ttl,
                           const std::vector<std::string>& rdatas) {
  std::string wire;
  for (const auto& rdata : rdatas) {
    append_u16(wire, type);
    append_u16(wire, 1);  // class IN
    append_u32(wire, ttl);
    append_u16(wire, static_cast<std::uint16_t>(rdata.size()));
    wire += rdata;
  }
  return wire;
}

// A TXT value that does not start with a quote is one text: quote it and
// split it into character-strings of at most 255 bytes (RFC 1035 §3.3.14).
std::string txt_presentation(const std::string& text) {
  if (!text.empty() && text.front() == '"') return text;
  std::string out;
  std::size_t in_chunk = 0;
  out += '"';
  for (unsigned char c : text) {
    if (in_chunk == 255) {
      out += "\" \"";
      in_chunk = 0;
    }
    if (c == '"' || c == '\\') out += '\\';
    out += static_cast<char>(c);
    ++in_chunk;
  }
  out += '"';
  return out;
}

struct PendingRRset {
  std::uint32_t ttl = 0;
  int line = 0;
  std::vector<std::string> rdatas;   // wire RDATA, names lower-cased
  std::vector<WireName> targets;     // NS/MX/SRV/CNAME target of each rdata
};

struct PendingOwner {
  int line = 0;
  std::map<std::uint16_t, PendingRRset> rrsets;  // ordered by type
};

}  // namespace

class ZoneBuilder {
 public:
  explicit ZoneBuilder(YamlDoc doc) : doc_(std::move(doc)), zone_(std::make_unique<Zone>()) {}

  std::unique_ptr<Zone> build() {
    const common::Yaml& root = doc_.root;
    if (!root.is_defined() || root.is_null()) fail_at(doc_, root, "the zone file is empty");
    common::require_map_keys(doc_, root, "zone file",
                             {"zone", "ttl", "soa", "ns", "records", "regions", "geo"});
    zone_->file_ = doc_.path;
    read_apex(root);
    if (root["ttl"]) default_ttl_ = read_ttl(root["ttl"], "ttl");
    if (!root["soa"]) fail_at(doc_, root, "missing key 'soa'");
    read_soa(root["soa"]);
    if (!root["ns"]) fail_at(doc_, root, "missing key 'ns' (the zone's name servers)");
    read_apex_ns(root["ns"]);
    if (root["records"]) read_records(root["records"]);
    if (root["regions"]) read_regions(root["regions"]);
    if (root["geo"]) read_geo_names(root["geo"]);
    validate();
    compile();
    return std::move(zone_);
  }

 private:
  void read_apex(const common::Yaml& root) {
    if (!root["zone"]) fail_at(doc_, root, "missing key 'zone' (the zone's name)");
    const std::string text = common::read_string(doc_, root["zone"], "zone");
    auto apex = name_from_text(text.empty() || text.back() != '.' ? text + "." : text);
    if (!apex) fail_at(doc_, root["zone"], "zone: '" + text + "' is not a domain name");
    zone_->apex_ = *apex;
    apex_text_ = name_to_text(*apex);
    origin_ = ldns_dname_new_frm_str(apex_text_.c_str());
  }

  std::uint32_t read_ttl(const common::Yaml& node, std::string_view key) {
    return static_cast<std::uint32_t>(common::read_uint(doc_, node, key, 0, kMaxTtl));
  }

  // Owner key → lower-cased wire name inside the zone.
  WireName read_owner(const common::Yaml& key) {
    const std::string text = key.scalar();
    if (text == "@") return zone_->apex_;
    std::string absolute = text;
    if (text.empty() || text.back() != '.') absolute = text + "." + apex_text_;
    auto name = name_from_text(absolute);
    if (!name) fail_at(doc_, key, "'" + text + "' is not a domain name");
    if (!is_at_or_below(*name, zone_->apex_))
      fail_at(doc_, key, "'" + text + "' is outside zone " + apex_text_);
    return *name;
  }

  // Parses one record's presentation data with ldns and stores its wire form.
  void add_record(const WireName& owner, std::uint16_t type, std::string_view type_name,
                  std::uint32_t ttl, std::string data, const common::Yaml& at) {
    if (type == rrtype::TXT) data = txt_presentation(data);
    const std::string line = name_to_text(owner) + " " + std::to_string(ttl) + " IN " +
                             std::string(type_name) + " " + data;
    ldns_rr* rr = nullptr;
    const ldns_status status = ldns_rr_new_frm_str(&rr, line.c_str(), ttl, origin_, nullptr);
    if (status != LDNS_STATUS_OK || rr == nullptr)
      fail_at(doc_, at,
              std::string(type_name) + " '" + data + "': " + ldns_get_errorstr_by_id(status));
    if (ldns_rr_get_type(rr) != type || ldns_rr_rd_count(rr) == 0) {
      ldns_rr_free(rr);
      fail_at(doc_, at, std::string(type_name) + " '" + data + "': not valid record data");
    }
    std::string rdata;
    std::vector<WireName> names;
    for (std::size_t i = 0; i < ldns_rr_rd_count(rr); ++i) {
      ldns_rdf* rdf = ldns_rr_rdf(rr, i);
      if (ldns_rdf_get_type(rdf) == LDNS_RDF_TYPE_DNAME) {
        // ldns completes a relative name with the origin without checking
        // the result's length (RFC 1035 §2.3.4: 255 octets at most).
        if (ldns_rdf_size(rdf) > 255) {
          ldns_rr_free(rr);
          fail_at(doc_, at, std::string(type_name) + " '" + data + "': a name in it is longer than 255 octets");
        }
        ldns_dname2canonical(rdf);
        names.emplace_back(reinterpret_cast<const char*>(ldns_rdf_data(rdf)), ldns_rdf_size(rdf));
      }
      rdata.append(reinterpret_cast<const char*>(ldns_rdf_data(rdf)), ldns_rdf_size(rdf));
    }
    ldns_rr_free(rr);
    if (rdata.size() > 0xffff) fail_at(doc_, at, std::string(type_name) + ": record data too long");

    auto& owner_entry = pending_[owner];
    if (owner_entry.line == 0) owner_entry.line = common::line_of(at);
    auto& set = owner_entry.rrsets[type];
    if (set.rdatas.empty()) {
      set.ttl = ttl;
      set.line = common::line_of(at);
    } else if (set.ttl != ttl) {
      fail_at(doc_, at, std::string(type_name) + ": all records of an rrset need one TTL");
    }
    if (std::find(set.rdatas.begin(), set.rdatas.end(), rdata) != set.rdatas.end()) return;
    set.rdatas.push_back(std::move(rdata));
    set.targets.push_back(names.empty() ? WireName() : names.back());
  }

  void read_soa(const common::Yaml& soa) {
    common::require_map_keys(doc_, soa, "soa",
                             {"mname", "rname", "serial", "refresh", "retry", "expire",
                              "minimum", "ttl"});
    for (const char* key : {"mname", "rname"})
      if (!soa[key]) fail_at(doc_, soa, std::string("soa: missing key '") + key + "'");
    std::uint32_t serial = 0;
    if (!soa["serial"] || (soa["serial"].is_scalar() && soa["serial"].scalar() == "auto")) {
      struct stat st {};
      if (stat(doc_.path.c_str(), &st) != 0) fail_at(doc_, soa, "cannot stat the zone file");
      serial = static_cast<std::uint32_t>(st.st_mtime);
    } else {
      serial = static_cast<std::uint32_t>(
          common::read_uint(doc_, soa["serial"], "soa serial", 0, 0xffffffff));
    }
    auto number = [&](const char* key, std::uint32_t otherwise) {
      return soa[key] ? read_ttl(soa[key], std::string("soa ") + key) : otherwise;
    };
    const std::uint32_t ttl = number("ttl", default_ttl_);
    minimum_ = number("minimum", 300);
    const std::string data = common::read_string(doc_, soa["mname"], "soa mname") + " " +
                             common::read_string(doc_, soa["rname"], "soa rname") + " " +
                             std::to_string(serial) + " " +
                             std::to_string(number("refresh", 3600)) + " " +
                             std::to_string(number("retry", 600)) + " " +
                             std::to_string(number("expire", 1209600)) + " " +
                             std::to_string(minimum_);
    zone_->serial_ = serial;
    add_record(zone_->apex_, rrtype::SOA, "SOA", ttl, data, soa);
  }

  void read_apex_ns(const common::Yaml& ns) {
    if (ns.is_scalar()) {
      add_record(zone_->apex_, rrtype::NS, "NS", default_ttl_, ns.scalar(), ns);
      return;
    }
    if (!ns.is_sequence() || ns.size() == 0)
      fail_at(doc_, ns, "ns must list the zone's name servers");
    for (const auto& item : ns)
      add_record(zone_->apex_, rrtype::NS, "NS", default_ttl_,
                 common::read_string(doc_, item, "ns"), item);
  }

  void read_records(const common::Yaml& records) {
    if (!records.is_map()) fail_at(doc_, records, "records must be a map of owner names");
    for (const auto& owner_item : records) {
      const WireName owner = read_owner(owner_item.first);
      const common::Yaml& types = owner_item.second;
      if (!types.is_map())
        fail_at(doc_, owner_item.first,
                "records of '" + owner_item.first.scalar() + "' must be a map of types");
      std::uint32_t owner_ttl = default_ttl_;
      if (types["ttl"]) owner_ttl = read_ttl(types["ttl"], "ttl");
      for (const auto& type_item : types) {
        std::string type_name = type_item.first.scalar();
        if (type_name == "ttl") continue;
        std::transform(type_name.begin(), type_name.end(), type_name.begin(),
                       [](unsigned char c) { return std::toupper(c); });
        const TypeInfo* info = nullptr;
        for (const auto& t : kRecordTypes)
          if (t.name == type_name) info = &t;
        if (info == nullptr) {
          if (type_name == "SOA")
            fail_at(doc_, type_item.first, "SOA belongs in the 'soa' key, not in records");
          fail_at(doc_, type_item.first,
                  "unsupported record type '" + type_item.first.scalar() +
                      "' (supported: A AAAA CNAME MX TXT SRV CAA PTR NS)");
        }
        if (info->type == rrtype::NS && owner == zone_->apex_)
          fail_at(doc_, type_item.first, "the apex NS rrset belongs in the 'ns' key");
        read_rrset(owner, *info, owner_ttl, type_item.second);
      }
    }
  }

  void read_rrset(const WireName& owner, const TypeInfo& info, std::uint32_t ttl,
                  const common::Yaml& value) {
    common::Yaml data = value;
    if (value.is_map()) {
      common::require_map_keys(doc_, value, std::string(info.name), {"ttl", "data"});
      if (value["ttl"]) ttl = read_ttl(value["ttl"], "ttl");
      if (!value["data"]) fail_at(doc_, value, std::string(info.name) + ": missing key 'data'");
      data = value["data"];
    }
    if (data.is_scalar()) {
      add_record(owner, info.type, info.name, ttl, data.scalar(), data);
    } else if (data.is_sequence() && data.size() > 0) {
      for (const auto& item : data)
        add_record(owner, info.type, info.name, ttl,
                   common::read_string(doc_, item, info.name), item);
    } else {
      fail_at(doc_, data, std::string(info.name) + ": expected record data or a list of it");
    }
  }

  struct RegionDecl {
    std::string name;
    double latitude = 0, longitude = 0;
    std::vector<std::string> v4, v6;  // VIPs as RDATA
    std::vector<GeoVip> v4_vips, v6_vips;  // the same VIPs as written
    common::Yaml check;
    unsigned threshold = 1;
    int line = 0;
  };

  double read_degrees(const common::Yaml& node, std::string_view key, double limit) {
    const std::string text = common::read_string(doc_, node, key);
    double value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    // Written so that NaN ("nan" parses) fails too: it compares false.
    if (ec != std::errc() || end != text.data() + text.size() || !(value >= -limit && value <= limit))
      fail_at(doc_, node, std::string(key) + ": '" + text + "' is not a number in -" +
                              std::to_string(static_cast<int>(limit)) + ".." +
                              std::to_string(static_cast<int>(limit)));
    return value;
  }

  void read_regions(const common::Yaml& regions) {
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
        fail_at(doc_, location ? location : body,
                where + ": 'location' must be [latitude, longitude]");
      r.latitude = read_degrees(location[0], "latitude", 90);
      r.longitude = read_degrees(location[1], "longitude", 180);
      const common::Yaml vips = body["vips"];
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
        family->push_back(std::move(rdata));
        (size == 4 ? r.v4_vips : r.v6_vips).push_back({text, check});
      }
      if (body["threshold"])
        r.threshold = static_cast<unsigned>(common::read_uint(
            doc_, body["threshold"], "threshold", 1, r.v4.size() + r.v6.size()));
      if (!fits_one_message(r.v4.size() * 14, r.v4.size()) ||
          !fits_one_message(r.v6.size() * 26, r.v6.size()))
        fail_at(doc_, vips, where + ": more VIPs than a DNS message can carry");
      if (region_index_.count(r.name)) fail_at(doc_, item.first, where + " is declared twice");
      region_index_[r.name] = regions_.size();
      regions_.push_back(std::move(r));
    }
  }

  // A list of region names, all among the geo name's own regions.
  std::vector<std::uint8_t> read_region_list(const common::Yaml& list, std::string_view where,
                                             const std::vector<std::string>& allowed) {
    if (!list.is_sequence() || list.size() == 0)
      fail_at(doc_, list, std::string(where) + " must list region names");
    std::vector<std::uint8_t> out;
    for (const auto& item : list) {
      const std::string name = common::read_string(doc_, item, where);
      auto it = std::find(allowed.begin(), allowed.end(), name);
      if (it == allowed.end())
        fail_at(doc_, item, std::string(where) + ": region '" + name +
                                "' is not one of this geo name's regions");
      const auto index = static_cast<std::uint8_t>(it - allowed.begin());
      if (std::find(out.begin(), out.end(), index) != out.end())
        fail_at(doc_, item, std::string(where) + ": region '" + name + "' is listed twice");
      out.push_back(index);
    }
    return out;
  }

  void read_overrides(const common::Yaml& node, std::vector<GeoOverride>& out,
                      std::string_view where, const std::vector<std::string>& allowed) {
    if (!node.is_map())
      fail_at(doc_, node, std::string(where) + " must be a map of lists of regions");
    for (const auto& item : node) {
      std::string key = item.first.scalar();
      out.push_back({key, read_region_list(item.second, std::string(where) + " " + key, allowed),
                     common::line_of(item.first)});
    }
  }

  void read_geo_names(const common::Yaml& geo) {
    if (!geo.is_map()) fail_at(doc_, geo, "geo must be a map of owner names");
    for (const auto& item : geo) {
      const WireName owner = read_owner(item.first);
      const std::string where = "geo name '" + item.first.scalar() + "'";
      const common::Yaml& body = item.second;
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

  // serve-nearest | nodata | servfail | {fallback: REGION}
  void read_all_down(const common::Yaml& policy, GeoName& g, const std::string& where,
                     const std::vector<std::string>& names) {
    if (policy.is_map()) {
      common::require_map_keys(doc_, policy, where + " all_down", {"fallback"});
      if (!policy["fallback"]) fail_at(doc_, policy, where + ": all_down needs 'fallback: REGION'");
      const std::string region = common::read_string(doc_, policy["fallback"], "fallback");
      auto it = std::find(names.begin(), names.end(), region);
      if (it == names.end())
        fail_at(doc_, policy["fallback"], where + ": fallback region '" + region +
                                              "' is not one of this geo name's regions");
      g.all_down = AllDown::fallback;
      g.all_down_region = static_cast<std::uint8_t>(it - names.begin());
      return;
    }
    const std::string text = common::read_string(doc_, policy, "all_down");
    if (text == "serve-nearest") g.all_down = AllDown::serve_nearest;
    else if (text == "nodata") g.all_down = AllDown::nodata;
    else if (text == "servfail") g.all_down = AllDown::servfail;
    else
      fail_at(doc_, policy, where + ": all_down '" + text +
                                "' is not serve-nearest, nodata, servfail or {fallback: REGION}");
  }

  static RRset make_rrset(std::uint16_t type, std::uint32_t ttl, const std::vector<std::string>& rdatas) {
    RRset out;
    out.type = type;
    out.ttl = ttl;
    out.count = static_cast<std::uint16_t>(rdatas.size());
    out.wire = render_records(type, ttl, rdatas);
    return out;
  }

  void validate() {
    for (const auto& [owner, geo] : geo_owners_) {
      if (owner == zone_->apex_)
        throw LoadError(doc_.path, geo->line, "a geo name cannot be the zone apex");
      if (pending_.count(owner))
        throw LoadError(doc_.path, geo->line,
                        "geo name " + name_to_text(owner) + " also has records; it answers A and AAAA itself");
      for (const auto& [other, entry] : pending_)
        if (other != owner && entry.rrsets.count(rrtype::NS) && other != zone_->apex_ &&
            is_at_or_below(owner, other))
          throw LoadError(doc_.path, geo->line,
                          "geo name " + name_to_text(owner) + " lies below the delegation " +
                              name_to_text(other));
    }

    // Delegations: NS anywhere but the apex. Below a cut only glue may live.
    std::vector<WireName> cuts;
    for (const auto& [owner, entry] : pending_)
      if (owner != zone_->apex_ && entry.rrsets.count(rrtype::NS)) cuts.push_back(owner);

    for (const auto& [owner, entry] : pending_) {
      const std::string text = name_to_text(owner);
      if (auto cname = entry.rrsets.find(rrtype::CNAME); cname != entry.rrsets.end()) {
        const int line = cname->second.line;
        if (owner == zone_->apex_)
          throw LoadError(doc_.path, line, "CNAME at the zone apex " + text);
        if (entry.rrsets.size() > 1)
          throw LoadError(doc_.path, line, "CNAME and other data at " + text + " (RFC 2181 §10.1)");
        if (cname->second.rdatas.size() > 1)
          throw LoadError(doc_.path, line, "more than one CNAME at " + text);
      }
      for (const auto& cut : cuts) {
        if (!is_at_or_below(owner, cut)) continue;
        if (is_wildcard(owner))
          throw LoadError(doc_.path, entry.line, "wildcard " + text + " at or below a delegation");
        for (const auto& [type, set] : entry.rrsets) {
          const bool allowed = type == rrtype::A || type == rrtype::AAAA ||
                               (owner == cut && type == rrtype::NS);
          if (!allowed)
            throw LoadError(doc_.path, set.line,
                            "only glue (A, AAAA) may live at or below the delegation " +
                                name_to_text(cut) + ", not at " + text);
        }
      }
    }
  }

  void compile() {
    Zone& z = *zone_;
    for (auto& [owner, entry] : pending_) {
      // The node, then every ancestor up to the apex as an empty non-terminal.
      Node& node = z.nodes_[owner];
      for (std::string_view up = owner; up != z.apex_;) {
        up = parent_name(up);
        z.nodes_.try_emplace(std::string(up));
      }
      for (auto& [type, set] : entry.rrsets) {
        RRset out;
        out.type = type;
        out.ttl = set.ttl;
        out.count = static_cast<std::uint16_t>(set.rdatas.size());
        out.wire = render_records(type, set.ttl, set.rdatas);
        if (!fits_one_message(out.wire.size(), set.rdatas.size()))
          throw LoadError(doc_.path, set.line,
                          "the rrset is larger than a DNS message can carry");
        if (type == rrtype::CNAME) out.cname_target = set.targets.front();
        z.record_count_ += out.count;
        node.rrsets.push_back(std::move(out));
      }
    }
    for (auto& [owner, geo] : geo_owners_) {
      z.nodes_[owner];
      for (std::string_view up = owner; up != z.apex_;) {
        up = parent_name(up);
        z.nodes_.try_emplace(std::string(up));
      }
    }
    for (auto& [owner, node] : z.nodes_) node.owner = owner;
    for (auto& [owner, geo] : geo_owners_) {
      Node& node = z.nodes_.at(owner);
      geo->owner = node.owner;
      node.geo = geo;
      for (const auto& r : geo->regions) z.record_count_ += r.a.count + r.aaaa.count;
    }
    z.geo_names_ = std::move(pending_geo_);
    z.apex_node_ = &z.nodes_.at(z.apex_);

    for (auto& [owner, node] : z.nodes_) {
      if (is_wildcard(owner)) z.nodes_.at(std::string(parent_name(owner))).wildcard = &node;
      // The highest delegation at or above this node decides referrals.
      for (std::string_view up = owner; up != z.apex_; up = parent_name(up)) {
        const Node* n = z.find(up);
        if (n != nullptr && n->find(rrtype::NS) != nullptr) node.cut = n;
      }
    }
    for (auto& [owner, node] : z.nodes_) {
      for (auto& rrset : node.rrsets) link_additional(owner, node, rrset);
    }

    const RRset& soa = *z.apex_node_->find(rrtype::SOA);
    z.negative_soa_ = soa;
    z.negative_soa_.ttl = std::min(soa.ttl, minimum_);
    const auto& soa_pending = pending_.at(z.apex_).rrsets.at(rrtype::SOA);
    z.negative_soa_.wire = render_records(rrtype::SOA, z.negative_soa_.ttl, soa_pending.rdatas);
  }

  // Address records of NS, MX and SRV targets we serve go to the additional
  // section; for a delegation they are the glue (RFC 9471).
  void link_additional(const std::string& owner, const Node& node, RRset& rrset) {
    if (rrset.type != rrtype::NS && rrset.type != rrtype::MX && rrset.type != rrtype::SRV) return;
    const auto& targets = pending_.at(owner).rrsets.at(rrset.type).targets;
    const bool glue = rrset.type == rrtype::NS && node.is_delegation();
    for (const auto& target : targets) {
      const Node* t = zone_->find(target);
      if (t == nullptr || (!glue && t->cut != nullptr)) continue;
      const bool seen = std::any_of(rrset.additional.begin(), rrset.additional.end(),
                                    [&](const AdditionalRRset& a) { return a.owner == t->owner; });
      if (seen) continue;
      for (std::uint16_t type : {rrtype::A, rrtype::AAAA})
        if (const RRset* addr = t->find(type)) rrset.additional.push_back({t->owner, addr});
    }
  }

  YamlDoc doc_;
  std::unique_ptr<Zone> zone_;
  std::string apex_text_;
  ldns_rdf* origin_ = nullptr;
  std::uint32_t default_ttl_ = kDefaultTtl;
  std::uint32_t minimum_ = 300;
  std::map<WireName, PendingOwner> pending_;
  std::vector<RegionDecl> regions_;
  std::map<std::string, std::size_t> region_index_;
  std::map<WireName, GeoName*> geo_owners_;
  std::vector<std::unique_ptr<GeoName>> pending_geo_;

 public:
  ~ZoneBuilder() {
    if (origin_ != nullptr) ldns_rdf_deep_free(origin_);
  }
  ZoneBuilder(const ZoneBuilder&) = delete;
  ZoneBuilder& operator=(const ZoneBuilder&) = delete;
};

std::unique_ptr<Zone> load_zone(const std::string& path) {
  return ZoneBuilder(common::load_yaml_file(path)).build();
}

std::unique_ptr<Zone> load_zone_text(std::string_view text, const std::string& path) {
  return ZoneBuilder(common::parse_yaml_text(text, path)).build();
}

ZoneTable::ZoneTable(std::vector<std::unique_ptr<Zone>> zones) : zones_(std::move(zones)) {
  for (const auto& zone : zones_) {
    for (auto& geo : zone->geo_names_) {
      geo->id = geo_names_.size();
      geo_names_.push_back(geo.get());
    }
    auto [it, inserted] = by_apex_.emplace(zone->apex(), zone.get());
    if (!inserted)
      throw LoadError(zone->file(), 0,
                      "zone " + name_to_text(zone->apex()) + " is also defined in " +
                          it->second->file());
  }
}

}  // namespace steerdns::zones
