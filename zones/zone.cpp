#include "zones/zone.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <iterator>
#include <map>

#include "zones/builder.hpp"

namespace steerdns::zones {

using common::fail_at;
using common::LoadError;
using common::YamlDoc;

std::unique_ptr<Zone> ZoneBuilder::build() {
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

void ZoneBuilder::read_apex(const common::Yaml& root) {
  if (!root["zone"]) fail_at(doc_, root, "missing key 'zone' (the zone's name)");
  const std::string text = common::read_string(doc_, root["zone"], "zone");
  auto apex = name_from_text(text.empty() || text.back() != '.' ? text + "." : text);
  if (!apex) fail_at(doc_, root["zone"], "zone: '" + text + "' is not a domain name");
  zone_->apex_ = *apex;
  apex_text_ = name_to_text(*apex);
  origin_ = ldns_dname_new_frm_str(apex_text_.c_str());
}

WireName ZoneBuilder::read_owner(const common::Yaml& key) {
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

void ZoneBuilder::add_record(const WireName& owner, std::uint16_t type, std::string_view type_name,
                             std::uint32_t ttl, std::string data, const common::Yaml& at) {
  if (type == rrtype::TXT) data = txt_presentation(data);
  const std::string line = name_to_text(owner) + " " + std::to_string(ttl) + " IN " + std::string(type_name) +
                           " " + data;
  ldns_rr* rr = nullptr;
  const ldns_status status = ldns_rr_new_frm_str(&rr, line.c_str(), ttl, origin_, nullptr);
  if (status != LDNS_STATUS_OK || rr == nullptr)
    fail_at(doc_, at, std::string(type_name) + " '" + data + "': " + ldns_get_errorstr_by_id(status));
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

void ZoneBuilder::read_soa(const common::Yaml& soa) {
  common::require_map_keys(doc_, soa, "soa",
                           {"mname", "rname", "serial", "refresh", "retry", "expire", "minimum", "ttl"});
  for (const char* key : {"mname", "rname"})
    if (!soa[key]) fail_at(doc_, soa, std::string("soa: missing key '") + key + "'");
  std::uint32_t serial = 0;
  if (!soa["serial"] || (soa["serial"].is_scalar() && soa["serial"].scalar() == "auto")) {
    serial = serials_ != nullptr ? serials_->serial(name_to_text(zone_->apex_), digest_)
                                 : AutoSerial::candidate(digest_, 0);
  } else {
    serial = static_cast<std::uint32_t>(common::read_uint(doc_, soa["serial"], "soa serial", 0, 0xffffffff));
  }
  auto number = [&](const char* key, std::uint32_t otherwise) {
    return soa[key] ? read_ttl(soa[key], std::string("soa ") + key) : otherwise;
  };
  const std::uint32_t ttl = number("ttl", default_ttl_);
  minimum_ = number("minimum", 300);
  const std::string data = common::read_string(doc_, soa["mname"], "soa mname") + " " +
                           common::read_string(doc_, soa["rname"], "soa rname") + " " +
                           std::to_string(serial) + " " + std::to_string(number("refresh", 3600)) + " " +
                           std::to_string(number("retry", 600)) + " " +
                           std::to_string(number("expire", 1209600)) + " " + std::to_string(minimum_);
  zone_->serial_ = serial;
  add_record(zone_->apex_, rrtype::SOA, "SOA", ttl, data, soa);
}

void ZoneBuilder::read_apex_ns(const common::Yaml& ns) {
  if (ns.is_scalar()) {
    add_record(zone_->apex_, rrtype::NS, "NS", default_ttl_, ns.scalar(), ns);
    return;
  }
  if (!ns.is_sequence() || ns.size() == 0) fail_at(doc_, ns, "ns must list the zone's name servers");
  for (const auto& item : ns)
    add_record(zone_->apex_, rrtype::NS, "NS", default_ttl_, common::read_string(doc_, item, "ns"), item);
}

void ZoneBuilder::read_records(const common::Yaml& records) {
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

void ZoneBuilder::read_rrset(const WireName& owner, const TypeInfo& info, std::uint32_t ttl,
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
      add_record(owner, info.type, info.name, ttl, common::read_string(doc_, item, info.name), item);
  } else {
    fail_at(doc_, data, std::string(info.name) + ": expected record data or a list of it");
  }
}

RRset ZoneBuilder::make_rrset(std::uint16_t type, std::uint32_t ttl, const std::vector<std::string>& rdatas) {
  RRset out;
  out.type = type;
  out.ttl = ttl;
  out.count = static_cast<std::uint16_t>(rdatas.size());
  out.wire = render_records(type, ttl, rdatas);
  return out;
}

void ZoneBuilder::validate() {
  for (const auto& [owner, geo] : geo_owners_) {
    if (owner == zone_->apex_) throw LoadError(doc_.path, geo->line, "a geo name cannot be the zone apex");
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
      if (owner == zone_->apex_) throw LoadError(doc_.path, line, "CNAME at the zone apex " + text);
      if (entry.rrsets.size() > 1)
        throw LoadError(doc_.path, line, "CNAME and other data at " + text + " (RFC 2181 §10.1)");
      if (cname->second.rdatas.size() > 1) throw LoadError(doc_.path, line, "more than one CNAME at " + text);
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
                          "only glue (A, AAAA) may live at or below the delegation " + name_to_text(cut) +
                              ", not at " + text);
      }
    }
  }
  // An NS target inside the zone is resolved from the zone itself: without
  // an address there, resolvers cannot reach the server (named-checkzone
  // refuses the same). Geo names answer A and AAAA themselves.
  for (const auto& [owner, entry] : pending_) {
    auto ns = entry.rrsets.find(rrtype::NS);
    if (ns == entry.rrsets.end()) continue;
    for (const WireName& target : ns->second.targets) {
      if (!is_at_or_below(target, zone_->apex_) || geo_owners_.count(target)) continue;
      auto t = pending_.find(target);
      if (t != pending_.end() && (t->second.rrsets.count(rrtype::A) || t->second.rrsets.count(rrtype::AAAA)))
        continue;
      throw LoadError(doc_.path, ns->second.line,
                      "NS " + name_to_text(target) + " of " + name_to_text(owner) +
                          " is inside the zone but has no address: give it an A or AAAA record");
    }
  }
}

void ZoneBuilder::compile() {
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
        throw LoadError(doc_.path, set.line, "the rrset is larger than a DNS message can carry");
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

void ZoneBuilder::link_additional(const std::string& owner, const Node& node, RRset& rrset) {
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

std::uint64_t AutoSerial::digest(std::string_view content) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (const unsigned char c : content) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

std::uint32_t AutoSerial::candidate(std::uint64_t digest, unsigned k) noexcept {
  std::uint64_t x = digest + (k + 1) * 0x9e3779b97f4a7c15ull;  // splitmix64
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  x ^= x >> 31;
  return static_cast<std::uint32_t>(x ^ (x >> 32));
}

std::unique_ptr<Zone> load_zone(const std::string& path, AutoSerial* serials) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw LoadError(path, 0, "cannot open file");
  const std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  return load_zone_text(text, path, serials);
}

std::unique_ptr<Zone> load_zone_text(std::string_view text, const std::string& path, AutoSerial* serials) {
  return ZoneBuilder(common::parse_yaml_text(text, path), AutoSerial::digest(text), serials).build();
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
                      "zone " + name_to_text(zone->apex()) + " is also defined in " + it->second->file());
  }
}

}  // namespace steerdns::zones
