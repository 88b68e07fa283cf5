// Listening sockets and privileges: every worker binds its own socket per
// listen address into one SO_REUSEPORT group (the kernel spreads flows
// across them), after an unshared bind has shown that nobody else holds the
// address; then root, needed only to bind port 53, is dropped.
//
// Main thread, at start-up only (Runtime::bind). Errors throw
// std::runtime_error naming the address.
#pragma once

#include <cstdint>
#include <string>

#include "server/config.hpp"

namespace steerdns::server {

std::string errno_text(int err);

// AT is 0.0.0.0 or [::]: the destination of each query must be learnt
// (IP_PKTINFO) so that its answer leaves from it.
bool is_wildcard(const ListenAddress& at);

// Opens and binds a non-blocking socket of TYPE (SOCK_DGRAM, SOCK_STREAM)
// for AT. SHARED sockets join one SO_REUSEPORT group; an unshared one fails
// with EADDRINUSE when anyone holds the address.
int open_socket(const ListenAddress& at, int type, bool shared);

// SO_REUSEPORT would let a second process (of the same user) join our
// sockets' group and take half the traffic silently. An unshared bind first
// fails with EADDRINUSE if anyone holds the address already.
void check_address_free(const ListenAddress& at, int type);

// A shared TCP socket for AT, listening.
int open_listener(const ListenAddress& at);

// Asks for BYTES of receive buffer: SO_RCVBUFFORCE while we still hold
// CAP_NET_ADMIN (root, before dropping privileges), else SO_RCVBUF, which
// net.core.rmem_max caps. Warns when less was granted and REPORT is set
// (once, for the first worker).
void set_receive_buffer(int fd, const ListenAddress& at, std::uint32_t bytes, bool report);

// Started as root (to bind port 53): switches to USER, for good. Warns when
// running as root without one. Throws when USER is unknown or the switch
// fails or could be undone.
void drop_privileges(const std::string& user);

}  // namespace steerdns::server
