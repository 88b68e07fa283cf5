// loadgen: steerdns's bounded DNS load generator for loopback benchmarks.
//
// Sends a query mix over several UDP sockets (sendmmsg/recvmmsg, each socket
// its own source port, so SO_REUSEPORT spreads them over a server's
// workers) or TCP connections (pipelined, length-prefixed), from one thread
// driven by epoll. Each socket keeps at most WINDOW queries outstanding; a
// query unanswered after 1 s is lost. Runs for at most SECONDS and COUNT
// queries, to 127.0.0.0/8 only. With -r it offers a fixed rate; without,
// as fast as answers come back (saturation).
//
//   loadgen -p 5399 -m geo-ecs [-s 127.0.0.1] [-t SECONDS] [-c COUNT] [-S SOCKETS]
//           [-w WINDOW] [-r QPS] [-n SUBNETS] [-P SERVER_PID] [-T]
//
// Mixes (-m): static (A of four static names, one of them NODATA), geo-ecs
// (the geo name with EDNS Client Subnet from SUBNETS distinct clients: 80%
// public IPv4 /24s, 20% IPv6 /48s in 2000::/3, fixed seed), geo (the geo
// name without ECS), nxdomain; or weights, e.g. static:4,geo-ecs:4,nxdomain:1,geo:1.
// -T sends the mix over TCP. Names are in example.com (bench/steerdns-bench.yaml).
//
// Prints one line of key=value: sent, answered, lost, qps, latency
// percentiles (µs, 1 µs resolution), and with -P the server's CPU per
// answered query (the scheduler's run time of all its threads over the run).
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using Packet = std::vector<std::uint8_t>;

Packet query(const std::string& name, std::uint16_t qtype, const std::uint8_t* ecs, int family, int source) {
  Packet q = {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1};
  std::size_t start = 0;
  while (start < name.size()) {
    std::size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    q.push_back(static_cast<std::uint8_t>(dot - start));
    q.insert(q.end(), name.begin() + static_cast<long>(start), name.begin() + static_cast<long>(dot));
    start = dot + 1;
  }
  q.push_back(0);
  q.insert(q.end(), {static_cast<std::uint8_t>(qtype >> 8), static_cast<std::uint8_t>(qtype), 0, 1});
  const int bytes = (source + 7) / 8;
  const int rdlen = ecs ? 8 + bytes : 0;
  // OPT: payload 1232, as dig sends.
  q.insert(q.end(), {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, static_cast<std::uint8_t>(rdlen)});
  if (ecs) {
    q.insert(q.end(), {0, 8, 0, static_cast<std::uint8_t>(4 + bytes), 0, static_cast<std::uint8_t>(family),
                       static_cast<std::uint8_t>(source), 0});
    q.insert(q.end(), ecs, ecs + bytes);
  }
  return q;
}

bool reserved_v4(std::uint32_t a) {
  const std::uint8_t o1 = a >> 24, o2 = (a >> 16) & 0xff;
  return o1 == 0 || o1 == 10 || o1 == 127 || o1 >= 224 || (o1 == 100 && (o2 & 0xc0) == 64) ||
         (o1 == 169 && o2 == 254) || (o1 == 172 && (o2 & 0xf0) == 16) || (o1 == 192 && o2 == 168);
}

