// ecsperf: a small, bounded DNS load generator for loopback benchmarks.
// Sends one query mix (static, geo with ECS from many client subnets, geo
// without ECS, NXDOMAIN) from one UDP socket with sendmmsg/recvmmsg, keeping
// at most WINDOW queries outstanding, for at most SECONDS and COUNT queries.
// Prints sent, answered, lost, QPS and latency percentiles.
//
//   ecsperf -s 127.0.0.1 -p 5399 -m geo-ecs [-t SECONDS] [-c COUNT] [-w WINDOW] [-n SUBNETS]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::uint8_t> query(const std::string& name, std::uint16_t qtype, const std::uint8_t* ecs,
                                int family, int source) {
  std::vector<std::uint8_t> q = {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1};
  std::size_t start = 0;
  for (std::size_t dot; (dot = name.find('.', start)) != std::string::npos || start < name.size();) {
    if (dot == std::string::npos) dot = name.size();
    q.push_back(static_cast<std::uint8_t>(dot - start));
    q.insert(q.end(), name.begin() + static_cast<long>(start), name.begin() + static_cast<long>(dot));
    start = dot + 1;
  }
  q.push_back(0);
  q.insert(q.end(), {static_cast<std::uint8_t>(qtype >> 8), static_cast<std::uint8_t>(qtype), 0, 1});
  const int bytes = (source + 7) / 8;
  const int rdlen = ecs ? 8 + bytes : 0;
  q.insert(q.end(), {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, static_cast<std::uint8_t>(rdlen)});
  if (ecs) {
    q.insert(q.end(), {0, 8, 0, static_cast<std::uint8_t>(4 + bytes), 0,
                       static_cast<std::uint8_t>(family), static_cast<std::uint8_t>(source), 0});
    q.insert(q.end(), ecs, ecs + bytes);
  }
  return q;
}

bool reserved_v4(std::uint32_t a) {
  const std::uint8_t o1 = a >> 24, o2 = (a >> 16) & 0xff;
  return o1 == 0 || o1 == 10 || o1 == 127 || o1 >= 224 || (o1 == 100 && (o2 & 0xc0) == 64) ||
         (o1 == 169 && o2 == 254) || (o1 == 172 && (o2 & 0xf0) == 16) || (o1 == 192 && o2 == 168);
}

