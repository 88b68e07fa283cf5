// Shared by the fuzz targets that call answer(): a world with static zones
// (CNAME chains, wildcards, a delegation with glue, MX/SRV additional data,
// rrsets too big for UDP) and geo names with regions on the test GeoIP
// database, health tables with VIPs down and forced, and the invariants
// every response must keep. A broken invariant abort()s: libFuzzer (or the
// replay main) reports it as a crash.
#pragma once

#include "common/ldns.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "server/answer.hpp"
#include "server/world.hpp"
#include "zones/zone.hpp"

namespace steerdns::fuzz {

inline std::string big_txt(int records, int size) {
  std::string out = "[";
  for (int i = 0; i < records; ++i)
    out += (i ? ", " : "") + std::string("\"") + std::to_string(i) + std::string(size - 3, 'x') + "\"";
  return out + "]";
}

inline const std::string& static_zone() {
  static const std::string text = R"(zone: example.net
ttl: 3600
soa: {mname: ns1, rname: hostmaster, serial: 7, minimum: 300}
ns: [ns1, ns2.example.com.]
records:
  "@": {MX: [10 mail, 20 mail.example.com.], TXT: "v=spf1 -all", CAA: '0 issue "ca.example"'}
  ns1: {A: 127.0.0.1, AAAA: "::1"}
  mail: {A: 127.0.0.25}
  www: {A: [127.0.0.10, 127.0.0.11], AAAA: "2001:db8::10"}
  c1: {CNAME: c2}
  c2: {CNAME: www}
  out: {CNAME: www.example.org.}
  togeo: {CNAME: artifacts.example.com.}
  loop1: {CNAME: loop2}
  loop2: {CNAME: loop1}
  "*.wild": {A: 127.0.0.20, TXT: wild}
  real.wild: {A: 127.0.0.21}
  a.b.deep: {A: 127.0.0.30}
  _http._tcp: {SRV: [10 5 80 www, 20 5 80 mail]}
  ptr: {PTR: www}
  sub: {NS: [ns1.sub, ns.example.org.]}
  ns1.sub: {A: 127.0.0.40, AAAA: "2001:db8::40"}
  big: {TXT: )" + big_txt(15, 200) +
                                  R"(}
  medium: {TXT: )" + big_txt(4, 200) +
                                  R"(}
)";
  return text;
}

inline const char* geo_zone() {
  return R"(zone: example.com
soa: {mname: ns1, rname: h, serial: 1}
ns: [ns1]
records:
  ns1: {A: 127.0.0.1}
  repo: {CNAME: artifacts}
  chain: {CNAME: repo}
regions:
  paris: {location: [48.86, 2.35], vips: [127.1.0.1, 127.1.0.2, "2001:db8:1::1"], threshold: 2}
  virginia: {location: [38.95, -77.45], vips: [127.2.0.1, 127.2.0.2, "::1"]}
  singapore: {location: [1.29, 103.85], vips: [127.3.0.1]}
  sixonly: {location: [35.68, 139.69], vips: ["2001:db8:4::1", "2001:db8:4::2"]}
geo:
  artifacts:
    regions: [paris, virginia, singapore, sixonly]
    overrides:
      default: [singapore, paris, virginia, sixonly]
  pinned:
    ttl: 60
    degraded_ttl: 10
    regions: [paris, virginia, singapore]
    all_down: nodata
    overrides:
      cidr: {"193.51.24.0/24": [virginia, paris, singapore], "2001:db8::/32": [singapore, paris, virginia]}
      country: {jp: [paris, virginia, singapore]}
      continent: {OC: [virginia, singapore, paris]}
  strict: {regions: [virginia, paris], all_down: servfail}
  fallback: {regions: [paris, singapore], all_down: {fallback: singapore}}
  "*.wildgeo": {regions: [sixonly, paris]}
)";
}

// The fixture world and its health tables, built once.
struct Fixture {
  std::shared_ptr<server::World> world;
  std::vector<health::Table> tables;
  std::vector<sockaddr_storage> sources;  // v4, v6, v4-mapped v6, private v4
};

inline sockaddr_storage address_of(const char* text) {
  sockaddr_storage ss{};
  if (std::strchr(text, ':') != nullptr) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    inet_pton(AF_INET6, text, &sin6->sin6_addr);
  } else {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    inet_pton(AF_INET, text, &sin->sin_addr);
  }
  return ss;
}

