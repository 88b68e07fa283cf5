// geoip: MMDB → compiled prefix tables of preference lists.
//
// Owns: reading a MaxMind DB (City or Country data, nested or flat records)
// once into a tiling of the address space with interned places, and compiling
// a Policy (regions with coordinates, plus operator overrides) into a
// Classifier whose leaves are preference lists. Adjacent networks with the
// same list are merged, so a leaf's prefix length is the widest network that
// gets the same answer: the ECS scope to return. Must not know DNS packets or
// health.
//
// Thread contract: Database::open() and compile() run at load (main thread or
// reload) and throw common::LoadError. A Classifier is immutable; classify()
// is noexcept, allocation-free and safe from any number of threads.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "geoip/countries.hpp"

namespace steerdns::geoip {

using Address6 = unsigned __int128;

// Great-circle distance in kilometres (haversine, mean Earth radius).
double distance_km(Coordinates a, Coordinates b) noexcept;

// Where a located place's coordinates come from: the database record, else
// the representative point of its country, else of its continent
// (countries.hpp).
enum class Origin : std::uint8_t { record, country, continent };

// Where the database places a network. A record is read in either layout:
// nested as MaxMind's City and Country databases (location.latitude and
// .longitude, country.iso_code else registered_country.iso_code,
// continent.code), or flat as IPinfo's and DB-IP's lite files (latitude,
// longitude, country_code, continent_code or continent at the top level).
struct Place {
  bool located = false;  // coordinates known, from ORIGIN
  Origin origin = Origin::record;
  Coordinates location;
  std::string country;    // ISO 3166-1 alpha-2, upper case ("" when unknown)
  std::string continent;  // "EU", "NA", ... ("" when unknown)
};

// How PLACE was located, for explanations: "" when its record holds its
// coordinates, else "country FR's point" or "continent EU's point".
std::string location_note(const Place& place);

// A CIDR network of either family; IPv4 addresses are held as the low 32 bits.
struct Network {
  bool v6 = false;
  Address6 address = 0;
  std::uint8_t prefix = 0;
  bool contains(const Network& other) const noexcept;
  bool operator==(const Network&) const = default;
  std::string text() const;
};

// The mask of a /PREFIX network of the family (IPv4: the low 32 bits).
Address6 prefix_mask(bool v6, std::uint8_t prefix) noexcept;

// "192.0.2.0/24", "2001:db8::/32", or a bare address (a host network).
// nullopt when malformed or when bits are set beyond the prefix.
std::optional<Network> parse_network(const std::string& text);

class Database {
 public:
  // Reads the whole search tree. Throws common::LoadError naming PATH when
  // the file is not a readable MaxMind DB, or when it can place no client
  // (no record carries coordinates, a known country or a continent).
  static Database open(const std::string& path);

  struct Block {
    Address6 start;
    std::uint8_t prefix;
    std::uint32_t place;  // index into places(); 0 = not in the database
  };
  // Sorted, gap-free tilings of each family's address space.
  const std::vector<Block>& blocks(bool v6) const noexcept { return v6 ? v6_ : v4_; }
  const std::vector<Place>& places() const noexcept { return places_; }
  // The block holding ADDRESS (IPv4 in the low 32 bits when !v6).
  const Block& find(bool v6, Address6 address) const noexcept;
  const std::string& description() const noexcept { return description_; }
  const std::string& path() const noexcept { return path_; }
  // When the database was built (its metadata's build_epoch): seconds since
  // the Unix epoch.
  std::uint64_t build_epoch() const noexcept { return build_epoch_; }

 private:
  std::vector<Block> v4_, v6_;
  std::vector<Place> places_;
  std::string description_;
  std::string path_;
  std::uint64_t build_epoch_ = 0;
  friend class Walker;
};

using RegionIndex = std::uint8_t;
using PreferenceList = std::vector<RegionIndex>;

// How one geo name orders its regions for a client.
struct Policy {
  std::vector<std::string> region_names;                 // for explanations
  std::vector<Coordinates> regions;                      // index = RegionIndex
  std::vector<std::pair<Network, PreferenceList>> cidr;  // most specific wins
  std::map<std::string, PreferenceList> country;         // ISO alpha-2, upper case
  std::map<std::string, PreferenceList> continent;       // two-letter code, upper case
  PreferenceList default_list;                           // clients the database cannot place
};

// Which rule chose a client's list.
enum class Rule : std::uint8_t { cidr, country, continent, distance, default_list };
const char* rule_name(Rule rule) noexcept;

struct Decision {
  PreferenceList list;
  Rule rule;
  // The matching CIDR / country / continent; for a distance order from a
  // country's or continent's point, "(from country FR's point: ...)".
  std::string detail;
};

// The preference list for a client at PLACE inside NETWORK, per POLICY.
// Load-time and explain path (allocates); compile() calls it per place.
Decision decide(const Policy& policy, const Place& place, const Network& network);

struct Classification {
  std::uint16_t list;  // index into Classifier::lists()
  std::uint8_t scope;  // prefix length of the merged network holding the address
};

class Classifier {
 public:
  Classification classify(bool v6, Address6 address) const noexcept;
  const std::vector<PreferenceList>& lists() const noexcept { return lists_; }
  std::size_t block_count(bool v6) const noexcept { return v6 ? v6_.values.size() : v4_.values.size(); }

  // A sorted tiling of one family's address space into merged blocks.
  struct Block {
    Address6 start;
    std::uint8_t prefix;
    std::uint16_t list;
  };

 private:
  friend Classifier compile(const Database&, const Policy&);
  // The lookup form of a tiling. Block starts are kept apart from their
  // classification, so a search reads only keys (IPv4: 4 bytes each, 1 MB
  // for the built-in database instead of 8 MB of blocks), and `first` holds,
  // for each value of an address's top 16 bits, the first block starting
  // at or above it: a lookup searches the blocks of one /16, a cache line or
  // two, instead of the whole table. The tiling covers the family from
  // address 0, so every address has a holding block.
  template <class Key>
  struct Tiling {
    std::vector<Key> starts;
    std::vector<Classification> values;
    std::vector<std::uint32_t> first;  // 65,537 entries
    void seal(const std::vector<Block>& blocks, int bits);
    Classification find(Key address, int bits) const noexcept;
  };
  Tiling<std::uint32_t> v4_;
  Tiling<Address6> v6_;
  std::vector<PreferenceList> lists_;
};

Classifier compile(const Database& database, const Policy& policy);

}  // namespace steerdns::geoip