std::vector<Packet> kind_queries(const std::string& kind, int subnets) {
  std::vector<Packet> out;
  if (kind == "static") {
    for (const char* n : {"www.example.com", "mail.example.com", "ns1.example.com", "example.com"})
      out.push_back(query(n, 1, nullptr, 0, 0));
  } else if (kind == "nxdomain") {
    for (int i = 0; i < 1000; ++i)
      out.push_back(query("nx" + std::to_string(i) + ".example.com", 1, nullptr, 0, 0));
  } else if (kind == "geo") {
    out.push_back(query("artifacts.example.com", 1, nullptr, 0, 0));
  } else if (kind == "geo-ecs") {
    std::mt19937_64 rng(7871);
    for (int i = 0; i < subnets; ++i) {
      std::uint8_t addr[16] = {};
      if (i % 5 == 4) {
        const std::uint64_t hi = (rng() & 0x1fffffffffffull) | 0x200000000000ull;  // 2000::/3, /48
        for (int b = 0; b < 6; ++b) addr[b] = static_cast<std::uint8_t>(hi >> (8 * (5 - b)));
        out.push_back(query("artifacts.example.com", 28, addr, 2, 48));
      } else {
        std::uint32_t a;
        do a = static_cast<std::uint32_t>(rng()) & 0xffffff00u;
        while (reserved_v4(a));
        for (int b = 0; b < 3; ++b) addr[b] = static_cast<std::uint8_t>(a >> (24 - 8 * b));
        out.push_back(query("artifacts.example.com", 1, addr, 1, 24));
      }
    }
  } else {
    std::fprintf(stderr, "unknown query kind '%s' (static, geo-ecs, geo, nxdomain)\n", kind.c_str());
    std::exit(2);
  }
  return out;
}

// MIX is one kind or "kind:weight,...": queries are drawn by weight (fixed
// seed), each kind's own list cycled, into a list of at least SUBNETS.
std::vector<Packet> make_queries(const std::string& mix, int subnets) {
  std::vector<std::vector<Packet>> kinds;
  std::vector<double> weights;
  std::stringstream in(mix);
  for (std::string part; std::getline(in, part, ',');) {
    const auto colon = part.find(':');
    kinds.push_back(kind_queries(part.substr(0, colon), subnets));
    weights.push_back(colon == std::string::npos ? 1.0 : std::atof(part.c_str() + colon + 1));
  }
  if (kinds.size() == 1) return kinds[0];
  std::vector<Packet> out;
  std::vector<std::size_t> next(kinds.size(), 0);
  std::mt19937_64 rng(42);
  std::discrete_distribution<std::size_t> pick(weights.begin(), weights.end());
  const std::size_t total = static_cast<std::size_t>(std::max(subnets, 10000));
  for (std::size_t i = 0; i < total; ++i) {
    const std::size_t k = pick(rng);
    out.push_back(kinds[k][next[k]++ % kinds[k].size()]);
  }
  return out;
}

// CPU time the scheduler gave PID's threads, in ns: the sum of the first
// field of /proc/PID/task/*/schedstat. Precise, unlike utime+stime, which
// are sampled at each tick and miss a server that sleeps through them at
// low rates. (On a kernel without IRQ time accounting, softirq work done in
// a thread's context, such as loopback delivery of its answers, counts.)
double server_cpu_ns(int pid) {
  if (pid <= 0) return 0;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  double ns = 0;
  if (DIR* d = opendir(dir.c_str())) {
    while (const dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::ifstream f(dir + "/" + e->d_name + "/schedstat");
      double run = 0;
      if (f >> run) ns += run;
    }
    closedir(d);
  }
  return ns;
}