inline Fixture make_fixture() {
  Fixture f;
  std::vector<std::unique_ptr<zones::Zone>> zs;
  zs.push_back(zones::load_zone_text(static_zone(), "fuzz/example.net.yaml"));
  zs.push_back(zones::load_zone_text(geo_zone(), "fuzz/example.com.yaml"));
  zs.push_back(
      zones::load_zone_text("zone: sub.example.net\nsoa: {mname: ns1, rname: h, serial: 3}\n"
                            "ns: [ns1]\nrecords: {ns1: {A: 127.0.0.40}}\n",
                            "fuzz/sub.example.net.yaml"));
  f.world = std::make_shared<server::World>();
  f.world->zones = zones::ZoneTable(std::move(zs));
  server::compile_geo(*f.world, STEERDNS_TEST_MMDB);

  // One slot per VIP and per region, in plan order.
  health::Slots slots;
  for (const zones::GeoName* geo : f.world->zones.geo_names())
    for (const zones::GeoRegion& r : geo->regions) {
      slots.regions.push_back(static_cast<std::uint32_t>(slots.regions.size()));
      for (std::size_t i = 0; i < r.a_vips.size() + r.aaaa_vips.size(); ++i)
        slots.vips.push_back(static_cast<std::uint32_t>(slots.vips.size()));
    }
  server::assign_health(*f.world, slots);
  const std::size_t vips = slots.vips.size(), regions = slots.regions.size();
  using T = health::Table;
  f.tables.emplace_back();  // every slot past the end: all up
  // Some VIPs down (every third), nothing forced.
  T some{std::vector<std::uint8_t>(vips, T::kUp), std::vector<std::uint8_t>(regions, 0)};
  for (std::size_t i = 1; i < vips; i += 3) some.vips[i] = 0;
  f.tables.push_back(some);
  // Forced: VIPs forced down and up (some of them probed down), regions forced.
  T forced = some;
  for (std::size_t i = 0; i < vips; i += 4) forced.vips[i] |= T::kOverriddenDown;
  for (std::size_t i = 2; i < vips; i += 5) forced.vips[i] = T::kOverriddenUp | T::kUp;
  for (std::size_t i = 0; i < regions; i += 3) forced.regions[i] = T::kOverriddenDown;
  for (std::size_t i = 1; i < regions; i += 4) forced.regions[i] = T::kOverriddenUp;
  f.tables.push_back(forced);
  // Everything down: the all-down policies answer.
  f.tables.push_back({std::vector<std::uint8_t>(vips, 0), std::vector<std::uint8_t>(regions, 0)});

  for (const char* a : {"193.51.24.7", "2001:4860:4860::8888", "::ffff:1.1.1.1", "10.1.2.3"})
    f.sources.push_back(address_of(a));
  return f;
}

inline const Fixture& fixture() {
  static const Fixture f = make_fixture();
  return f;
}

[[noreturn]] inline void broken(const char* what) {
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

// What every response must be: within OUT, and when not dropped, a reply
// (QR) to QUERY's ID, within the UDP limit, with TC as reported, and
// parseable by ldns. Returns the parsed reply (the caller frees it), or
// nullptr when nothing is sent.
inline ldns_pkt* check_response(const server::World& world, std::span<const std::uint8_t> query,
                                std::span<const std::uint8_t> out, const server::AnswerInfo& info,
                                server::Transport transport) {
  if (info.size > out.size()) broken("size beyond the out buffer");
  if (info.size == 0) return nullptr;
  if (info.size < 12 || query.size() < 12) broken("a reply shorter than a header, or to no query");
  if (out[0] != query[0] || out[1] != query[1]) broken("the reply's ID is not the query's");
  if ((out[2] & 0x80) == 0) broken("the reply has no QR");
  if (((out[2] & 0x02) != 0) != info.truncated) broken("TC and AnswerInfo::truncated disagree");
  if ((out[3] & 0x0F) != (info.rcode & 0x0F)) broken("the header's rcode is not AnswerInfo::rcode");
  if (transport == server::Transport::udp && info.size > std::max<std::size_t>(512, world.edns_payload))
    broken("a UDP reply larger than our EDNS payload");
  ldns_pkt* pkt = nullptr;
  if (ldns_wire2pkt(&pkt, out.data(), info.size) != LDNS_STATUS_OK) broken("ldns cannot parse the reply");
  if (ldns_pkt_qdcount(pkt) > 1) broken("more than one question");
  return pkt;
}

}  // namespace steerdns::fuzz
