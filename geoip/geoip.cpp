#include "geoip/geoip.hpp"

#include <arpa/inet.h>
#include <maxminddb.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>
#include <unordered_map>

#include "common/load_error.hpp"

namespace steerdns::geoip {

using common::LoadError;

namespace {

constexpr int bits_of(bool v6) { return v6 ? 128 : 32; }

// The block of a sorted, gap-free tiling (starting at 0) that holds ADDRESS.
template <class Block>
const Block& block_holding(const std::vector<Block>& blocks, Address6 address) noexcept {
  auto it = std::upper_bound(blocks.begin(), blocks.end(), address,
                             [](Address6 a, const Block& b) { return a < b.start; });
  return *(it - 1);
}

// The size of a /PREFIX block; PREFIX is at least 1 where this is used.
Address6 block_size(bool v6, std::uint8_t prefix) { return Address6{1} << (bits_of(v6) - prefix); }

// The value at PATH when it is a string, else "".
std::string entry_string(MMDB_entry_s& entry, const char* const* path) {
  MMDB_entry_data_s data;
  if (MMDB_aget_value(&entry, &data, path) != MMDB_SUCCESS || !data.has_data ||
      data.type != MMDB_DATA_TYPE_UTF8_STRING)
    return {};
  return std::string(data.utf8_string, data.data_size);
}

// The number at PATH: a double or float as the MaxMind schema stores it, an
// integer, or a decimal string (as CSV-converted flat files hold them).
std::optional<double> entry_double(MMDB_entry_s& entry, const char* const* path) {
  MMDB_entry_data_s data;
  if (MMDB_aget_value(&entry, &data, path) != MMDB_SUCCESS || !data.has_data) return std::nullopt;
  switch (data.type) {
    case MMDB_DATA_TYPE_DOUBLE: return data.double_value;
    case MMDB_DATA_TYPE_FLOAT: return data.float_value;
    case MMDB_DATA_TYPE_INT32: return data.int32;
    case MMDB_DATA_TYPE_UINT16: return data.uint16;
    case MMDB_DATA_TYPE_UINT32: return data.uint32;
    case MMDB_DATA_TYPE_UTF8_STRING: {
      double value = 0;
      const char* last = data.utf8_string + data.data_size;
      auto [end, ec] = std::from_chars(data.utf8_string, last, value);
      if (ec == std::errc() && end == last && data.data_size > 0) return value;
      return std::nullopt;
    }
    default: return std::nullopt;
  }
}

// Coordinates from two paths, when both are numbers on Earth.
std::optional<Coordinates> entry_coordinates(MMDB_entry_s& entry, const char* const* lat,
                                             const char* const* lon) {
  const auto la = entry_double(entry, lat);
  const auto lo = entry_double(entry, lon);
  if (!la || !lo || !std::isfinite(*la) || !std::isfinite(*lo) || std::fabs(*la) > 90 || std::fabs(*lo) > 180)
    return std::nullopt;
  return Coordinates{*la, *lo};
}

std::string upper(std::string text) {
  for (auto& c : text)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return text;
}

// What a record says about where its network is, in either layout (Place).
Place read_place(MMDB_entry_s& entry) {
  static const char* const nested_lat[] = {"location", "latitude", nullptr};
  static const char* const nested_lon[] = {"location", "longitude", nullptr};
  static const char* const flat_lat[] = {"latitude", nullptr};
  static const char* const flat_lon[] = {"longitude", nullptr};
  static const char* const country[] = {"country", "iso_code", nullptr};
  static const char* const registered[] = {"registered_country", "iso_code", nullptr};
  static const char* const country_code[] = {"country_code", nullptr};
  static const char* const continent[] = {"continent", "code", nullptr};
  static const char* const continent_code_key[] = {"continent_code", nullptr};
  static const char* const continent_flat[] = {"continent", nullptr};
  Place p;
  p.country = entry_string(entry, country);
  if (p.country.empty()) p.country = entry_string(entry, registered);
  if (p.country.empty()) p.country = entry_string(entry, country_code);
  p.country = upper(std::move(p.country));
  p.continent = entry_string(entry, continent);
  if (p.continent.empty()) p.continent = entry_string(entry, continent_code_key);
  if (p.continent.empty()) {
    // IPinfo's lite files name the continent here ("Europe"); others put the code.
    p.continent = std::string(continent_code(entry_string(entry, continent_flat)));
  }
  p.continent = upper(std::move(p.continent));
  auto location = entry_coordinates(entry, nested_lat, nested_lon);
  if (!location) location = entry_coordinates(entry, flat_lat, flat_lon);
  if (location) {
    p.located = true;
    p.origin = Origin::record;
    p.location = *location;
  } else if (const auto point = country_location(p.country)) {
    p.located = true;
    p.origin = Origin::country;
    p.location = *point;
  } else if (const auto point = continent_location(p.continent)) {
    p.located = true;
    p.origin = Origin::continent;
    p.location = *point;
  }
  return p;
}

}  // namespace

double distance_km(Coordinates a, Coordinates b) noexcept {
  constexpr double kEarthRadiusKm = 6371.0088;
  constexpr double kRad = M_PI / 180.0;
  const double dlat = (b.latitude - a.latitude) * kRad;
  const double dlon = (b.longitude - a.longitude) * kRad;
  const double h = std::sin(dlat / 2) * std::sin(dlat / 2) + std::cos(a.latitude * kRad) *
                                                                 std::cos(b.latitude * kRad) *
                                                                 std::sin(dlon / 2) * std::sin(dlon / 2);
  return 2 * kEarthRadiusKm * std::asin(std::min(1.0, std::sqrt(h)));
}

Address6 prefix_mask(bool v6, std::uint8_t prefix) noexcept {
  if (prefix == 0) return 0;
  const Address6 all = v6 ? ~Address6{0} : Address6{0xffffffffu};
  return all & ~((Address6{1} << (bits_of(v6) - prefix)) - 1) & all;
}

bool Network::contains(const Network& other) const noexcept {
  if (v6 != other.v6 || prefix > other.prefix) return false;
  const Address6 mask = prefix_mask(v6, prefix);
  return (address & mask) == (other.address & mask);
}

std::string Network::text() const {
  char buf[INET6_ADDRSTRLEN] = "";
  if (v6) {
    std::uint8_t bytes[16];
    for (int i = 0; i < 16; ++i) bytes[i] = static_cast<std::uint8_t>(address >> (8 * (15 - i)));
    inet_ntop(AF_INET6, bytes, buf, sizeof buf);
  } else {
    const std::uint32_t be = htonl(static_cast<std::uint32_t>(address));
    inet_ntop(AF_INET, &be, buf, sizeof buf);
  }
  return std::string(buf) + "/" + std::to_string(prefix);
}

std::optional<Network> parse_network(const std::string& text) {
  const auto slash = text.find('/');
  const std::string host = text.substr(0, slash);
  Network n;
  std::uint8_t bytes[16];
  if (inet_pton(AF_INET, host.c_str(), bytes) == 1) {
    n.v6 = false;
    n.address = (Address6{bytes[0]} << 24) | (Address6{bytes[1]} << 16) | (Address6{bytes[2]} << 8) |
                bytes[3];
  } else if (inet_pton(AF_INET6, host.c_str(), bytes) == 1) {
    n.v6 = true;
    for (int i = 0; i < 16; ++i) n.address = (n.address << 8) | bytes[i];
  } else {
    return std::nullopt;
  }
  n.prefix = static_cast<std::uint8_t>(bits_of(n.v6));
  if (slash != std::string::npos) {
    unsigned prefix = 0;
    const char* first = text.data() + slash + 1;
    const char* last = text.data() + text.size();
    auto [end, ec] = std::from_chars(first, last, prefix);
    if (ec != std::errc() || end != last || first == last || prefix > static_cast<unsigned>(bits_of(n.v6)))
      return std::nullopt;
    n.prefix = static_cast<std::uint8_t>(prefix);
  }
  if ((n.address & ~prefix_mask(n.v6, n.prefix)) != 0) return std::nullopt;
  return n;
}

// Walks the MMDB search tree depth-first, in address order, emitting one
// block per record: the tree's leaves already tile the address space.
class Walker {
 public:
  Walker(MMDB_s& mmdb, Database& db) : mmdb_(mmdb), db_(db) {
    db_.places_.emplace_back();  // 0: not in the database
  }

