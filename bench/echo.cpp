// echo: the machine's ceiling for a UDP DNS server. Returns every datagram
// to its sender unchanged, with the least work a UDP responder can do: one
// blocking recvmmsg (MSG_WAITFORONE: wait for the first datagram, then take
// what is queued, up to 64) and one sendmmsg per batch, no epoll, no parsing.
// Whatever a real server costs beyond this per query is its own.
//
//   echo [-a 127.0.0.1] [-p 5399] [-T THREADS]
//
// Each thread binds its own SO_REUSEPORT socket, as steerdns's workers do.
// Binds loopback only; stops on SIGTERM or SIGINT.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kBatch = 64;

void serve(int fd) {
  std::vector<std::array<char, 4096>> buf(kBatch);
  std::vector<sockaddr_in> peers(kBatch);
  std::vector<iovec> iov(kBatch);
  std::vector<mmsghdr> msgs(kBatch);
  for (;;) {
    for (int i = 0; i < kBatch; ++i) {
      iov[i] = {buf[i].data(), buf[i].size()};
      msgs[i].msg_hdr = {};
      msgs[i].msg_hdr.msg_name = &peers[i];
      msgs[i].msg_hdr.msg_namelen = sizeof peers[i];
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int n = recvmmsg(fd, msgs.data(), kBatch, MSG_WAITFORONE, nullptr);
    if (n <= 0) continue;
    for (int i = 0; i < n; ++i) iov[i].iov_len = msgs[i].msg_len;  // send back what came
    for (int sent = 0; sent < n;) {
      const int s = sendmmsg(fd, msgs.data() + sent, n - sent, 0);
      if (s <= 0) break;
      sent += s;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string address = "127.0.0.1";
  int port = 5399, threads = 1;
  for (int opt; (opt = getopt(argc, argv, "a:p:T:")) != -1;) {
    switch (opt) {
      case 'a': address = optarg; break;
      case 'p': port = std::atoi(optarg); break;
      case 'T': threads = std::max(1, std::atoi(optarg)); break;
      default: std::fprintf(stderr, "usage: echo [-a 127.0.0.1] [-p PORT] [-T THREADS]\n"); return 2;
    }
  }
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_port = htons(static_cast<std::uint16_t>(port));
  if (inet_pton(AF_INET, address.c_str(), &at.sin_addr) != 1 || (ntohl(at.sin_addr.s_addr) >> 24) != 127) {
    std::fprintf(stderr, "echo binds 127.0.0.0/8 only\n");
    return 2;
  }
  std::vector<int> fds;
  for (int t = 0; t < threads; ++t) {
    const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(fd, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0) {
      std::fprintf(stderr, "bind %s:%d: %s\n", address.c_str(), port, std::strerror(errno));
      return 1;
    }
    fds.push_back(fd);
  }
  for (int t = 1; t < threads; ++t) std::thread(serve, fds[t]).detach();
  std::signal(SIGTERM, [](int) { std::_Exit(0); });
  std::signal(SIGINT, [](int) { std::_Exit(0); });
  serve(fds[0]);
}
