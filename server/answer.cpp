#include "server/answer.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <string_view>

#include "server/edns.hpp"
#include "server/failover.hpp"
#include "server/query.hpp"
#include "server/reply.hpp"
#include "server/source.hpp"
#include "server/writer.hpp"

namespace steerdns::server {

using zones::Node;
using zones::RRset;
using zones::Zone;
namespace rrtype = zones::rrtype;

namespace {

constexpr int kMaxCnameChain = 8;

// A record's owner: NAME, or a pointer to the question name when NAME is empty.
bool put_owner(Writer& w, std::string_view name) noexcept {
  return name.empty() ? w.put_u16(0xC000 | kHeader) : w.put_name(name);
}

// One pre-rendered record whose RDATA holds no name to compress (SIZE octets
// of TYPE CLASS TTL RDLENGTH RDATA) after its owner, with TTL in place of its
// own unless kKeepTtl.
bool put_record(Writer& w, std::string_view owner, const std::uint8_t* record, std::size_t size,
                std::uint32_t ttl) noexcept {
  if (!put_owner(w, owner)) return false;
  const std::size_t at = w.size();
  if (!w.put(record, size)) return false;
  if (ttl != kKeepTtl) w.patch_u32(at + 4, ttl);
  return true;
}

// Where the client is, for geo names: the ECS address when the query has
// one with a non-zero source prefix, else the packet's source address.
struct ClientAddress {
  bool v6 = false;
  geoip::Address6 address = 0;
};

ClientAddress client_address(const Query& q, const sockaddr_storage* source) noexcept {
  ClientAddress c;
  if (q.options.ecs.present && q.options.ecs.source > 0) {
    c.v6 = q.options.ecs.family == 2;
    c.address = subnet_address(q.options.ecs);
    return c;
  }
  if (source != nullptr && !source_address(*source, c.v6, c.address)) c = {};
  return c;
}

class Responder {
 public:
  Responder(const World& world, const health::Table& health, const Query& q, Writer& w,
            const sockaddr_storage* source) noexcept
      : world_(world), health_(health), q_(q), w_(w), source_(source) {}

  Sections& sections() noexcept { return s_; }

  // Resolves the question in ZONE (RFC 1034 §4.3.2, with wildcards per RFC 4592).
  void resolve(const Zone& zone) noexcept {
    s_.aa = true;
    std::string_view name = q_.name();
    for (int hop = 0; hop < kMaxCnameChain; ++hop) {
      const std::string_view owner = hop == 0 ? std::string_view() : name;
      const auto [node, cut] = zone.match(name);
      // The parent side answers DS at a cut (RFC 4035 §3.1.4.1); we hold none.
      const bool ds_at_cut = cut != nullptr && cut->owner == name && q_.qtype == rrtype::DS;
      if (cut != nullptr && !ds_at_cut) {
        // A chain into a delegation ends in its referral (RFC 1034 §4.3.2
        // step 3b); AA stays as the first name decided it.
        refer(*cut, hop == 0);
        return;
      }
      if (node == nullptr) {
        s_.rcode = rcode::NXDOMAIN;
        put_negative(zone);
        return;
      }
      if (node->geo != nullptr) {
        answer_geo(zone, owner, *node->geo);
        return;
      }
      if (q_.qtype == qtype::ANY && !ds_at_cut) {
        // RFC 8482 §4.1: one rrset is a complete answer to ANY.
        if (node->rrsets.empty()) put_negative(zone);
        else put_answer(owner, node->rrsets.front());
        return;
      }
      if (const RRset* rrset = ds_at_cut ? nullptr : node->find(q_.qtype)) {
        if (put_answer(owner, *rrset)) put_additional(*rrset, {});
        return;
      }
      const RRset* cname = node->find(rrtype::CNAME);
      if (cname == nullptr) {
        put_negative(zone);
        return;
      }
      if (!put_answer(owner, *cname)) return;
      name = cname->cname_target;
      if (!zones::is_at_or_below(name, zone.apex())) return;
    }
  }