  // Records that are not maps (Place), as read so far.
  std::size_t not_maps() const noexcept { return not_maps_; }

  void walk_family(bool v6) {
    std::vector<Database::Block>& out = v6 ? db_.v6_ : db_.v4_;
    const bool tree_v6 = mmdb_.metadata.ip_version == 6;
    if (!tree_v6 && v6) {  // an IPv4-only database places no IPv6 client
      out.push_back({0, 0, 0});
      return;
    }
    std::uint32_t node = 0;
    if (tree_v6 && !v6) {
      // IPv4 lives at ::/96 of an IPv6 tree.
      for (int depth = 0; depth < 96; ++depth) {
        MMDB_search_node_s n;
        read(node, n);
        if (n.left_record_type != MMDB_RECORD_TYPE_SEARCH_NODE) {
          out.push_back({0, 0, place_of(n.left_record_type, n.left_record_entry)});
          return;
        }
        node = static_cast<std::uint32_t>(n.left_record);
      }
    }
    if (tree_v6 && !v6) ipv4_start_ = node;  // the IPv6 walk leaves this subtree to the IPv4 table
    walk(node, 0, 0, v6, out);
  }

 private:
  void read(std::uint32_t node, MMDB_search_node_s& out) {
    if (MMDB_read_node(&mmdb_, node, &out) != MMDB_SUCCESS)
      throw LoadError(db_.path_, 0, "corrupt database: cannot read search node " + std::to_string(node));
  }