// Latency histogram: 1 µs buckets up to the 1 s loss timeout.
struct Histogram {
  std::vector<std::uint64_t> us = std::vector<std::uint64_t>(1'000'001, 0);
  std::uint64_t n = 0;
  void add(Clock::duration d) {
    const auto v = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
    ++us[static_cast<std::size_t>(std::clamp<long>(v, 0, 1'000'000))];
    ++n;
  }
  long percentile(double p) const {
    if (n == 0) return 0;
    const auto want = static_cast<std::uint64_t>(p * static_cast<double>(n - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < us.size(); ++i)
      if ((seen += us[i]) >= want) return static_cast<long>(i);
    return 1'000'000;
  }
};

constexpr auto kLossTimeout = std::chrono::seconds(1);
constexpr int kBatch = 64;

// One UDP socket or TCP connection and the queries it has outstanding. Ids
// are handed out in sequence; `oldest` trails the oldest id not yet
// answered or lost, so an id is reused only after it was settled.
struct Flow {
  int fd = -1;
  bool connected = true;  // TCP: the non-blocking connect has finished
  std::uint16_t next_id = 0, oldest = 0;
  int outstanding = 0;
  std::vector<Clock::time_point> sent_at = std::vector<Clock::time_point>(65536);
  std::vector<bool> waiting = std::vector<bool>(65536, false);
  std::vector<std::uint8_t> in;  // TCP: bytes read, not yet a whole message
  std::size_t in_used = 0;
  std::vector<std::uint8_t> out;  // TCP: bytes to write
  std::size_t out_sent = 0;
};

struct Run {
  std::vector<Packet> queries;
  std::size_t next_query = 0;
  long sent = 0, answered = 0, lost = 0, reconnects = 0;
  Histogram latency;
};

// Settles FLOW's ids from the oldest: answered ones are skipped, ones past
// the timeout (or all, with FORCE) are lost.
void expire(Flow& f, Run& run, Clock::time_point now, bool force) {
  while (f.oldest != f.next_id) {
    if (f.waiting[f.oldest]) {
      if (!force && now - f.sent_at[f.oldest] < kLossTimeout) break;
      f.waiting[f.oldest] = false;
      --f.outstanding;
      ++run.lost;
    }
    ++f.oldest;
  }
}

void settle(Flow& f, Run& run, const std::uint8_t* msg, std::size_t len, Clock::time_point now) {
  if (len < 12) return;
  const auto id = static_cast<std::uint16_t>(msg[0] << 8 | msg[1]);
  if (!f.waiting[id]) return;
  f.waiting[id] = false;
  --f.outstanding;
  ++run.answered;
  run.latency.add(now - f.sent_at[id]);
}

const Packet& next_packet(Run& run, Flow& f, Clock::time_point now) {
  const Packet& q = run.queries[run.next_query++ % run.queries.size()];
  f.sent_at[f.next_id] = now;
  f.waiting[f.next_id] = true;
  return q;
}

int open_flow(const sockaddr_in& to, bool tcp) {
  const int fd = socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return perror("socket"), std::exit(1), -1;
  if (tcp) {
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  } else {
    const int buf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  }
  if (connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0 && errno != EINPROGRESS)
    return perror("connect"), std::exit(1), -1;
  return fd;
}

// UDP: sends up to BUDGET queries in one sendmmsg.
int send_udp(Flow& f, Run& run, int budget, Clock::time_point now) {
  static std::array<std::array<std::uint8_t, 512>, kBatch> out;
  static std::array<iovec, kBatch> iov;
  static std::array<mmsghdr, kBatch> msgs;
  const int n = std::min(budget, kBatch);
  for (int i = 0; i < n; ++i) {
    const Packet& q = next_packet(run, f, now);
    std::memcpy(out[i].data(), q.data(), q.size());
    out[i][0] = static_cast<std::uint8_t>(f.next_id >> 8);
    out[i][1] = static_cast<std::uint8_t>(f.next_id);
    ++f.next_id;
    iov[i] = {out[i].data(), q.size()};
    msgs[i].msg_hdr = {};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  const int s = std::max(0, static_cast<int>(sendmmsg(f.fd, msgs.data(), static_cast<unsigned>(n), 0)));
  for (int i = s; i < n; ++i) f.waiting[static_cast<std::uint16_t>(f.next_id - n + i)] = false;
  f.next_id = static_cast<std::uint16_t>(f.next_id - (n - s));
  f.outstanding += s;
  run.sent += s;
  return s;
}

void receive_udp(Flow& f, Run& run) {
  static std::array<std::array<std::uint8_t, 4096>, kBatch> in;
  static std::array<iovec, kBatch> iov;
  static std::array<mmsghdr, kBatch> msgs;
  for (;;) {
    for (int i = 0; i < kBatch; ++i) {
      iov[i] = {in[i].data(), in[i].size()};
      msgs[i].msg_hdr = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int r = recvmmsg(f.fd, msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
    const auto now = Clock::now();
    for (int i = 0; i < r; ++i) settle(f, run, in[i].data(), msgs[i].msg_len, now);
    if (r < kBatch) return;
  }
}

// TCP: appends up to BUDGET length-prefixed queries and writes what it can.
int send_tcp(Flow& f, Run& run, int budget, Clock::time_point now) {
  for (int i = 0; i < budget; ++i) {
    const Packet& q = next_packet(run, f, now);
    f.out.push_back(static_cast<std::uint8_t>(q.size() >> 8));
    f.out.push_back(static_cast<std::uint8_t>(q.size()));
    const std::size_t at = f.out.size();
    f.out.insert(f.out.end(), q.begin(), q.end());
    f.out[at] = static_cast<std::uint8_t>(f.next_id >> 8);
    f.out[at + 1] = static_cast<std::uint8_t>(f.next_id);
    ++f.next_id;
  }
  f.outstanding += budget;
  run.sent += budget;
  return budget;
}

bool flush_tcp(Flow& f) {
  while (f.out_sent < f.out.size()) {
    const ssize_t w = ::send(f.fd, f.out.data() + f.out_sent, f.out.size() - f.out_sent, MSG_NOSIGNAL);
    if (w < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
    f.out_sent += static_cast<std::size_t>(w);
  }
  f.out.clear();
  f.out_sent = 0;
  return true;
}

// Reads what the connection has; false when the server closed it.
bool receive_tcp(Flow& f, Run& run) {
  for (;;) {
    if (f.in.size() - f.in_used < 16384) f.in.resize(f.in_used + 65536);
    const ssize_t r = ::recv(f.fd, f.in.data() + f.in_used, f.in.size() - f.in_used, 0);
    if (r == 0) return false;
    if (r < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
    f.in_used += static_cast<std::size_t>(r);
    const auto now = Clock::now();
    std::size_t at = 0;
    while (f.in_used - at >= 2) {
      const std::size_t len = static_cast<std::size_t>(f.in[at] << 8 | f.in[at + 1]);
      if (f.in_used - at - 2 < len) break;
      settle(f, run, f.in.data() + at + 2, len, now);
      at += 2 + len;
    }
    std::memmove(f.in.data(), f.in.data() + at, f.in_used - at);
    f.in_used -= at;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string server = "127.0.0.1", mix = "geo-ecs";
  int port = 5399, window = 50, subnets = 50000, sockets = 4, pid = 0;
  double seconds = 10, rate = 0;
  long count = 50'000'000;
  bool tcp = false;
  for (int opt; (opt = getopt(argc, argv, "s:p:m:t:c:w:n:S:r:P:T")) != -1;) {
    switch (opt) {
      case 's': server = optarg; break;
      case 'p': port = std::atoi(optarg); break;
      case 'm': mix = optarg; break;
      case 't': seconds = std::clamp(std::atof(optarg), 0.1, 600.0); break;
      case 'c': count = std::max(1L, std::atol(optarg)); break;
      case 'w': window = std::clamp(std::atoi(optarg), 1, 4096); break;
      case 'n': subnets = std::max(1, std::atoi(optarg)); break;
      case 'S': sockets = std::clamp(std::atoi(optarg), 1, 256); break;
      case 'r': rate = std::max(0.0, std::atof(optarg)); break;
      case 'P': pid = std::atoi(optarg); break;
      case 'T': tcp = true; break;
      default:
        std::fprintf(stderr,
                     "usage: loadgen -p PORT [-s 127.x.y.z] [-m MIX] [-t SECONDS] [-c COUNT] [-S SOCKETS] "
                     "[-w WINDOW] [-r QPS] [-n SUBNETS] [-P SERVER_PID] [-T]\n");
        return 2;
    }
  }
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  if (inet_pton(AF_INET, server.c_str(), &to.sin_addr) != 1 || (ntohl(to.sin_addr.s_addr) >> 24) != 127) {
    std::fprintf(stderr, "the server must be a 127.0.0.0/8 address\n");
    return 2;
  }
  Run run;
  run.queries = make_queries(mix, subnets);
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  std::vector<Flow> flows(static_cast<std::size_t>(sockets));
  auto open = [&](std::size_t i) {
    Flow& f = flows[i];
    f.fd = open_flow(to, tcp);
    f.connected = !tcp;
    epoll_event ev{};
    ev.events = EPOLLIN | (tcp ? EPOLLOUT : 0u);
    ev.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, f.fd, &ev);
  };
  for (std::size_t i = 0; i < flows.size(); ++i) open(i);
  // The server lost the connection: its outstanding queries are lost.
  auto reopen = [&](std::size_t i) {
    Flow& f = flows[i];
    epoll_ctl(ep, EPOLL_CTL_DEL, f.fd, nullptr);
    ::close(f.fd);
    expire(f, run, Clock::now(), true);
    f.out.clear();
    f.out_sent = f.in_used = 0;
    ++run.reconnects;
    open(i);
  };

  const double cpu_before = server_cpu_ns(pid);
  const auto start = Clock::now();
  const auto stop = start +
                    std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::array<epoll_event, 256> events;
  std::size_t turn = 0;
  auto sent_until = stop;  // when sending ended: by time, or earlier by count
  for (;;) {
    auto now = Clock::now();
    const bool sending = now < stop && run.sent < count;
    if (!sending) sent_until = std::min(sent_until, now);
    long outstanding = 0;
    for (Flow& f : flows) {
      expire(f, run, now, false);
      outstanding += f.outstanding;
    }
    if (!sending && outstanding == 0) break;
    if (!sending && now > stop + kLossTimeout) break;
    // Queries allowed now: the window's room, and with -r the schedule's.
    long allowed = count - run.sent;
    if (rate > 0)
      allowed = std::min(allowed,
                         static_cast<long>(rate * std::chrono::duration<double>(now - start).count()) + 1 -
                             run.sent);
    bool full = true;
    for (std::size_t k = 0; sending && k < flows.size() && allowed > 0; ++k) {
      Flow& f = flows[(turn + k) % flows.size()];
      const int room = std::min<long>(
          {window - f.outstanding, allowed, kBatch, static_cast<std::uint16_t>(f.oldest - f.next_id - 1)});
      if (!f.connected || room <= 0) continue;
      full = false;
      allowed -= tcp ? send_tcp(f, run, room, now) : send_udp(f, run, room, now);
      if (tcp && !flush_tcp(f)) reopen(static_cast<std::size_t>(&f - flows.data()));
    }
    ++turn;
    // Block (1 ms at most) only when nothing can be sent now.
    const int timeout = (!sending || full || (rate > 0 && allowed <= 0)) ? 1 : 0;
    const int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), timeout);
    for (int e = 0; e < n; ++e) {
      const std::size_t i = events[e].data.u64;
      Flow& f = flows[i];
      if (!tcp) {
        receive_udp(f, run);
        continue;
      }
      if (events[e].events & (EPOLLERR | EPOLLHUP)) {
        reopen(i);
        continue;
      }
      if (!f.connected && (events[e].events & EPOLLOUT)) {
        f.connected = true;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = i;
        epoll_ctl(ep, EPOLL_CTL_MOD, f.fd, &ev);
      }
      if ((events[e].events & EPOLLIN) && !receive_tcp(f, run)) reopen(i);
    }
  }
  for (Flow& f : flows) expire(f, run, Clock::now(), true);
  const double cpu_ns = server_cpu_ns(pid) - cpu_before;
  const double elapsed =
      std::chrono::duration<double>(sent_until - start).count();  // the drain after it is not load
  std::printf(
      "mix=%s transport=%s sockets=%d window=%d rate=%.0f sent=%ld answered=%ld lost=%ld qps=%.0f "
      "p50_us=%ld p90_us=%ld p99_us=%ld p999_us=%ld",
      mix.c_str(), tcp ? "tcp" : "udp", sockets, window, rate, run.sent, run.answered, run.lost,
      static_cast<double>(run.answered) / elapsed, run.latency.percentile(0.5), run.latency.percentile(0.9),
      run.latency.percentile(0.99), run.latency.percentile(0.999));
  if (tcp) std::printf(" reconnects=%ld", run.reconnects);
  if (pid > 0 && run.answered > 0) {
    std::printf(" server_cpu_us=%.2f server_cpu_pct=%.1f", cpu_ns / 1e3 / static_cast<double>(run.answered),
                100.0 * cpu_ns / 1e9 / elapsed);
  }
  std::printf("\n");
  return run.answered > 0 ? 0 : 1;
}
