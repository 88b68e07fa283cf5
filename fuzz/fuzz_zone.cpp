// fuzz_zone: zone YAML (zones::load_zone_text) and what the server does with
// a zone it accepted. The input is a zone file. Refusing it with
// common::LoadError is fine; any other exception, a crash or a leak is not.
// An accepted zone is compiled as `serve` would (geo names on the test
// GeoIP database, checks read), then its names are asked: every reply must
// keep check_response()'s invariants, and over TCP each rrset of a name that
// is not delegated must come back whole (the load-time size check holds).
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/load_error.hpp"
#include "fuzz/fixture.hpp"
#include "server/world.hpp"

using namespace steerdns;

namespace {

// A file that exists, as the zone's path: `serial: auto` reads its mtime.
// One fixed, empty file shared by every run (and by parallel jobs): only
// stat()ed, never written, so nothing is left behind per run or crash.
const std::string& zone_path() {
  static const std::string path = [] {
    const std::string p = "/tmp/steerdns-fuzz-zone.yaml";
    const int fd = open(p.c_str(), O_CREAT | O_RDONLY | O_CLOEXEC, 0644);
    if (fd < 0) std::abort();
    close(fd);
    return p;
  }();
  return path;
}

std::vector<std::uint8_t> query_for(std::string_view wire_name, std::uint16_t type) {
  std::vector<std::uint8_t> q = {0xbe, 0xef, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 1};
  q.insert(q.end(), wire_name.begin(), wire_name.end());
  q.insert(q.end(), {static_cast<std::uint8_t>(type >> 8), static_cast<std::uint8_t>(type), 0, 1});
  q.insert(q.end(), {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0});  // OPT, 1232
  return q;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto world = std::make_shared<server::World>();
  try {
    std::vector<std::unique_ptr<zones::Zone>> zs;
    zs.push_back(zones::load_zone_text(text, zone_path()));
    world->zones = zones::ZoneTable(std::move(zs));
    server::compile_geo(*world, STEERDNS_TEST_MMDB);
    server::plan_health(*world);
  } catch (const common::LoadError&) {
    return 0;
  }

  const zones::Zone& zone = *world->zones.zones().front();
  // What load_zone promises about what it accepted.
  for (const zones::GeoName* geo : world->zones.geo_names()) {
    if (geo->degraded_ttl > geo->ttl) fuzz::broken("a degraded TTL above the TTL");
    if (geo->regions.empty() || geo->regions.size() > 255)
      fuzz::broken("a geo name with 0 or over 255 regions");
    for (const zones::GeoRegion& r : geo->regions) {
      if (!(r.latitude >= -90 && r.latitude <= 90 && r.longitude >= -180 && r.longitude <= 180))
        fuzz::broken("a region's location is not a latitude and longitude");
      if (r.threshold < 1 || r.threshold > r.a.count + r.aaaa.count)
        fuzz::broken("a threshold no region can meet");
    }
  }
  static std::vector<std::uint8_t> small(server::kMinAnswerBuffer), large(server::kMaxTcpMessage);
  const auto source = fuzz::address_of("193.51.24.7");
  int asked = 0;
  for (const auto& [owner, node] : zone.nodes()) {
    if (++asked > 32) break;  // bounded work per input
    std::vector<std::uint16_t> types = {zones::rrtype::A, zones::rrtype::AAAA, 255};
    for (const auto& rrset : node.rrsets) types.push_back(rrset.type);
    for (std::uint16_t type : types) {
      const auto query = query_for(owner, type);
      const auto udp = server::answer(*world, query, small, server::Transport::udp, &source);
      if (ldns_pkt* pkt = fuzz::check_response(*world, query, small, udp, server::Transport::udp))
        ldns_pkt_free(pkt);
      const auto tcp = server::answer(*world, query, large, server::Transport::tcp, &source);
      ldns_pkt* pkt = fuzz::check_response(*world, query, large, tcp, server::Transport::tcp);
      if (pkt == nullptr) fuzz::broken("no reply to a well-formed query");
      const zones::RRset* rrset = node.geo == nullptr && type != 255 ? node.find(type) : nullptr;
      if (rrset != nullptr && node.cut == nullptr) {
        if (tcp.truncated) fuzz::broken("an rrset the zone accepted does not fit one TCP message");
        if (ldns_pkt_ancount(pkt) != rrset->count) fuzz::broken("an rrset came back with another count");
      }
      ldns_pkt_free(pkt);
    }
  }
  return 0;
}
