// Human-readable renderings for logs and tools. Not for the hot path: they
// allocate; the query log is opt-in because of that.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <span>
#include <string>

namespace steerdns::server {

std::string address_text(const sockaddr_storage& address);
// The question name of a query packet, or "-" when it cannot be read.
std::string question_text(std::span<const std::uint8_t> query);
std::string qtype_text(std::uint16_t qtype);
std::string rcode_text(std::uint16_t rcode);

}  // namespace steerdns::server
