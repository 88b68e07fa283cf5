// dnstap output (https://dnstap.info): every query and its response as
// AUTH_QUERY and AUTH_RESPONSE messages, protobuf (protobuf-c, schema
// server/dnstap.proto) in Frame Streams (libfstrm) on a unix socket, which
// fstrm_capture, dnstap-read, dnscollector and friends read. libfstrm's I/O
// thread owns the socket and reconnects when the reader comes back; each
// worker writes to a queue of its own without locking, and a frame that
// finds its queue full (the reader is slow or gone) is dropped and counted,
// never waited for: dnstap never slows answers down.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <ctime>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "server/answer.hpp"

struct fstrm_iothr;
struct fstrm_iothr_queue;

namespace steerdns::server {

struct DnstapConfig {
  std::string socket;  // resolved path; empty: dnstap is off
  bool queries = true;
  bool responses = true;
  bool operator==(const DnstapConfig&) const = default;
};

class Dnstap {
 public:
  // Starts the I/O thread (it connects when a reader listens). Throws
  // std::runtime_error naming the socket when libfstrm refuses the setup.
  Dnstap(const DnstapConfig& config, unsigned workers);
  ~Dnstap();
  Dnstap(const Dnstap&) = delete;
  Dnstap& operator=(const Dnstap&) = delete;

  // Worker WORKER's thread: QUERY from CLIENT to LOCAL (may be nullptr)
  // over TRANSPORT, received at RECEIVED, and RESPONSE (empty: none was
  // sent) at ANSWERED. ZONE is the apex (wire) that answered; IDENTITY the
  // world's server.identity.
  void log(unsigned worker, Transport transport, const sockaddr_storage& client,
           const sockaddr_storage* local, std::span<const std::uint8_t> query,
           std::span<const std::uint8_t> response, std::string_view zone, std::string_view identity,
           const timespec& received, const timespec& answered) noexcept;

  // Frames taken by the writer's queues (written when a reader is connected,
  // discarded by libfstrm while none is), and frames dropped at a full queue.
  std::uint64_t queued() const noexcept;
  std::uint64_t dropped() const noexcept;
  const DnstapConfig& config() const noexcept { return config_; }

 private:
  // Each worker's queue and counters, written by that worker only.
  struct alignas(64) Lane {
    fstrm_iothr_queue* queue = nullptr;
    std::atomic<std::uint64_t> queued{0}, dropped{0};
  };

  void submit(Lane& lane, void* frame, std::size_t size) noexcept;

  DnstapConfig config_;
  fstrm_iothr* iothr_ = nullptr;
  unsigned workers_;
  std::unique_ptr<Lane[]> lanes_;
};

}  // namespace steerdns::server
