#include "server/reply.hpp"

#include <cstring>

namespace steerdns::server {

namespace {

constexpr std::size_t kOptFixed = 11;  // root owner, type, class, ttl, rdlength

bool put_option_header(Writer& w, std::uint16_t code, std::size_t size) noexcept {
  return w.put_u16(code) && w.put_u16(static_cast<std::uint16_t>(size));
}

// The CHAOS names, lower-cased wire.
constexpr std::string_view kIdServer{"\x02id\x06server\x00", 11};
constexpr std::string_view kHostnameBind{
    "\x08hostname\x04"
    "bind\x00",
    15};
constexpr std::string_view kVersionBind{
    "\x07version\x04"
    "bind\x00",
    14};
constexpr std::string_view kVersionServer{"\x07version\x06server\x00", 16};

}  // namespace

std::size_t ReplyOptions::size() const noexcept {
  std::size_t n = kOptFixed;
  if (ecs != nullptr) n += 4 + 4 + ecs->address_size();
  if (client_cookie != nullptr) n += 4 + Cookie::kClient + kServerCookie;
  if (!nsid.empty()) n += 4 + nsid.size();
  if (keepalive) n += 4 + 2;
  return n;
}

bool put_opt(Writer& w, std::uint16_t payload, bool do_bit, std::uint16_t rcode, const ReplyOptions& options,
             std::uint8_t scope) noexcept {
  const std::size_t rdlength = options.size() - kOptFixed;
  const std::uint8_t opt[kOptFixed] = {0,
                                       0,
                                       41,  // OPT
                                       static_cast<std::uint8_t>(payload >> 8),
                                       static_cast<std::uint8_t>(payload),
                                       static_cast<std::uint8_t>(rcode >> 4),
                                       0,  // version 0
                                       static_cast<std::uint8_t>(do_bit ? 0x80 : 0),
                                       0,
                                       static_cast<std::uint8_t>(rdlength >> 8),
                                       static_cast<std::uint8_t>(rdlength)};
  if (!w.put(opt, kOptFixed)) return false;
  if (const ClientSubnet* ecs = options.ecs) {
    // Family, source prefix and address echoed; the scope says for how
    // wide a network the answer holds (0: static data, for everyone).
    const std::uint8_t fixed[4] = {0, static_cast<std::uint8_t>(ecs->family), ecs->source, scope};
    if (!put_option_header(w, kOptionEcs, 4 + ecs->address_size()) || !w.put(fixed, 4) ||
        !w.put(ecs->address, ecs->address_size()))
      return false;
  }
  if (options.client_cookie != nullptr) {
    if (!put_option_header(w, kOptionCookie, Cookie::kClient + kServerCookie) ||
        !w.put(options.client_cookie, Cookie::kClient) || !w.put(options.server_cookie, kServerCookie))
      return false;
  }
  if (!options.nsid.empty()) {
    if (!put_option_header(w, kOptionNsid, options.nsid.size()) ||
        !w.put(options.nsid.data(), options.nsid.size()))
      return false;
  }
  if (options.keepalive) {
    if (!put_option_header(w, kOptionKeepalive, 2) || !w.put_u16(options.timeout)) return false;
  }
  return true;
}

void put_header(std::uint8_t* out, const std::uint8_t* query, const Sections& s,
                std::uint16_t qdcount) noexcept {
  out[0] = query[0];
  out[1] = query[1];
  out[2] = static_cast<std::uint8_t>(0x80 | (query[2] & 0x79) | (s.aa ? 0x04 : 0) | (s.tc ? 0x02 : 0));
  // Z and AD are clear.
  out[3] = static_cast<std::uint8_t>((s.copy_cd ? query[3] & 0x10 : 0) | (s.rcode & 0x0F));
  const std::uint16_t counts[4] = {qdcount, s.an, s.ns, s.ar};
  for (int i = 0; i < 4; ++i) {
    out[4 + 2 * i] = static_cast<std::uint8_t>(counts[i] >> 8);
    out[5 + 2 * i] = static_cast<std::uint8_t>(counts[i]);
  }
}

std::size_t tsig_error_size(const Query& q) noexcept {
  if (q.tsig_size == 0) return 0;
  const std::size_t owner = q.tsig_algorithm_at - 10 - q.tsig_at;
  // Owner, TYPE CLASS TTL RDLENGTH, algorithm, Time Signed, Fudge, MAC
  // Size, Original ID, Error, Other Len.
  return owner + 10 + q.tsig_algorithm_size + 6 + 2 + 2 + 2 + 2 + 2;
}

bool put_tsig_error(Writer& w, const Query& q, std::uint16_t error) noexcept {
  const std::uint8_t* p = q.packet;
  const std::size_t owner = q.tsig_algorithm_at - 10 - q.tsig_at;
  const std::size_t rdlength = q.tsig_algorithm_size + 6 + 2 + 2 + 2 + 2 + 2;
  const std::uint8_t fixed[10] = {0,
                                  static_cast<std::uint8_t>(qtype::TSIG),
                                  0,
                                  static_cast<std::uint8_t>(qclass::ANY),
                                  0,
                                  0,
                                  0,
                                  0,  // TTL 0
                                  static_cast<std::uint8_t>(rdlength >> 8),
                                  static_cast<std::uint8_t>(rdlength)};
  const std::size_t times = q.tsig_algorithm_at + q.tsig_algorithm_size;  // Time Signed, Fudge
  return w.put(p + q.tsig_at, owner) && w.put(fixed, 10) &&
         w.put(p + q.tsig_algorithm_at, q.tsig_algorithm_size) && w.put(p + times, 8) &&
         w.put_u16(0) &&                       // MAC Size: unsigned (RFC 8945 §5.3.2)
         w.put(p + q.tsig_after_mac_at, 2) &&  // Original ID
         w.put_u16(error) && w.put_u16(0);     // Error, Other Len
}

bool answer_chaos(const World& world, const Query& q, Writer& w, Sections& s) noexcept {
  const std::string_view name = q.name();
  std::string_view text;
  if (name == kIdServer || name == kHostnameBind) text = world.identity;
  else if (name == kVersionBind || name == kVersionServer) text = world.version;
  if (text.empty()) return false;
  s.aa = true;
  if (q.qtype != zones::rrtype::TXT && q.qtype != qtype::ANY) return true;  // NODATA
  // One record: the question's name (a pointer), TXT CH, TTL 0, the text
  // in strings of at most 255 octets.
  const std::size_t strings = (text.size() + 254) / 255;
  const std::size_t rdlength = text.size() + strings;
  const Writer::Mark m = w.mark();
  bool ok = w.put_u16(0xC000 | kHeader) && w.put_u16(zones::rrtype::TXT) && w.put_u16(qclass::CH) &&
            w.put_u16(0) && w.put_u16(0) && w.put_u16(static_cast<std::uint16_t>(rdlength));
  for (std::size_t at = 0; ok && at < text.size(); at += 255) {
    const std::size_t n = std::min<std::size_t>(255, text.size() - at);
    const std::uint8_t len = static_cast<std::uint8_t>(n);
    ok = w.put(&len, 1) && w.put(text.data() + at, n);
  }
  if (!ok) {
    w.rollback(m);
    s.tc = true;
    return true;
  }
  s.an = 1;
  return true;
}

}  // namespace steerdns::server
