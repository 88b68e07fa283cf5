// Reading a zone file into a Zone: the ZoneBuilder, shared by zone.cpp
// (apex, SOA, NS, records, validation, compilation to wire) and
// geo_names.cpp (regions and geo names). Internal to zones/: load-time only,
// throws common::LoadError with file:line:reason.
#pragma once

#include <arpa/inet.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/ldns.hpp"
#include "common/load_error.hpp"
#include "common/yaml.hpp"
#include "zones/name.hpp"
#include "zones/zone.hpp"

namespace steerdns::zones {

constexpr std::uint32_t kDefaultTtl = 3600;
constexpr std::uint32_t kMaxTtl = 0x7fffffff;  // RFC 2181 §8
// Whether an rrset fits one TCP message (RFC 1035 §4.2.2) when answered: its
// records, a compressed owner (2 octets) each, the header, the largest
// question, and OPT with an IPv6 ECS option. One that does not could never be
// answered, not even over TCP, so it is refused at load.
inline bool fits_one_message(std::size_t wire, std::size_t count) {
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

inline void append_u16(std::string& out, std::uint16_t v) {
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v & 0xff);
}
inline void append_u32(std::string& out, std::uint32_t v) {
  append_u16(out, static_cast<std::uint16_t>(v >> 16));
  append_u16(out, static_cast<std::uint16_t>(v & 0xffff));
}

inline std::string render_records(std::uint16_t type, std::uint32_t ttl,
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
inline std::string txt_presentation(const std::string& text) {
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
  std::vector<std::string> rdatas;  // wire RDATA, names lower-cased
  std::vector<WireName> targets;    // NS/MX/SRV/CNAME target of each rdata
};

struct PendingOwner {
  int line = 0;
  std::map<std::uint16_t, PendingRRset> rrsets;  // ordered by type
};

class ZoneBuilder {
 public:
  ZoneBuilder(common::YamlDoc doc, std::uint64_t digest, AutoSerial* serials)
      : doc_(std::move(doc)), zone_(std::make_unique<Zone>()), digest_(digest), serials_(serials) {}

  std::unique_ptr<Zone> build();

 private:
  void read_apex(const common::Yaml& root);

  std::uint32_t read_ttl(const common::Yaml& node, std::string_view key) {
    return static_cast<std::uint32_t>(common::read_uint(doc_, node, key, 0, kMaxTtl));
  }

  // Owner key → lower-cased wire name inside the zone.
  WireName read_owner(const common::Yaml& key);

  // Parses one record's presentation data with ldns and stores its wire form.
  void add_record(const WireName& owner, std::uint16_t type, std::string_view type_name, std::uint32_t ttl,
                  std::string data, const common::Yaml& at);

  void read_soa(const common::Yaml& soa);

  void read_apex_ns(const common::Yaml& ns);

  void read_records(const common::Yaml& records);

  void read_rrset(const WireName& owner, const TypeInfo& info, std::uint32_t ttl, const common::Yaml& value);

  struct RegionDecl {
    std::string name;
    double latitude = 0, longitude = 0;
    std::vector<std::string> v4, v6;       // VIPs as RDATA
    std::vector<GeoVip> v4_vips, v6_vips;  // the same VIPs as written
    common::Yaml check;
    unsigned threshold = 1;
    int line = 0;
  };

  double read_degrees(const common::Yaml& node, std::string_view key, double limit);

  void read_regions(const common::Yaml& regions);

  // A list of region names, all among the geo name's own regions.
  std::vector<std::uint8_t> read_region_list(const common::Yaml& list, std::string_view where,
                                             const std::vector<std::string>& allowed);

  void read_overrides(const common::Yaml& node, std::vector<GeoOverride>& out, std::string_view where,
                      const std::vector<std::string>& allowed);

  void read_geo_names(const common::Yaml& geo);

  // serve-nearest | nodata | servfail | {fallback: REGION}
  void read_all_down(const common::Yaml& policy, GeoName& g, const std::string& where,
                     const std::vector<std::string>& names);

  static RRset make_rrset(std::uint16_t type, std::uint32_t ttl, const std::vector<std::string>& rdatas);

  void validate();

  void compile();

  // Address records of NS, MX and SRV targets we serve go to the additional
  // section; for a delegation they are the glue (RFC 9471).
  void link_additional(const std::string& owner, const Node& node, RRset& rrset);

  common::YamlDoc doc_;
  std::unique_ptr<Zone> zone_;
  std::uint64_t digest_;  // of the file's bytes, for serial: auto
  AutoSerial* serials_;   // may be null
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

}  // namespace steerdns::zones
