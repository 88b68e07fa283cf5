#include "server/explain.hpp"

#include <arpa/inet.h>

#include <cstdio>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "common/ldns.hpp"
#include "server/answer.hpp"
#include "server/failover.hpp"
#include "server/metrics.hpp"

namespace steerdns::server {

namespace {

// A query for NAME/QTYPE with EDNS, and ECS for CLIENT unless WITH_ECS is
// false, as a resolver would send it.
std::vector<std::uint8_t> make_query(const zones::WireName& name, std::uint16_t qtype,
                                     const geoip::Network& client, bool with_ecs) {
  std::vector<std::uint8_t> q;
  auto put = [&q](std::initializer_list<unsigned> bytes) {
    for (unsigned b : bytes) q.push_back(static_cast<std::uint8_t>(b));
  };
  put({0x5e, 0xe7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1});  // id, QUERY, QDCOUNT 1, ARCOUNT 1
  for (char c : name) q.push_back(static_cast<std::uint8_t>(c));
  put({static_cast<unsigned>(qtype) >> 8u, qtype & 0xffu, 0, 1});
  const unsigned bytes = (client.prefix + 7u) / 8u;
  if (!with_ecs) {
    put({0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0});  // OPT without options
    return q;
  }
  put({0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 8 + bytes});                // OPT
  put({0, 8, 0, 4 + bytes, 0, client.v6 ? 2u : 1u, client.prefix, 0});  // ECS
  const unsigned width = client.v6 ? 16 : 4;
  for (unsigned i = 0; i < bytes; ++i)
    q.push_back(static_cast<std::uint8_t>(client.address >> (8 * (width - 1 - i))));
  return q;
}

struct Reply {
  std::vector<std::string> records;
  std::string rcode;
  int scope = -1;
  AnswerInfo info;
};

// SOURCE: the packet's source address (nullptr: none).
Reply ask(const World& world, const ExplainHealth* health, const std::vector<std::uint8_t>& query,
          const sockaddr_storage* source) {
  std::vector<std::uint8_t> out(kMaxTcpMessage);
  const AnswerInfo info = health != nullptr ? answer(world, health->table, query, out, Transport::tcp, source)
                                            : answer(world, query, out, Transport::tcp, source);
  Reply r;
  r.info = info;
  ldns_pkt* pkt = nullptr;
  if (info.size == 0 || ldns_wire2pkt(&pkt, out.data(), info.size) != LDNS_STATUS_OK) {
    r.rcode = "no answer";
    return r;
  }
  char* rcode = ldns_pkt_rcode2str(ldns_pkt_get_rcode(pkt));
  r.rcode = rcode;
  free(rcode);
  for (std::size_t i = 0; i < ldns_rr_list_rr_count(ldns_pkt_answer(pkt)); ++i) {
    char* text = ldns_rr2str(ldns_rr_list_rr(ldns_pkt_answer(pkt), i));
    std::string line(text);
    free(text);
    while (!line.empty() && line.back() == '\n') line.pop_back();
    r.records.push_back(line);
  }
  if (ldns_rdf* data = ldns_pkt_edns_data(pkt); data != nullptr && ldns_rdf_size(data) >= 8)
    r.scope = ldns_rdf_data(data)[7];
  ldns_pkt_free(pkt);
  return r;
}

// The geo name NAME leads to, following in-zone CNAMEs as answer() does.
const zones::GeoName* find_geo_name(const World& world, zones::WireName name) {
  for (int hop = 0; hop < 8; ++hop) {
    const zones::Zone* zone = world.zones.find_zone(name);
    if (zone == nullptr) return nullptr;
    const zones::Node* node = zone->match(name).node;
    if (node == nullptr) return nullptr;
    if (node->geo != nullptr) return node->geo;
    const zones::RRset* cname = node->find(zones::rrtype::CNAME);
    if (cname == nullptr) return nullptr;
    name = cname->cname_target;
  }
  return nullptr;
}

// Which region answered, and why that one, from answer()'s own account.
std::string answered_region(const zones::GeoName& geo, const std::vector<geoip::RegionIndex>& list,
                            const AnswerInfo& info) {
  if (info.region == AnswerInfo::kNoRegion)
    return "none: every region is down; the all-down policy " + std::string(all_down_name(geo.all_down)) +
           " answers " + (info.rcode == rcode::SERVFAIL ? "SERVFAIL" : "NODATA");
  const std::string& name = geo.regions[info.region].name;
  if (info.all_down)
    return name + ": every region is down; the all-down policy " + std::string(all_down_name(geo.all_down)) +
           " answers with it (degraded TTL " + std::to_string(geo.degraded_ttl) + ")";
  if (!list.empty() && list.front() == info.region)
    return name + " (the first on the list" +
           (info.degraded ? ", some VIPs down: degraded TTL " + std::to_string(geo.degraded_ttl)
                          : std::string()) +
           ")";
  return name + " (failover: every region before it is down; degraded TTL " +
         std::to_string(geo.degraded_ttl) + ")";
}

std::string coordinates(const geoip::Coordinates& c) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4f, %.4f", c.latitude, c.longitude);
  return buf;
}

// One line per region of the preference list: is it served, and why not.
std::string health_lines(const World& world, const zones::GeoName& geo,
                         const std::vector<geoip::RegionIndex>& list, const ExplainHealth& health) {
  std::string out;
  for (const auto index : list) {
    const zones::GeoRegion& r = geo.regions[index];
    const RegionState st = region_state(world, health.table, geo, index);
    out += out.empty() ? "health:      " : "             ";
    out += r.name + ": ";
    if (st.overridden == health::Override::down) out += "forced down by an operator";
    else if (st.overridden == health::Override::up) out += "forced up by an operator";
    else out += st.up() ? "up" : "down";
    out += ", " + std::to_string(st.total_served()) + " of " + std::to_string(st.total_vips()) + " VIPs up";
    if (st.overridden == health::Override::none && !st.up() && st.total_served() < r.threshold &&
        st.total_served() > 0)
      out += " (threshold " + std::to_string(r.threshold) + ")";
    std::string notes;
    if (geo.id < world.geo_health.size()) {
      const RegionHealth& h = world.geo_health[geo.id].regions[index];
      for (const auto* slots : {&h.a, &h.aaaa})
        for (std::uint32_t slot : *slots) {
          if (slot >= health.status.vips.size()) continue;
          const health::VipStatus& v = health.status.vips[slot];
          std::string note;
          if (v.overridden != health::Override::none)
            note = "forced " + std::string(health::override_name(v.overridden));
          else if (!v.up)
            note = "down: " + std::string(health::reason_name(v.reason)) + " (" + v.detail + ")";
          if (!note.empty()) notes += (notes.empty() ? "" : "; ") + v.vip + " " + note;
        }
    }
    if (!notes.empty()) out += " [" + notes + "]";
    out += "\n";
  }
  return out;
}

// CLIENT (one address) as a packet source.
sockaddr_storage source_of(const geoip::Network& client) {
  sockaddr_storage ss{};
  if (client.v6) {
    auto& a = reinterpret_cast<sockaddr_in6&>(ss);
    a.sin6_family = AF_INET6;
    for (int i = 0; i < 16; ++i)
      a.sin6_addr.s6_addr[i] = static_cast<std::uint8_t>(client.address >> (8 * (15 - i)));
  } else {
    auto& a = reinterpret_cast<sockaddr_in&>(ss);
    a.sin_family = AF_INET;
    const auto v4 = static_cast<std::uint32_t>(client.address);
    a.sin_addr.s_addr = htonl(v4);
  }
  return ss;
}

}  // namespace

