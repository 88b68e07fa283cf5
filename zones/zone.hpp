// zones: zone YAML → compiled, immutable zone table.
//
// Owns: parsing and validating zone files (unknown keys are errors, with
// file:line), rendering every rrset to wire at load, and the lookup structure
// the answer path walks. Must not: open sockets, probe, or know about geo.
//
// Thread contract: load_zone() and ZoneTable construction run off the
// workers (start-up or reload). A finished ZoneTable is immutable; any number
// of threads may call its const members concurrently. Pointers and
// string_views handed out stay valid for the ZoneTable's lifetime.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/yaml.hpp"

#include "zones/name.hpp"

namespace steerdns::zones {

// RR types the zone files may hold, and the ones the answer path names.
namespace rrtype {
inline constexpr std::uint16_t A = 1, NS = 2, CNAME = 5, SOA = 6, PTR = 12, MX = 15, TXT = 16, AAAA = 28,
                               SRV = 33, OPT = 41, DS = 43, CAA = 257;
}

struct RRset;

// An rrset to add to the additional section (address records of an NS, MX
// or SRV target that we serve ourselves, or glue below a cut).
struct AdditionalRRset {
  std::string_view owner;  // lower-cased wire; points into the zone's node keys
  const RRset* rrset;
};

struct RRset {
  std::uint16_t type = 0;
  std::uint16_t count = 0;
  std::uint32_t ttl = 0;
  // Every record pre-rendered without its owner: TYPE CLASS TTL RDLENGTH
  // RDATA, back to back. Names inside RDATA are uncompressed and lower-cased;
  // the writer may compress them for NS, CNAME, PTR, MX and SOA (RFC 3597 §4).
  std::string wire;
  // CNAME only: the lower-cased target, for following chains.
  WireName cname_target;
  std::vector<AdditionalRRset> additional;
};

// A VIP as written, with the check layer set on it (a null node when none).
// zones/ does not know checks: server/ has health/ read the layers.
struct GeoVip {
  std::string address;
  common::Yaml check;
};

// One region as a geo name answers with it.
struct GeoRegion {
  std::string name;
  double latitude = 0;
  double longitude = 0;
  RRset a;     // every IPv4 VIP (count 0 when none), TTL = the geo name's
  RRset aaaa;  // every IPv6 VIP (count 0 when none)
  // The VIPs behind a's and aaaa's records, in record order.
  std::vector<GeoVip> a_vips, aaaa_vips;
  common::Yaml check;      // the region's check layer (null when none)
  unsigned threshold = 1;  // fewer up VIPs than this: the region is down
};

// What a geo name answers when no region on the client's list is up.
enum class AllDown : std::uint8_t {
  serve_nearest,  // the first region on the list as if it were up
  fallback,       // GeoName::all_down_region
  nodata,         // NOERROR, no address, the SOA (with the degraded TTL)
  servfail,       // SERVFAIL
};

// An operator override: a CIDR, country or continent, and the regions (as
// indices into GeoName::regions) its clients try, in order. Kept as text:
// zones/ does not know GeoIP; server/ validates and compiles it.
struct GeoOverride {
  std::string key;
  std::vector<std::uint8_t> regions;
  int line = 0;
};

// A name answered with the VIPs of the client's nearest region.
struct GeoName {
  std::size_t id = 0;  // dense over a ZoneTable, in zone order
  std::string_view owner;
  std::uint32_t ttl = 30;
  std::vector<GeoRegion> regions;  // in declared order
  std::vector<GeoOverride> cidr, country, continent;
  std::vector<std::uint8_t> default_list;  // for clients that cannot be placed; declared order if empty
  // Health: the geo name's check layer (null when none), the all-down
  // policy, and the TTL of degraded answers (failover, VIPs missing, all down).
  common::Yaml check;
  AllDown all_down = AllDown::serve_nearest;
  std::uint8_t all_down_region = 0;  // for AllDown::fallback, into regions
  std::uint32_t degraded_ttl = 15;
  std::string file;
  int line = 0;
};

struct Node {
  std::string_view owner;          // the map key this node lives under
  std::vector<RRset> rrsets;       // sorted by type; empty for empty non-terminals
  const Node* wildcard = nullptr;  // the "*.<owner>" node, when the zone has one
  const Node* cut = nullptr;       // the highest delegation at or above this node, if any
  const GeoName* geo = nullptr;    // answered by region instead of rrsets
  bool is_delegation() const noexcept { return cut == this; }
  const RRset* find(std::uint16_t type) const noexcept {
    for (const auto& r : rrsets)
      if (r.type == type) return &r;
    return nullptr;
  }
};

class Zone {
 public:
  using NodeMap = std::unordered_map<std::string, Node, NameHash, std::equal_to<>>;