  void walk(std::uint32_t node, int depth, Address6 start, bool v6, std::vector<Database::Block>& out) {
    MMDB_search_node_s n;
    read(node, n);
    const int bits = bits_of(v6);
    for (int bit = 0; bit < 2; ++bit) {
      const Address6 child = start | (Address6(bit) << (bits - depth - 1));
      const auto type = bit ? n.right_record_type : n.left_record_type;
      const auto record = bit ? n.right_record : n.left_record;
      auto entry = bit ? n.right_record_entry : n.left_record_entry;
      const auto prefix = static_cast<std::uint8_t>(depth + 1);
      if (type == MMDB_RECORD_TYPE_SEARCH_NODE) {
        // IPv4 (::/96) and its aliases (::ffff:0:0/96, 2002::/16, Teredo)
        // are classified by the IPv4 table; don't copy it into the IPv6 one.
        if (v6 && record == ipv4_start_ && ipv4_start_ != 0) {
          out.push_back({child, prefix, 0});
        } else if (depth + 1 >= bits) {
          throw LoadError(db_.path_, 0, "corrupt database: search tree deeper than the address");
        } else {
          walk(static_cast<std::uint32_t>(record), depth + 1, child, v6, out);
        }
      } else if (type == MMDB_RECORD_TYPE_INVALID) {
        throw LoadError(db_.path_, 0, "corrupt database: invalid record in the search tree");
      } else {
        out.push_back({child, prefix, place_of(type, entry)});
      }
    }
  }

  std::uint32_t place_of(int type, MMDB_entry_s entry) {
    if (type != MMDB_RECORD_TYPE_DATA) return 0;
    auto [it, inserted] = by_offset_.try_emplace(entry.offset, 0);
    if (!inserted) return it->second;
    // A record is a map; one that does not decode as one (a garbage data
    // section) holds nothing and is counted.
    static const char* const top[] = {nullptr};
    MMDB_entry_data_s data;
    Place p;
    if (MMDB_aget_value(&entry, &data, top) != MMDB_SUCCESS || !data.has_data ||
        data.type != MMDB_DATA_TYPE_MAP)
      ++not_maps_;
    else p = read_place(entry);
    it->second = static_cast<std::uint32_t>(db_.places_.size());
    db_.places_.push_back(std::move(p));
    return it->second;
  }

