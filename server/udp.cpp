#include "server/udp.hpp"

#include <cerrno>
#include <ctime>

#include "server/socket.hpp"
#include "server/worker.hpp"

namespace steerdns::server {

namespace {

// Turns the received IP_PKTINFO/IPV6_PKTINFO into the one to send with, in
// place (the control buffer is this datagram's own): source = the address
// the query was sent to, interface chosen by routing.
void reply_from_destination(const msghdr& received, msghdr& reply) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&received); c != nullptr;
       c = CMSG_NXTHDR(const_cast<msghdr*>(&received), c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      auto* info = reinterpret_cast<in_pktinfo*>(CMSG_DATA(c));
      info->ipi_spec_dst = info->ipi_addr;
      info->ipi_ifindex = 0;
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      auto* info = reinterpret_cast<in6_pktinfo*>(CMSG_DATA(c));
      // Link-local destinations need their interface; keep it.
      if (!IN6_IS_ADDR_LINKLOCAL(&info->ipi6_addr)) info->ipi6_ifindex = 0;
    } else {
      continue;
    }
    reply.msg_control = c;
    reply.msg_controllen = CMSG_SPACE(c->cmsg_len - CMSG_LEN(0));
    return;
  }
}

}  // namespace

std::size_t answer_datagram(Worker& w, const World& world, const health::Table& table,
                            std::span<const std::uint8_t> query, const sockaddr_storage& peer,
                            const sockaddr_storage* local, std::span<std::uint8_t> out, std::uint32_t now) {
  const Worker::Received received = w.received();
  AnswerInfo info = answer(world, table, query, out, Transport::udp, &peer, now);
  if (w.shared.limiter != nullptr && info.size > 0) {
    const RateLimiter::Verdict v = w.shared.limiter->check(peer, {out.data(), info.size}, info,
                                                           uv_now(&w.loop));
    if (v.limited) {
      bump(w.stats.rate_limited[static_cast<std::size_t>(v.kind)][static_cast<std::size_t>(v.action)]);
      if (v.started) w.log_limited(peer, v, query);
      if (v.action == RateAction::drop) {
        info.size = 0;
      } else if (v.action == RateAction::slip) {
        info.size = slip_response(out, info.size);
        info.truncated = true;
      }
    }
  }
  w.record(Transport::udp, peer, local, query, {out.data(), info.size}, info, world, received);
  return info.size;
}

void on_udp_readable(uv_poll_t* handle, int status, int /*events*/) {
  auto* sock = static_cast<UdpSocket*>(handle->data);
  Worker& w = *sock->worker;
  if (status < 0) {
    w.log_error("worker {}: udp poll: {}", w.index, uv_strerror(status));
    return;
  }
  UdpBatch& b = *w.batch;
  for (int round = 0; round < kRoundsPerWakeup; ++round) {
    for (int i = 0; i < kBatch; ++i) {
      b.recv_iov[i] = {b.in[i].data(), kUdpBuffer};
      msghdr& h = b.recv[i].msg_hdr;
      h = {};
      h.msg_name = &b.peers[i];
      h.msg_namelen = sizeof(sockaddr_storage);
      h.msg_iov = &b.recv_iov[i];
      h.msg_iovlen = 1;
      if (sock->pktinfo) {
        h.msg_control = b.control[i].data();
        h.msg_controllen = UdpBatch::kControl;
      }
    }
    const int received = recvmmsg(sock->fd, b.recv.data(), kBatch, MSG_DONTWAIT, nullptr);
    if (received <= 0) {
      if (received < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        w.log_error("worker {}: recvmmsg: {}", w.index, errno_text(errno));
      return;
    }
    // steerdns_answer_duration_seconds: the batch's, from here to sendmmsg's return.
    const std::uint64_t received_at = monotonic_ns();
    // World first: its health slots were published before it was.
    const World& world = w.pin.refresh();
    const health::Table& table = w.health.refresh();
    const auto now = static_cast<std::uint32_t>(std::time(nullptr));
    int replies = 0;
    for (int i = 0; i < received; ++i) {
      const msghdr& h = b.recv[i].msg_hdr;
      if (h.msg_flags & MSG_TRUNC) {  // larger than any query we accept: dropped
        w.stats.count(Transport::udp, AnswerInfo{});
        continue;
      }
      const std::span<const std::uint8_t> query(b.in[i].data(), b.recv[i].msg_len);
      const std::size_t size = answer_datagram(w, world, table, query, b.peers[i], sock->local, b.out[i],
                                               now);
      if (size == 0) continue;
      b.send_iov[replies] = {b.out[i].data(), size};
      msghdr& out = b.send[replies].msg_hdr;
      out = {};
      out.msg_name = &b.peers[i];
      out.msg_namelen = h.msg_namelen;
      out.msg_iov = &b.send_iov[replies];
      out.msg_iovlen = 1;
      if (sock->pktinfo) reply_from_destination(h, out);
      ++replies;
    }
    int handed = 0;  // answers the kernel took
    for (int sent = 0; sent < replies;) {
      const int n = sendmmsg(sock->fd, b.send.data() + sent, replies - sent, MSG_DONTWAIT);
      if (n > 0) {
        sent += n;
        handed += n;
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {  // socket buffer full: drop the rest
        bump(w.stats.send_errors, static_cast<std::uint64_t>(replies - sent));
        w.log_error("worker {}: send buffer full, {} answers dropped", w.index, replies - sent);
        break;
      }
      bump(w.stats.send_errors);
      w.log_error("worker {}: sendmmsg: {}", w.index, errno_text(errno));
      ++sent;  // skip the datagram that failed, keep the others
    }
    if (handed > 0)
      w.stats.answer_duration[0].observe(monotonic_ns() - received_at, static_cast<std::uint64_t>(handed));
    if (received < kBatch) return;
  }
}

}  // namespace steerdns::server
