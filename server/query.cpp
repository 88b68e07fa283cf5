#include "server/query.hpp"

#include <algorithm>

#include "zones/name.hpp"
#include "zones/zone.hpp"

namespace steerdns::server {

namespace rrtype = zones::rrtype;

namespace {

// Skips a possibly compressed name; pointers end it, so nothing loops.
bool skip_name(const std::uint8_t* p, std::size_t size, std::size_t& pos) noexcept {
  while (pos < size) {
    const std::uint8_t len = p[pos];
    if ((len & 0xC0) == 0xC0) {
      pos += 2;
      return pos <= size;
    }
    if (len & 0xC0) return false;  // extended label types (RFC 6891 §5)
    pos += 1 + len;
    if (len == 0) return true;
  }
  return false;
}

// Reads an OPT record's fixed part and options (RFC 6891 §6.1).
Parse read_opt(Query& q, std::size_t owner_at, std::size_t pos) noexcept {
  if (q.edns) return Parse::formerr;                   // more than one OPT
  if (q.packet[owner_at] != 0) return Parse::formerr;  // owner must be the root
  const std::uint8_t* p = q.packet + pos;
  q.edns = true;
  q.edns_payload = std::max<std::uint16_t>(read_u16(p + 2), 512);
  q.edns_version = p[5];
  q.edns_do = (p[6] & 0x80) != 0;
  // The caller checked that RDLENGTH octets of RDATA are in the packet.
  if (!read_opt_options(p + 10, read_u16(p + 8), q.options)) return Parse::formerr;
  return Parse::ok;
}

// An uncompressed name of at most 255 octets at POS, ending at or before
// END; false otherwise.
bool uncompressed_name(const std::uint8_t* p, std::size_t end, std::size_t& pos) noexcept {
  const std::size_t start = pos;
  while (pos < end) {
    const std::uint8_t len = p[pos];
    if (len & 0xC0) return false;
    pos += 1 + len;
    if (pos - start > 255) return false;
    if (len == 0) return pos <= end;
  }
  return false;
}

// Locates a TSIG record's parts (RFC 8945 §4.2): owner (the key name) and
// algorithm uncompressed; Time Signed, Fudge, MAC Size, MAC, Original ID,
// Error, Other Len and Other Data within RDLENGTH.
Parse read_tsig(Query& q, std::size_t owner_at, std::size_t pos, std::size_t rdlen) noexcept {
  const std::uint8_t* p = q.packet;
  std::size_t at = owner_at;
  if (!uncompressed_name(p, pos, at) || at != pos) return Parse::formerr;
  // CLASS ANY, TTL 0 (RFC 8945 §4.2).
  if (read_u16(p + pos + 2) != 255 || read_u16(p + pos + 4) != 0 || read_u16(p + pos + 6) != 0)
    return Parse::formerr;
  const std::size_t end = pos + 10 + rdlen;
  std::size_t rd = pos + 10;
  q.tsig_algorithm_at = rd;
  if (!uncompressed_name(p, end, rd)) return Parse::formerr;
  q.tsig_algorithm_size = rd - q.tsig_algorithm_at;
  if (end - rd < 10) return Parse::formerr;
  const std::size_t mac = read_u16(p + rd + 8);
  rd += 10;
  if (end - rd < mac + 6) return Parse::formerr;
  rd += mac;
  q.tsig_after_mac_at = rd;
  if (end - rd - 6 != read_u16(p + rd + 4)) return Parse::formerr;
  q.tsig_at = owner_at;
  q.tsig_size = end - owner_at;
  return Parse::ok;
}

}  // namespace

Parse parse_query(std::span<const std::uint8_t> in, Query& q) noexcept {
  const std::uint8_t* p = in.data();
  const std::size_t size = in.size();
  q.packet = p;
  q.size = size;
  if (size < kHeader) return Parse::drop;
  if (p[2] & 0x80) return Parse::drop;  // a response: never answer one (no loops)
  // Other opcodes are NOTIMP, but their question and OPT are still read, so
  // that the reply carries OPT when the query did (RFC 6891 §7).
  const Parse bad = ((p[2] >> 3) & 0x0F) != 0 ? Parse::notimp : Parse::formerr;
  if (read_u16(p + 4) != 1) return bad;

  std::size_t pos = kHeader;
  std::size_t out = 0;
  for (;;) {
    if (pos >= size) return bad;
    const std::uint8_t len = p[pos];
    if (len & 0xC0) return bad;  // no pointers or extended labels in a question
    if (out + 1 + len > sizeof q.qname || pos + 1 + len > size) return bad;
    q.qname[out++] = len;
    for (std::size_t k = 1; k <= len; ++k) q.qname[out++] = zones::ascii_lower(p[pos + k]);
    pos += 1 + len;
    if (len == 0) break;
  }
  q.qname_size = out;
  if (pos + 4 > size) return bad;
  q.qtype = read_u16(p + pos);
  q.qclass = read_u16(p + pos + 2);
  pos += 4;
  q.question_end = pos;

  const std::size_t records = std::size_t{read_u16(p + 6)} + read_u16(p + 8) + read_u16(p + 10);
  const std::size_t first_additional = records - read_u16(p + 10);
  for (std::size_t i = 0; i < records; ++i) {
    const std::size_t owner_at = pos;
    if (!skip_name(p, size, pos) || pos + 10 > size) return bad;
    const std::uint16_t type = read_u16(p + pos);
    const std::size_t rdlen = read_u16(p + pos + 8);
    if (pos + 10 + rdlen > size) return bad;
    if (type == rrtype::OPT) {
      if (i < first_additional) return bad;  // OPT only in additional
      if (read_opt(q, owner_at, pos) != Parse::ok) return bad;
    } else if (type == qtype::TSIG) {
      if (i + 1 != records || i < first_additional) return bad;  // only last (RFC 8945 §5.1)
      if (read_tsig(q, owner_at, pos, rdlen) != Parse::ok) return bad;
    }
    pos += 10 + rdlen;
  }
  return bad == Parse::notimp ? Parse::notimp : Parse::ok;
}

}  // namespace steerdns::server
