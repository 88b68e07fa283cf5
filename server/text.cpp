#include "server/text.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include "common/ldns.hpp"

#include "zones/name.hpp"

namespace steerdns::server {

std::string address_text(const sockaddr_storage& address) {
  char host[INET6_ADDRSTRLEN] = "?";
  std::uint16_t port = 0;
  if (address.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
    inet_ntop(AF_INET, &v4.sin_addr, host, sizeof host);
    port = ntohs(v4.sin_port);
  } else if (address.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
    inet_ntop(AF_INET6, &v6.sin6_addr, host, sizeof host);
    port = ntohs(v6.sin6_port);
  }
  return std::string(host) + "#" + std::to_string(port);
}

std::string question_text(std::span<const std::uint8_t> query) {
  std::size_t pos = 12;
  while (pos < query.size() && query[pos] != 0 && (query[pos] & 0xC0) == 0) pos += 1 + query[pos];
  if (pos >= query.size() || query[pos] != 0) return "-";
  return zones::name_to_text({reinterpret_cast<const char*>(query.data() + 12), pos - 11});
}

std::string qtype_text(std::uint16_t qtype) {
  if (qtype == 0) return "-";
  char* text = ldns_rr_type2str(static_cast<ldns_rr_type>(qtype));
  std::string out = text != nullptr ? text : "TYPE" + std::to_string(qtype);
  free(text);
  return out;
}

std::string rcode_text(std::uint16_t rcode) {
  static const char* const names[] = {"NOERROR",  "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
                                      "YXDOMAIN", "YXRRSET", "NXRRSET",  "NOTAUTH",  "NOTZONE"};
  if (rcode < std::size(names)) return names[rcode];
  if (rcode == 16) return "BADVERS";
  if (rcode == 23) return "BADCOOKIE";
  return "RCODE" + std::to_string(rcode);
}

}  // namespace steerdns::server