std::string explain(const World& world, const std::string& name_text, const std::string& client_text,
                    const ExplainHealth* health, Placed placed) {
  auto name = zones::name_from_text(name_text.empty() || name_text.back() != '.' ? name_text + "."
                                                                                 : name_text);
  if (!name) throw std::invalid_argument("'" + name_text + "' is not a domain name");
  auto client = geoip::parse_network(client_text);
  if (!client)
    throw std::invalid_argument("'" + client_text +
                                "' is not ADDRESS[/PREFIX] (with no bits set beyond the prefix)");
  const bool by_resolver = placed == Placed::by_resolver;
  if (by_resolver && client->prefix != (client->v6 ? 128 : 32))
    throw std::invalid_argument("without ECS the client is its resolver's address: one address, not '" +
                                client_text + "'");
  if (world.zones.find_zone(*name) == nullptr) {
    std::string zones;
    for (const auto& z : world.zones.zones())
      zones += (zones.empty() ? "" : ", ") + zones::name_to_text(z->apex());
    throw std::invalid_argument(
        "'" + zones::name_to_text(*name) +
        "' is in no zone this server serves (it would answer REFUSED); its zones: " + zones);
  }
  const sockaddr_storage source = source_of(*client);

  std::ostringstream out;
  std::vector<geoip::RegionIndex> geo_list;
  out << "name:        " << zones::name_to_text(*name);
  const zones::GeoName* geo = find_geo_name(world, *name);
  if (geo != nullptr) out << " (geo name " << zones::name_to_text(geo->owner) << ", ttl " << geo->ttl << ")";
  out << "\nclient:      " << client->text()
      << (by_resolver ? " (the resolver's address: no EDNS Client Subnet)\n"
                      : " (sent as EDNS Client Subnet)\n");

  if (geo != nullptr) {
    const geoip::Database& db = *world.geo_database;
    const geoip::Policy& policy = world.geo_policies[geo->id];
    const auto& block = db.find(client->v6, client->address);
    const geoip::Place& place = db.places()[block.place];
    out << "database:    " << db.path() << " (" << db.description() << ")\n";
    out << "network:     " << geoip::Network{client->v6, block.start, block.prefix}.text();
    if (block.place == 0) {
      out << " (not in the database)\n";
    } else {
      out << " (country " << (place.country.empty() ? "-" : place.country) << ", continent "
          << (place.continent.empty() ? "-" : place.continent) << ", location "
          << (place.located ? coordinates(place.location) : "-")
          << (geoip::location_note(place).empty() ? "" : " (" + geoip::location_note(place) + ")") << ")\n";
    }
    const geoip::Decision d = geoip::decide(policy, place, *client);
    out << "rule:        " << geoip::rule_name(d.rule) << (d.detail.empty() ? "" : " " + d.detail) << "\n";
    out << "preference:  ";
    for (std::size_t i = 0; i < d.list.size(); ++i) {
      const auto r = d.list[i];
      out << (i ? ", " : "") << policy.region_names[r];
      if (place.located) {
        char km[32];
        std::snprintf(km, sizeof km, " (%.0f km)", geoip::distance_km(place.location, policy.regions[r]));
        out << km;
      }
    }
    out << "\n";
    if (health == nullptr) {
      out << "region:      " << policy.region_names[d.list.front()] << " (the first on the list)\n";
      out << "health:      not probed by explain: every VIP counts as up\n";
    } else {
      out << health_lines(world, *geo, d.list, *health);
      geo_list = d.list;
    }
  }

  int scope = -1;
  std::string region_line, answers;
  for (std::uint16_t qtype : {zones::rrtype::A, zones::rrtype::AAAA}) {
    const Reply r = ask(world, health, make_query(*name, qtype, *client, !by_resolver),
                        by_resolver ? &source : nullptr);
    if (health != nullptr && geo != nullptr && region_line.empty())
      region_line = "region:      " + answered_region(*geo, geo_list, r.info) + "\n";
    scope = std::max(scope, r.scope);
    auto put = [&answers](const std::string& line) {
      answers += (answers.empty() ? "answer:      " : "             ") + line + "\n";
    };
    if (r.records.empty())
      put(std::string(qtype == zones::rrtype::A ? "A" : "AAAA") + ": " +
          (r.rcode == "NOERROR" ? "NODATA" : r.rcode));
    for (const auto& rec : r.records) put(rec);
  }
  out << region_line << answers;
  out << "scope:       " << (scope < 0 ? std::string("-") : "/" + std::to_string(scope))
      << (scope == 0 ? " (the same answer for every client)" : "") << "\n";
  return out.str();
}

std::string explain_json(const std::string& text) {
  nlohmann::ordered_json doc = nlohmann::ordered_json::object();
  std::string key;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const bool continued = !line.empty() && line.front() == ' ';
    std::size_t at = 0;
    if (!continued) {
      const auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      key = line.substr(0, colon);
      at = colon + 1;
    }
    if (key.empty()) continue;
    at = line.find_first_not_of(' ', at);
    const std::string value = at == std::string::npos ? "" : line.substr(at);
    if (key == "health" || key == "answer") doc[key].push_back(value);
    else if (!continued) doc[key] = value;
    else doc[key] = doc[key].get<std::string>() + " " + value;
  }
  return doc.dump(2) + "\n";
}

}  // namespace steerdns::server
