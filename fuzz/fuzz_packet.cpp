// fuzz_packet: the DNS packet parser and answer() (server/answer.hpp). The
// input is one DNS message as a client sends it (over TCP: without the
// length prefix). Each input is answered on the fixture world (static zones
// and geo names, fuzz/fixture.hpp) with every health table, over UDP into
// the smallest buffer answer() takes and into a large one, and over TCP,
// without a source address and from IPv4, IPv6 and mapped sources; every
// response must keep the invariants of check_response(), and answer() must
// be a pure function (the same bytes twice).
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz/fixture.hpp"

using namespace steerdns;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const fuzz::Fixture& f = fuzz::fixture();
  const std::span<const std::uint8_t> query(data, size);
  // Exact sizes on the heap, so that ASan sees a write past either end.
  static std::vector<std::uint8_t> small(server::kMinAnswerBuffer), large(server::kMaxTcpMessage),
      again(server::kMaxTcpMessage);
  struct Variant {
    server::Transport transport;
    std::vector<std::uint8_t>* out;
    const sockaddr_storage* source;
  };
  for (std::size_t t = 0; t < f.tables.size(); ++t) {
    const health::Table& table = f.tables[t];
    const sockaddr_storage* src = &f.sources[t % f.sources.size()];
    const Variant variants[] = {
        {server::Transport::udp, &large, nullptr},
        {server::Transport::udp, &small, src},
        {server::Transport::tcp, &large, &f.sources[(t + 1) % f.sources.size()]},
    };
    for (const Variant& v : variants) {
      const server::AnswerInfo info = server::answer(*f.world, table, query, *v.out, v.transport, v.source);
      ldns_pkt* pkt = fuzz::check_response(*f.world, query, *v.out, info, v.transport);
      if (pkt != nullptr) ldns_pkt_free(pkt);
    }
  }
  // Pure: the same query, world and table give the same bytes.
  const auto first = server::answer(*f.world, f.tables[1], query, large, server::Transport::tcp,
                                    &f.sources[0]);
  const auto second = server::answer(*f.world, f.tables[1], query, again, server::Transport::tcp,
                                     &f.sources[0]);
  if (first.size != second.size || std::memcmp(large.data(), again.data(), first.size) != 0)
    fuzz::broken("answer() gave two different replies to one query");
  return 0;
}
