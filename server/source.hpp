// The packet source address as GeoIP and the rate limiter read it: IPv4,
// and IPv4-mapped IPv6 (a dual-stack socket's IPv4 clients), in the low 32
// bits; IPv6 in all 128. Hot path: noexcept, no allocation.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include "geoip/geoip.hpp"
#include "server/edns.hpp"

namespace steerdns::server {

// False (ADDRESS 0) for a family other than AF_INET and AF_INET6.
inline bool source_address(const sockaddr_storage& source, bool& v6, geoip::Address6& address) noexcept {
  address = 0;
  if (source.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const std::uint8_t*>(
        &reinterpret_cast<const sockaddr_in&>(source).sin_addr);
    v6 = false;
    for (int i = 0; i < 4; ++i) address = (address << 8) | a[i];
    return true;
  }
  if (source.ss_family == AF_INET6) {
    const auto& a6 = reinterpret_cast<const sockaddr_in6&>(source).sin6_addr;
    const bool mapped = IN6_IS_ADDR_V4MAPPED(&a6);
    v6 = !mapped;
    for (int i = mapped ? 12 : 0; i < 16; ++i) address = (address << 8) | a6.s6_addr[i];
    return true;
  }
  return false;
}

// The address of an EDNS Client Subnet option, laid out as
// source_address() lays out a packet's (bits past the prefix are zero).
inline geoip::Address6 subnet_address(const ClientSubnet& ecs) noexcept {
  geoip::Address6 address = 0;
  const int bytes = ecs.family == 2 ? 16 : 4;
  for (int i = 0; i < bytes; ++i) address = (address << 8) | ecs.address[i];
  return address;
}

}  // namespace steerdns::server