 private:
  // The client's preference list, walked with health by choose_region()
  // (server/failover.hpp): the first region that serves the asked family
  // answers with its served VIPs of that family; when none does, the all-down
  // policy. The ECS scope is the merged network the client fell in: the
  // list, hence the walk, holds for all of it. A geo name holds addresses
  // only: other types are NODATA, the same for every client (scope 0).
  void answer_geo(const Zone& zone, std::string_view owner, const zones::GeoName& geo) noexcept {
    s_.geo = geo.id;
    Ask ask;
    if (q_.qtype == rrtype::A) ask = Ask::a;
    else if (q_.qtype == rrtype::AAAA) ask = Ask::aaaa;
    else if (q_.qtype == qtype::ANY) ask = Ask::any;
    else {
      put_negative(zone);
      return;
    }
    const geoip::Classifier& classifier = world_.classifiers[geo.id];
    const ClientAddress client = client_address(q_, source_);
    const geoip::Classification c = classifier.classify(client.v6, client.address);
    if (q_.options.ecs.present && q_.options.ecs.source > 0) s_.ecs_scope = c.scope;
    const GeoHealth& gh = world_.geo_health[geo.id];
    const Choice choice = choose_region(geo, gh, health_, classifier.lists()[c.list], ask);
    s_.degraded = choice.degraded;
    s_.all_down = choice.all_down;
    if (choice.servfail) {
      s_.rcode = rcode::SERVFAIL;
      s_.aa = false;
      return;
    }
    if (choice.region == Choice::kNoRegion) {
      put_negative(zone, geo.degraded_ttl);
      return;
    }
    s_.region = choice.region;
    const zones::GeoRegion& r = geo.regions[choice.region];
    const RegionHealth& h = gh.regions[choice.region];
    if (choice.family == Family::a) put_vips(zone, owner, r.a, h.a, choice.vips, geo);
    else put_vips(zone, owner, r.aaaa, h.aaaa, choice.vips, geo);
  }

  // The records of RRSET whose VIP (by SLOTS, in record order) RULE admits,
  // with the degraded TTL when the answer is degraded. None: NODATA.
  void put_vips(const Zone& zone, std::string_view owner, const RRset& rrset,
                const std::vector<std::uint32_t>& slots, VipRule rule, const zones::GeoName& geo) noexcept {
    const std::uint32_t ttl = s_.degraded ? geo.degraded_ttl : kKeepTtl;
    const auto* p = reinterpret_cast<const std::uint8_t*>(rrset.wire.data());
    const std::size_t record = rrset.count == 0 ? 0 : rrset.wire.size() / rrset.count;
    std::uint16_t written = 0;
    for (std::uint16_t i = 0; i < rrset.count; ++i, p += record) {
      if (!admits(rule, health_, slots[i])) continue;
      if (!put_record(w_, owner, p, record, ttl)) {
        truncate();
        return;
      }
      ++written;
    }
    if (written == 0) put_negative(zone, ttl);
    else s_.an = static_cast<std::uint16_t>(s_.an + written);
  }

  void truncate() noexcept {
    w_.rollback(after_question_);
    s_.an = s_.ns = s_.ar = 0;
    s_.tc = true;
  }

  bool put_answer(std::string_view owner, const RRset& rrset) noexcept {
    if (!put_rrset(w_, owner, rrset)) {
      truncate();
      return false;
    }
    s_.an = static_cast<std::uint16_t>(s_.an + rrset.count);
    return true;
  }

  // The SOA for NXDOMAIN and NODATA; TTL caps its TTL (kKeepTtl: none).
  void put_negative(const Zone& zone, std::uint32_t ttl = kKeepTtl) noexcept {
    const std::uint32_t soa_ttl = zone.negative_soa().ttl;
    if (!put_rrset(w_, zone.apex(), zone.negative_soa(), ttl < soa_ttl ? ttl : kKeepTtl)) {
      truncate();
      return;
    }
    ++s_.ns;
  }

  // Address records for targets. Glue at or below the cut CUT that does not
  // fit sets TC (RFC 9471 §3); other additional data is just left out
  // (RFC 2181 §9). CUT is empty outside referrals.
  void put_additional(const RRset& rrset, std::string_view cut) noexcept {
    for (const auto& extra : rrset.additional) {
      const Writer::Mark m = w_.mark();
      if (put_rrset(w_, extra.owner, *extra.rrset)) {
        s_.ar = static_cast<std::uint16_t>(s_.ar + extra.rrset->count);
      } else {
        w_.rollback(m);
        if (!cut.empty() && zones::is_at_or_below(extra.owner, cut)) s_.tc = true;
      }
    }
  }

  void refer(const Node& cut, bool first_name) noexcept {
    if (first_name) s_.aa = false;
    const RRset* ns = cut.find(rrtype::NS);
    if (!put_rrset(w_, cut.owner, *ns)) {
      truncate();
      return;
    }
    s_.ns = ns->count;
    put_additional(*ns, cut.owner);
  }