// Query set for MODE: SUBNETS distinct clients for geo-ecs (80% IPv4 /24s
// over the public space, 20% IPv6 /48s in 2000::/3), fixed seed.
std::vector<std::vector<std::uint8_t>> make_queries(const std::string& mode, int subnets) {
  std::vector<std::vector<std::uint8_t>> out;
  if (mode == "static") {
    for (const char* n : {"www.example.com", "mail.example.com", "ns1.example.com", "example.com"})
      out.push_back(query(n, 1, nullptr, 0, 0));
  } else if (mode == "nxdomain") {
    for (int i = 0; i < 1000; ++i) out.push_back(query("nx" + std::to_string(i) + ".example.com", 1, nullptr, 0, 0));
  } else if (mode == "geo") {
    out.push_back(query("artifacts.example.com", 1, nullptr, 0, 0));
  } else if (mode == "geo-ecs") {
    std::mt19937_64 rng(7871);
    for (int i = 0; i < subnets; ++i) {
      std::uint8_t addr[16] = {};
      if (i % 5 == 4) {
        const std::uint64_t hi = (rng() & 0x1fffffffffffull) | 0x200000000000ull;  // 2000::/3, /48
        for (int b = 0; b < 6; ++b) addr[b] = static_cast<std::uint8_t>(hi >> (8 * (5 - b)));
        out.push_back(query("artifacts.example.com", 28, addr, 2, 48));
      } else {
        std::uint32_t a;
        do a = static_cast<std::uint32_t>(rng()) & 0xffffff00u; while (reserved_v4(a));
        for (int b = 0; b < 3; ++b) addr[b] = static_cast<std::uint8_t>(a >> (24 - 8 * b));
        out.push_back(query("artifacts.example.com", 1, addr, 1, 24));
      }
    }
  } else {
    std::fprintf(stderr, "unknown mode %s (static, geo-ecs, geo, nxdomain)\n", mode.c_str());
    std::exit(2);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string server = "127.0.0.1", mode = "geo-ecs";
  int port = 5399, window = 200, subnets = 50000;
  double seconds = 10;
  long count = 10'000'000;
  for (int opt; (opt = getopt(argc, argv, "s:p:m:t:c:w:n:")) != -1;) {
    switch (opt) {
      case 's': server = optarg; break;
      case 'p': port = std::atoi(optarg); break;
      case 'm': mode = optarg; break;
      case 't': seconds = std::atof(optarg); break;
      case 'c': count = std::atol(optarg); break;
      case 'w': window = std::clamp(std::atoi(optarg), 1, 4096); break;
      case 'n': subnets = std::max(1, std::atoi(optarg)); break;
      default: return 2;
    }
  }
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  if (inet_pton(AF_INET, server.c_str(), &to.sin_addr) != 1 || (ntohl(to.sin_addr.s_addr) >> 24) != 127) {
    std::fprintf(stderr, "the server must be a 127.0.0.0/8 address\n");
    return 2;
  }
  auto queries = make_queries(mode, subnets);
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  const int buf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) return perror("connect"), 1;

  // Query ids index the send time of the outstanding query.
  std::vector<Clock::time_point> sent_at(65536);
  std::vector<bool> waiting(65536, false);
  std::vector<double> latency_us;
  latency_us.reserve(static_cast<std::size_t>(std::min(count, 20'000'000L)));
  constexpr int kBatch = 64;
  std::vector<mmsghdr> msgs(kBatch);
  std::vector<iovec> iov(kBatch);
  std::vector<std::array<std::uint8_t, 512>> in(kBatch);
  std::vector<std::array<std::uint8_t, 512>> out(kBatch);  // one per slot: ids differ within a batch
  long sent = 0, answered = 0, outstanding = 0;
  std::uint16_t next_id = 0;
  std::size_t next_query = 0;
  const auto start = Clock::now();
  const auto stop = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  auto drain_deadline = stop;
  for (;;) {
    const auto now = Clock::now();
    const bool sending = now < stop && sent < count;
    if (!sending && (outstanding == 0 || now > drain_deadline + std::chrono::milliseconds(500))) break;
    int n = 0;
    while (sending && n < kBatch && outstanding + n < window && sent + n < count) {
      const auto& q = queries[next_query++ % queries.size()];
      std::memcpy(out[n].data(), q.data(), q.size());
      out[n][0] = static_cast<std::uint8_t>(next_id >> 8);
      out[n][1] = static_cast<std::uint8_t>(next_id);
      iov[n] = {out[n].data(), q.size()};
      msgs[n].msg_hdr = {};
      msgs[n].msg_hdr.msg_iov = &iov[n];
      msgs[n].msg_hdr.msg_iovlen = 1;
      sent_at[next_id] = now;
      waiting[next_id] = true;
      ++next_id;
      ++n;
    }
    if (n > 0) {
      const int s = sendmmsg(fd, msgs.data(), n, 0);
      const int ok = std::max(s, 0);
      for (int i = ok; i < n; ++i) waiting[static_cast<std::uint16_t>(next_id - n + i)] = false;
      sent += ok;
      outstanding += ok;
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, outstanding >= window || !sending ? 1 : 0) <= 0) continue;
    for (int i = 0; i < kBatch; ++i) {
      iov[i] = {in[i].data(), in[i].size()};
      msgs[i].msg_hdr = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int r = recvmmsg(fd, msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
    const auto got = Clock::now();
    for (int i = 0; i < r; ++i) {
      if (msgs[i].msg_len < 12) continue;
      const std::uint16_t id = static_cast<std::uint16_t>(in[i][0] << 8 | in[i][1]);
      if (!waiting[id]) continue;
      waiting[id] = false;
      ++answered;
      --outstanding;
      latency_us.push_back(std::chrono::duration<double, std::micro>(got - sent_at[id]).count());
    }
  }
  const double elapsed = std::chrono::duration<double>(std::min(Clock::now(), stop) - start).count();
  std::sort(latency_us.begin(), latency_us.end());
  auto pct = [&](double p) {
    return latency_us.empty() ? 0.0 : latency_us[static_cast<std::size_t>(p * (latency_us.size() - 1))];
  };
  std::printf("mode=%s queries=%zu sent=%ld answered=%ld lost=%ld qps=%.0f p50_us=%.1f p99_us=%.1f\n",
              mode.c_str(), queries.size(), sent, answered, sent - answered, answered / elapsed, pct(0.5),
              pct(0.99));
  close(fd);
  return 0;
}
