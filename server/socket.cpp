#include "server/socket.hpp"

#include <arpa/inet.h>
#include <grp.h>
#include <pwd.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace steerdns::server {

namespace {

constexpr int kListenBacklog = 1024;

}  // namespace

std::string errno_text(int err) { return std::strerror(err); }

bool is_wildcard(const ListenAddress& at) {
  if (at.address.ss_family == AF_INET)
    return reinterpret_cast<const sockaddr_in&>(at.address).sin_addr.s_addr == htonl(INADDR_ANY);
  return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6&>(at.address).sin6_addr);
}

int open_socket(const ListenAddress& at, int type, bool shared) {
  const int family = at.address.ss_family;
  const int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(at.text + ": socket: " + errno_text(errno));
  const int one = 1;
  if (shared) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (type == SOCK_STREAM) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  // On a wildcard address, learn each query's destination so the answer
  // leaves from it (a host with several addresses would otherwise reply from
  // its primary one, and clients drop that).
  if (type == SOCK_DGRAM && is_wildcard(at)) {
    if (family == AF_INET) setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
    else setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
  }
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&at.address), at.address_size) != 0) {
    const int err = errno;
    ::close(fd);
    throw std::runtime_error(at.text + (type == SOCK_STREAM ? " (tcp)" : " (udp)") +
                             ": bind: " + errno_text(err) +
                             (err == EADDRINUSE ? " (is another server running there?)" : ""));
  }
  return fd;
}

void check_address_free(const ListenAddress& at, int type) { ::close(open_socket(at, type, false)); }

void set_receive_buffer(int fd, const ListenAddress& at, std::uint32_t bytes, bool report) {
  const int want = static_cast<int>(bytes);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
  int got = 0;
  socklen_t size = sizeof got;
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &size);
  if (report && got / 2 < want)
    spdlog::warn("{}: udp_receive_buffer: {} bytes granted of {} (raise net.core.rmem_max, or start as root)",
                 at.text, got / 2, want);
}

void drop_privileges(const std::string& user) {
  if (geteuid() != 0) return;
  if (user.empty()) {
    spdlog::warn("running as root: set server.user to drop privileges once the sockets are bound");
    return;
  }
  errno = 0;
  const passwd* pw = getpwnam(user.c_str());
  if (pw == nullptr) throw std::runtime_error("server.user: no user '" + user + "'");
  const uid_t uid = pw->pw_uid;
  const gid_t gid = pw->pw_gid;
  if (initgroups(user.c_str(), gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
    throw std::runtime_error("cannot switch to user '" + user + "': " + errno_text(errno));
  if (setuid(0) == 0) throw std::runtime_error("switched to user '" + user + "' but could become root again");
  spdlog::info("running as user {} (uid {}, gid {})", user, uid, gid);
}

int open_listener(const ListenAddress& at) {
  const int fd = open_socket(at, SOCK_STREAM, true);
  if (::listen(fd, kListenBacklog) != 0) {
    const int err = errno;
    ::close(fd);
    throw std::runtime_error(at.text + " (tcp): listen: " + errno_text(err));
  }
  return fd;
}

}  // namespace steerdns::server