  const World& world_;
  const health::Table& health_;
  const Query& q_;
  Writer& w_;
  const sockaddr_storage* source_;  // placed only when a geo name is asked
  Sections s_;

 public:
  Writer::Mark after_question_{};
};

}  // namespace

bool put_rrset(Writer& w, std::string_view owner, const RRset& rrset, std::uint32_t ttl) noexcept {
  const auto* p = reinterpret_cast<const std::uint8_t*>(rrset.wire.data());
  const std::uint8_t* end = p + rrset.wire.size();
  const bool compress_rdata = rrset.type == rrtype::NS || rrset.type == rrtype::CNAME ||
                              rrset.type == rrtype::PTR || rrset.type == rrtype::MX ||
                              rrset.type == rrtype::SOA;
  while (p < end) {
    const std::size_t rdlen = read_u16(p + 8);
    if (!compress_rdata) {
      if (!put_record(w, owner, p, 10 + rdlen, ttl)) return false;
      p += 10 + rdlen;
      continue;
    }
    if (!put_owner(w, owner)) return false;
    const std::size_t fixed_at = w.size();  // TYPE CLASS TTL
    if (!w.put(p, 8)) return false;
    const std::size_t rdlen_at = w.size();
    if (!w.put_u16(0)) return false;
    const std::uint8_t* rd = p + 10;
    const std::uint8_t* rd_end = rd + rdlen;
    if (rrset.type == rrtype::MX) {
      if (!w.put(rd, 2)) return false;
      rd += 2;
    }
    // NS, CNAME, PTR and MX end in one name; SOA has two, then 20 octets.
    const int names = rrset.type == rrtype::SOA ? 2 : 1;
    for (int i = 0; i < names; ++i) {
      const std::uint8_t* n = rd;
      while (*n != 0) n += 1 + *n;
      const std::size_t len = static_cast<std::size_t>(n - rd) + 1;
      if (!w.put_name({reinterpret_cast<const char*>(rd), len})) return false;
      rd += len;
    }
    if (!w.put(rd, static_cast<std::size_t>(rd_end - rd))) return false;
    w.patch_u16(rdlen_at, static_cast<std::uint16_t>(w.size() - rdlen_at - 2));
    if (ttl != kKeepTtl) w.patch_u32(fixed_at + 4, ttl);
    p += 10 + rdlen;
  }
  return true;
}

AnswerInfo answer(const World& world, std::span<const std::uint8_t> query, std::span<std::uint8_t> out,
                  Transport transport, const sockaddr_storage* source, std::uint32_t now) noexcept {
  static const health::Table all_up;
  return answer(world, all_up, query, out, transport, source, now);
}

AnswerInfo answer(const World& world, const health::Table& health, std::span<const std::uint8_t> query,
                  std::span<std::uint8_t> out, Transport transport, const sockaddr_storage* source,
                  std::uint32_t now) noexcept {
  Query q;
  const Parse parsed = parse_query(query, q);
  if (parsed == Parse::drop || out.size() < kMinAnswerBuffer) return {};

  Writer w(out.data(), out.size());
  if (parsed != Parse::ok) {
    Sections error;
    error.rcode = parsed == Parse::notimp ? rcode::NOTIMP : rcode::FORMERR;
    // CD means something only to the opcodes we know.
    error.copy_cd = parsed != Parse::notimp;
    // Echo the question when it was read whole, so the client can match us,
    // and OPT when the query's was valid (a header, question and OPT always
    // fit the 512 octets every client takes).
    const bool question = q.question_end > 0;
    w.put(query.data(), question ? q.question_end : kHeader);
    if (q.edns && put_opt(w, world.edns_payload, q.edns_do, error.rcode, {}, 0)) error.ar = 1;
    put_header(out.data(), query.data(), error, question ? 1 : 0);
    AnswerInfo info{w.size(), question ? q.qtype : std::uint16_t{0}, error.rcode, false};
    info.qclass = q.qclass;
    return info;
  }

  std::size_t limit = kMaxTcpMessage;
  if (transport == Transport::udp)
    limit = q.edns ? std::clamp<std::size_t>(q.edns_payload, 512, world.edns_payload) : 512;
  limit = std::min(limit, out.size());

  // What goes back in OPT, known before the records so that they leave room.
  ReplyOptions options;
  CookieVerdict cookie;
  if (q.edns) {
    if (q.options.ecs.present) options.ecs = &q.options.ecs;
    if (q.options.cookie.present && world.cookies.enabled) {
      cookie = check_cookie(world.cookies, q.options.cookie, source, now);
      options.client_cookie = q.options.cookie.client();
      options.server_cookie = cookie.server;
    }
    if (q.options.nsid) options.nsid = world.identity;
    // RFC 7828 §3.3.2: over TCP only, with our idle timeout.
    if (q.options.keepalive && transport == Transport::tcp) {
      options.keepalive = true;
      options.timeout = world.tcp_keepalive;
    }
  }

  // Header placeholder, then the question exactly as asked (case preserved).
  w.put(query.data(), q.question_end);
  w.add_targets(kHeader);
  // Room for OPT and a TSIG error after the records. What does not fit a
  // small UDP limit goes, least needed first: NSID, then the TSIG record
  // (the reply says TC=1 instead, and TCP carries it whole).
  bool tsig = q.tsig_size != 0;
  auto reserve = [&] { return (q.edns ? options.size() : 0) + (tsig ? tsig_error_size(q) : 0); };
  bool tsig_truncated = false;
  if (w.size() + reserve() > limit) options.nsid = {};
  if (w.size() + reserve() > limit && tsig) {
    tsig = false;
    tsig_truncated = true;
  }
  // A header, a question and our OPT without NSID always fit 512 octets.
  w.set_limit(limit - reserve());

  Responder responder(world, health, q, w, source);
  responder.after_question_ = w.mark();
  Sections& s = responder.sections();
  std::string_view answered_by;
  if (q.tsig_size != 0) {
    s.rcode = rcode::NOTAUTH;  // we hold no TSIG keys: BADKEY (RFC 8945 §5.2)
    s.tc = tsig_truncated;
  } else if (q.edns && q.edns_version > 0) {
    s.rcode = rcode::BADVERS;  // RFC 6891 §6.1.3
  } else if (q.options.keepalive_timeout && transport == Transport::tcp) {
    s.rcode = rcode::FORMERR;  // a client must not send a TIMEOUT (RFC 7828 §3.2.1)
  } else if (cookie.state == CookieState::invalid && transport == Transport::udp) {
    // RFC 7873 §5.2.3: the client retries with the server cookie we send.
    s.rcode = rcode::BADCOOKIE;
  } else if (q.qclass == qclass::CH) {
    if (!answer_chaos(world, q, w, s)) s.rcode = rcode::REFUSED;
  } else if (q.qclass != qclass::IN && q.qclass != qclass::ANY) {
    s.rcode = rcode::REFUSED;
  } else if (q.qtype == rrtype::OPT || q.qtype == qtype::TKEY || q.qtype == qtype::TSIG) {
    s.rcode = rcode::FORMERR;
  } else if (q.qtype == qtype::MAILA || q.qtype == qtype::MAILB) {
    s.rcode = rcode::NOTIMP;
  } else if (q.qtype == qtype::AXFR || q.qtype == qtype::IXFR) {
    s.rcode = rcode::REFUSED;  // zone transfers are not offered
  } else if (const Zone* zone = world.zones.find_zone(q.name())) {
    // QCLASS ANY (255) is answered from our only class, IN.
    responder.resolve(*zone);
    answered_by = zone->apex();
  } else {
    s.rcode = rcode::REFUSED;
  }

  w.set_limit(limit);
  // Room was kept for both; a record that still did not fit is left out
  // whole rather than sent cut.
  const Writer::Mark before_opt = w.mark();
  if (q.edns) {
    if (put_opt(w, world.edns_payload, q.edns_do, s.rcode, options, s.ecs_scope)) ++s.ar;
    else w.rollback(before_opt);
  }
  if (tsig) {
    const Writer::Mark before_tsig = w.mark();
    if (put_tsig_error(w, q, kTsigBadKey)) ++s.ar;
    else w.rollback(before_tsig);
  }
  put_header(out.data(), query.data(), s, 1);
  AnswerInfo info{w.size(), q.qtype, s.rcode, s.tc, s.degraded, s.all_down};
  info.qclass = q.qclass;
  info.geo = s.geo;
  info.region = s.region;
  info.zone = answered_by;
  info.cookie = cookie.state;
  if (q.options.ecs.present) {
    info.ecs = q.options.ecs;
    info.ecs_scope = s.ecs_scope;
  }
  return info;
}

}  // namespace steerdns::server
