// The UDP path: one worker's socket for one listen address, read in
// batches with recvmmsg and answered with sendmmsg.
//
//   on_udp_readable (the loop says the socket is readable)
//     → recvmmsg up to kBatch datagrams (MSG_DONTWAIT)
//     → pin the world, then the health table, once per batch
//     → answer_datagram() for each: answer() → rate limit → count → log
//     → sendmmsg the replies, from the address each query was sent to
//   repeated up to kRoundsPerWakeup batches before yielding to the loop, so
//   that TCP on the same loop is served under a UDP flood.
//
// Thread contract: everything here runs on the worker's thread.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "health/table.hpp"
#include "server/answer.hpp"
#include "server/world.hpp"

namespace steerdns::server {

struct Worker;

inline constexpr int kBatch = 64;                // datagrams per recvmmsg/sendmmsg
inline constexpr int kRoundsPerWakeup = 16;      // batches before yielding to the loop
inline constexpr std::size_t kUdpBuffer = 4096;  // our EDNS payload is at most 4096

struct UdpSocket {
  uv_poll_t poll;
  int fd = -1;
  bool pktinfo = false;  // wildcard bind: carry the destination address back
  Worker* worker = nullptr;
  const sockaddr_storage* local = nullptr;  // the listen address it is bound to (dnstap)
};

// One worker's receive and send buffers, reused for every batch.
struct UdpBatch {
  std::array<mmsghdr, kBatch> recv{};
  std::array<mmsghdr, kBatch> send{};
  std::array<iovec, kBatch> recv_iov{};
  std::array<iovec, kBatch> send_iov{};
  std::array<sockaddr_storage, kBatch> peers{};
  // Room for one IP_PKTINFO or IPV6_PKTINFO control message per datagram.
  static constexpr std::size_t kControl = CMSG_SPACE(sizeof(in6_pktinfo));
  alignas(cmsghdr) std::array<std::array<std::uint8_t, kControl>, kBatch> control{};
  std::array<std::array<std::uint8_t, kUdpBuffer>, kBatch> in{};
  std::array<std::array<std::uint8_t, kUdpBuffer>, kBatch> out{};
};

// The per-datagram step: QUERY from PEER to LOCAL answered into OUT by
// answer() at NOW (seconds since the epoch, for cookies), then rate limited
// (the answer kept, slipped to TC=1 or dropped), counted and logged (query
// log, dnstap). Returns the octets of OUT to send; 0: send nothing.
std::size_t answer_datagram(Worker& w, const World& world, const health::Table& table,
                            std::span<const std::uint8_t> query, const sockaddr_storage& peer,
                            const sockaddr_storage* local, std::span<std::uint8_t> out, std::uint32_t now);

// The uv_poll callback of a UdpSocket (handle->data).
void on_udp_readable(uv_poll_t* handle, int status, int events);

}  // namespace steerdns::server