  MMDB_s& mmdb_;
  Database& db_;
  std::uint32_t ipv4_start_ = 0;
  std::size_t not_maps_ = 0;
  std::unordered_map<std::uint32_t, std::uint32_t> by_offset_;
};

Database Database::open(const std::string& path) {
  MMDB_s mmdb;
  const int status = MMDB_open(path.c_str(), MMDB_MODE_MMAP, &mmdb);
  if (status != MMDB_SUCCESS)
    throw LoadError(path, 0, std::string("cannot open GeoIP database: ") + MMDB_strerror(status));
  Database db;
  db.path_ = path;
  std::size_t not_maps = 0;
  try {
    Walker walker(mmdb, db);
    walker.walk_family(false);  // finds the IPv4 start node first
    walker.walk_family(true);
    not_maps = walker.not_maps();
  } catch (...) {
    MMDB_close(&mmdb);
    throw;
  }
  db.build_epoch_ = mmdb.metadata.build_epoch;
  db.description_ = std::string(mmdb.metadata.database_type ? mmdb.metadata.database_type : "?") + ", IPv" +
                    std::to_string(mmdb.metadata.ip_version) + ", built " +
                    std::to_string(mmdb.metadata.build_epoch);
  MMDB_close(&mmdb);
  const std::size_t records = db.places_.size() - 1;
  if (records == 0)
    throw LoadError(path, 0,
                    "the GeoIP database holds no network with data; steerdns cannot place any client "
                    "with it");
  // A database none of whose records can be located would load and put
  // every client on the default list, with scope /0: geo routing off
  // without a word. Refuse it, and say why.
  if (std::none_of(db.places_.begin(), db.places_.end(), [](const Place& p) { return p.located; })) {
    // A data section that does not decode reads as records that are not maps.
    if (not_maps > 0)
      throw LoadError(path, 0,
                      "corrupt database: " + std::to_string(not_maps) + " of " + std::to_string(records) +
                          " records do not decode as a map, and no other carries a location, a country or "
                          "a continent; steerdns cannot place any client with it");
    std::string unknown;
    for (const Place& p : db.places_)
      if (unknown.empty() && !p.country.empty()) unknown = p.country;
    throw LoadError(path, 0,
                    "no network in this database carries a location, a country or a continent" +
                        (unknown.empty() ? std::string()
                                         : " steerdns knows ('" + unknown + "' is not an ISO 3166 country)") +
                        "; steerdns cannot place any client with it (read: location.latitude/longitude, "
                        "country.iso_code, registered_country.iso_code, continent.code, or latitude, "
                        "longitude, country_code, continent_code and continent at the top of a record)");
  }
  return db;
}

std::string location_note(const Place& place) {
  if (!place.located) return {};
  switch (place.origin) {
    case Origin::record: return {};
    case Origin::country: return "country " + place.country + "'s point";
    case Origin::continent: return "continent " + place.continent + "'s point";
  }
  return {};
}

const Database::Block& Database::find(bool v6, Address6 address) const noexcept {
  return block_holding(v6 ? v6_ : v4_, address);
}

const char* rule_name(Rule rule) noexcept {
  switch (rule) {
    case Rule::cidr: return "cidr rule";
    case Rule::country: return "country rule";
    case Rule::continent: return "continent rule";
    case Rule::distance: return "distance";
    case Rule::default_list: return "default list";
  }
  return "?";
}

namespace {

// The most specific CIDR override containing NETWORK, if any.
const std::pair<Network, PreferenceList>* cidr_override(const Policy& policy, const Network& network) {
  const std::pair<Network, PreferenceList>* best = nullptr;
  for (const auto& o : policy.cidr)
    if (o.first.contains(network) && (best == nullptr || o.first.prefix > best->first.prefix)) best = &o;
  return best;
}

Decision decide_place(const Policy& policy, const Place& place) {
  if (auto it = policy.country.find(place.country); !place.country.empty() && it != policy.country.end())
    return {it->second, Rule::country, place.country};
  if (auto it = policy.continent.find(place.continent);
      !place.continent.empty() && it != policy.continent.end())
    return {it->second, Rule::continent, place.continent};
  if (place.located) {
    PreferenceList list(policy.regions.size());
    std::iota(list.begin(), list.end(), RegionIndex{0});
    std::vector<double> km(policy.regions.size());
    for (std::size_t i = 0; i < km.size(); ++i) km[i] = distance_km(place.location, policy.regions[i]);
    std::stable_sort(list.begin(), list.end(), [&](RegionIndex a, RegionIndex b) { return km[a] < km[b]; });
    const std::string note = location_note(place);
    return {list, Rule::distance,
            note.empty() ? std::string() : "(from " + note + ": the database gives no location)"};
  }
  return {policy.default_list, Rule::default_list, ""};
}

}  // namespace

Decision decide(const Policy& policy, const Place& place, const Network& network) {
  if (const auto* o = cidr_override(policy, network)) return {o->second, Rule::cidr, o->first.text()};
  return decide_place(policy, place);
}

Classifier compile(const Database& database, const Policy& policy) {
  Classifier c;
  std::map<PreferenceList, std::uint16_t> interned;
  auto intern = [&](const PreferenceList& list) {
    auto [it, inserted] = interned.try_emplace(list, static_cast<std::uint16_t>(c.lists_.size()));
    if (inserted) c.lists_.push_back(list);
    return it->second;
  };
  std::vector<std::uint16_t> by_place(database.places().size());
  for (std::size_t i = 0; i < by_place.size(); ++i)
    by_place[i] = intern(decide_place(policy, database.places()[i]).list);

  std::vector<Classifier::Block> tilings[2];
  for (bool v6 : {false, true}) {
    std::vector<Classifier::Block>& out = tilings[v6];
    std::vector<const std::pair<Network, PreferenceList>*> overrides;
    for (const auto& o : policy.cidr)
      if (o.first.v6 == v6) overrides.push_back(&o);

    // Appends a block and merges it with its sibling while both give the same
    // list: the tiling stays sorted and every block is as wide as it can be.
    auto push = [&](Address6 start, std::uint8_t prefix, std::uint16_t list) {
      out.push_back({start, prefix, list});
      while (out.size() >= 2) {
        auto& hi = out.back();
        auto& lo = out[out.size() - 2];
        if (lo.prefix != hi.prefix || lo.list != hi.list || lo.prefix == 0) break;
        if (((lo.start >> (bits_of(v6) - lo.prefix)) & 1) != 0) break;  // lo is a right child
        if (hi.start != lo.start + block_size(v6, lo.prefix)) break;
        --lo.prefix;
        out.pop_back();
      }
    };
    // Splits a database block where CIDR overrides cut through it.
    auto emit = [&](auto&& self, Address6 start, std::uint8_t prefix, std::uint32_t place) -> void {
      const Network block{v6, start, prefix};
      bool split = false;
      for (const auto* o : overrides)
        if (!o->first.contains(block) && block.contains(o->first)) split = true;
      if (split) {
        self(self, start, static_cast<std::uint8_t>(prefix + 1), place);
        self(self, start + block_size(v6, static_cast<std::uint8_t>(prefix + 1)),
             static_cast<std::uint8_t>(prefix + 1), place);
        return;
      }
      const auto* o = cidr_override(policy, block);
      push(start, prefix, o != nullptr ? intern(o->second) : by_place[place]);
    };
    for (const auto& b : database.blocks(v6)) emit(emit, b.start, b.prefix, b.place);
  }
  c.v4_.seal(tilings[0], 32);
  c.v6_.seal(tilings[1], 128);
  return c;
}

template <class Key>
void Classifier::Tiling<Key>::seal(const std::vector<Block>& blocks, int bits) {
  starts.reserve(blocks.size());
  values.reserve(blocks.size());
  for (const Block& b : blocks) {
    starts.push_back(static_cast<Key>(b.start));
    values.push_back({b.list, b.prefix});
  }
  first.assign(65537, static_cast<std::uint32_t>(blocks.size()));
  std::size_t i = 0;
  for (std::uint32_t top = 0; top < 65536; ++top) {
    while (i < starts.size() && (starts[i] >> (bits - 16)) < top) ++i;
    first[top] = static_cast<std::uint32_t>(i);
  }
}

template <class Key>
Classification Classifier::Tiling<Key>::find(Key address, int bits) const noexcept {
  const auto top = static_cast<std::size_t>(address >> (bits - 16));
  // The holding block is the last one starting at or below ADDRESS: among
  // this /16's blocks, or the one before them when none starts that low.
  const Key* lo = starts.data() + first[top];
  const Key* hi = starts.data() + first[top + 1];
  const Key* after = std::upper_bound(lo, hi, address);
  return values[static_cast<std::size_t>(after - starts.data()) - 1];
}

Classification Classifier::classify(bool v6, Address6 address) const noexcept {
  return v6 ? v6_.find(address, 128) : v4_.find(static_cast<std::uint32_t>(address), 32);
}

}  // namespace steerdns::geoip