  const WireName& apex() const noexcept { return apex_; }
  const std::string& file() const noexcept { return file_; }
  std::uint32_t serial() const noexcept { return serial_; }
  const Node& apex_node() const noexcept { return *apex_node_; }
  // The SOA rrset with TTL = min(SOA TTL, MINIMUM), for negative answers (RFC 2308 §3).
  const RRset& negative_soa() const noexcept { return negative_soa_; }
  std::size_t record_count() const noexcept { return record_count_; }
  const NodeMap& nodes() const noexcept { return nodes_; }
  const std::vector<std::unique_ptr<GeoName>>& geo_names() const noexcept { return geo_names_; }

  // Exact match of a lower-cased wire name; nullptr when absent.
  const Node* find(std::string_view name) const noexcept {
    auto it = nodes_.find(name);
    return it == nodes_.end() ? nullptr : &it->second;
  }

  // What answers NAME (lower-cased wire, at or below the apex), RFC 1034
  // §4.3.2 with RFC 4592 wildcards: CUT is the delegation at or above NAME
  // (then NODE is the exact node if it exists); otherwise NODE is the exact
  // node, else the closest encloser's wildcard, else nullptr (NXDOMAIN).
  struct Match {
    const Node* node;
    const Node* cut;
  };
  Match match(std::string_view name) const noexcept {
    if (const Node* node = find(name)) return {node, node->cut};
    const Node* encloser = nullptr;
    for (std::string_view up = parent_name(name); encloser == nullptr; up = parent_name(up))
      encloser = find(up);  // the apex always exists, so this ends
    if (encloser->cut != nullptr) return {nullptr, encloser->cut};
    return {encloser->wildcard, nullptr};
  }

 private:
  friend class ZoneBuilder;
  WireName apex_;
  std::string file_;
  std::uint32_t serial_ = 0;
  NodeMap nodes_;
  const Node* apex_node_ = nullptr;
  RRset negative_soa_;
  std::size_t record_count_ = 0;
  std::vector<std::unique_ptr<GeoName>> geo_names_;
  friend class ZoneTable;
};

// `serial: auto`: the serial comes from the zone file's content (a 64-bit
// digest of its bytes), so that copies of one file give one serial on every
// instance. candidate(DIGEST, 0) is that serial; an AutoSerial with memory
// of the last serial it gave a zone (server/world.cpp, beside the state
// file) takes, for a changed content, the first candidate(DIGEST, k) that
// is greater (RFC 1982) than the last: still a function of the content and
// the previous serial, so instances that served the same versions agree.
class AutoSerial {
 public:
  virtual ~AutoSerial() = default;
  // APEX as text ("example.com."); called once per zone with serial: auto.
  virtual std::uint32_t serial(const std::string& apex, std::uint64_t digest) = 0;
  static std::uint64_t digest(std::string_view content) noexcept;
  static std::uint32_t candidate(std::uint64_t digest, unsigned k) noexcept;
  // A > B in RFC 1982 serial arithmetic.
  static bool greater(std::uint32_t a, std::uint32_t b) noexcept {
    const std::uint32_t d = a - b;
    return d != 0 && d < 0x80000000u;
  }
};

// Parses and compiles one zone file. Throws common::LoadError with
// file:line:reason on any problem. SERIALS decides `serial: auto` (none:
// candidate(digest, 0)).
std::unique_ptr<Zone> load_zone(const std::string& path, AutoSerial* serials = nullptr);
// The same from TEXT, as the contents of PATH: PATH names the file in
// errors. Tests and fuzzing.
std::unique_ptr<Zone> load_zone_text(std::string_view text, const std::string& path,
                                     AutoSerial* serials = nullptr);

class ZoneTable {
 public:
  ZoneTable() = default;
  // Throws common::LoadError when two files declare the same zone.
  explicit ZoneTable(std::vector<std::unique_ptr<Zone>> zones);

  // The zone with the longest apex at or above QNAME (lower-cased wire), or
  // nullptr when we are not authoritative for it.
  const Zone* find_zone(std::string_view qname) const noexcept {
    for (std::string_view name = qname;; name = parent_name(name)) {
      auto it = by_apex_.find(name);
      if (it != by_apex_.end()) return it->second;
      if (name.size() <= 1) return nullptr;
    }
  }
  const std::vector<std::unique_ptr<Zone>>& zones() const noexcept { return zones_; }
  std::size_t record_count() const noexcept {
    std::size_t n = 0;
    for (const auto& z : zones_) n += z->record_count();
    return n;
  }
  // Every geo name of every zone; GeoName::id indexes this.
  const std::vector<const GeoName*>& geo_names() const noexcept { return geo_names_; }

 private:
  std::vector<std::unique_ptr<Zone>> zones_;
  std::unordered_map<std::string, const Zone*, NameHash, std::equal_to<>> by_apex_;
  std::vector<const GeoName*> geo_names_;
};

}  // namespace steerdns::zones
