#include "server/dnstap.hpp"

#include <fstrm.h>
#include <netinet/in.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "dnstap.pb-c.h"

namespace steerdns::server {

namespace {

constexpr char kContentType[] = "protobuf:dnstap.Dnstap";

// Address octets and port of ADDRESS into the message's fields.
void set_address(const sockaddr_storage* address, ProtobufCBinaryData& octets, protobuf_c_boolean& has_octets,
                 std::uint32_t& port, protobuf_c_boolean& has_port, Dnstap__SocketFamily& family,
                 protobuf_c_boolean& has_family) {
  if (address == nullptr) return;
  if (address->ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address);
    octets = {4, const_cast<std::uint8_t*>(reinterpret_cast<const std::uint8_t*>(&in->sin_addr))};
    port = ntohs(in->sin_port);
    family = DNSTAP__SOCKET_FAMILY__INET;
  } else if (address->ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    octets = {16, const_cast<std::uint8_t*>(in6->sin6_addr.s6_addr)};
    port = ntohs(in6->sin6_port);
    family = DNSTAP__SOCKET_FAMILY__INET6;
  } else {
    return;
  }
  has_octets = has_port = has_family = 1;
}

// Only the lane's worker writes its counters: a load and a store, no
// read-modify-write shared between cores.
void bump_lane(std::atomic<std::uint64_t>& counter) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

}  // namespace

Dnstap::Dnstap(const DnstapConfig& config, unsigned workers)
    : config_(config), workers_(workers), lanes_(std::make_unique<Lane[]>(workers)) {
  fstrm_unix_writer_options* unix_options = fstrm_unix_writer_options_init();
  fstrm_unix_writer_options_set_socket_path(unix_options, config_.socket.c_str());
  fstrm_writer_options* writer_options = fstrm_writer_options_init();
  fstrm_writer_options_add_content_type(writer_options, kContentType, sizeof kContentType - 1);
  fstrm_writer* writer = fstrm_unix_writer_init(unix_options, writer_options);
  fstrm_unix_writer_options_destroy(&unix_options);
  fstrm_writer_options_destroy(&writer_options);
  if (writer == nullptr) throw std::runtime_error("dnstap: cannot set up a writer for " + config_.socket);
  fstrm_iothr_options* options = fstrm_iothr_options_init();
  fstrm_iothr_options_set_num_input_queues(options, workers);
  fstrm_iothr_options_set_queue_model(options, FSTRM_IOTHR_QUEUE_MODEL_SPSC);
  fstrm_iothr_options_set_reopen_interval(options, 1);
  iothr_ = fstrm_iothr_init(options, &writer);
  fstrm_iothr_options_destroy(&options);
  if (iothr_ == nullptr) {
    if (writer != nullptr) fstrm_writer_destroy(&writer);
    throw std::runtime_error("dnstap: cannot start the I/O thread for " + config_.socket);
  }
  for (unsigned i = 0; i < workers; ++i) {
    lanes_[i].queue = fstrm_iothr_get_input_queue_idx(iothr_, i);
    if (lanes_[i].queue == nullptr) {
      fstrm_iothr_destroy(&iothr_);
      throw std::runtime_error("dnstap: no input queue for worker " + std::to_string(i));
    }
  }
}

Dnstap::~Dnstap() {
  // Flushes what is queued to a connected reader, then stops the thread.
  if (iothr_ != nullptr) fstrm_iothr_destroy(&iothr_);
}

std::uint64_t Dnstap::queued() const noexcept {
  std::uint64_t n = 0;
  for (unsigned i = 0; i < workers_; ++i) n += lanes_[i].queued.load(std::memory_order_relaxed);
  return n;
}

std::uint64_t Dnstap::dropped() const noexcept {
  std::uint64_t n = 0;
  for (unsigned i = 0; i < workers_; ++i) n += lanes_[i].dropped.load(std::memory_order_relaxed);
  return n;
}

void Dnstap::submit(Lane& lane, void* frame, std::size_t size) noexcept {
  if (fstrm_iothr_submit(iothr_, lane.queue, frame, size, fstrm_free_wrapper, nullptr) == fstrm_res_success) {
    bump_lane(lane.queued);
  } else {
    std::free(frame);
    bump_lane(lane.dropped);
  }
}

void Dnstap::log(unsigned worker, Transport transport, const sockaddr_storage& client,
                 const sockaddr_storage* local, std::span<const std::uint8_t> query,
                 std::span<const std::uint8_t> response, std::string_view zone, std::string_view identity,
                 const timespec& received, const timespec& answered) noexcept {
  Dnstap__Message m = DNSTAP__MESSAGE__INIT;
  m.socket_protocol = transport == Transport::tcp ? DNSTAP__SOCKET_PROTOCOL__TCP
                                                  : DNSTAP__SOCKET_PROTOCOL__UDP;
  m.has_socket_protocol = 1;
  set_address(&client, m.query_address, m.has_query_address, m.query_port, m.has_query_port, m.socket_family,
              m.has_socket_family);
  protobuf_c_boolean has_local_family = 0;
  Dnstap__SocketFamily local_family{};
  set_address(local, m.response_address, m.has_response_address, m.response_port, m.has_response_port,
              local_family, has_local_family);
  m.query_time_sec = static_cast<std::uint64_t>(received.tv_sec);
  m.query_time_nsec = static_cast<std::uint32_t>(received.tv_nsec);
  m.has_query_time_sec = m.has_query_time_nsec = 1;
  m.query_message = {query.size(), const_cast<std::uint8_t*>(query.data())};
  m.has_query_message = 1;
  if (!zone.empty()) {
    m.query_zone = {zone.size(), reinterpret_cast<std::uint8_t*>(const_cast<char*>(zone.data()))};
    m.has_query_zone = 1;
  }

  Dnstap__Dnstap d = DNSTAP__DNSTAP__INIT;
  d.type = DNSTAP__DNSTAP__TYPE__MESSAGE;
  d.message = &m;
  if (!identity.empty()) {
    d.identity = {identity.size(), reinterpret_cast<std::uint8_t*>(const_cast<char*>(identity.data()))};
    d.has_identity = 1;
  }
  static constexpr char kVersion[] = "steerdns " STEERDNS_VERSION;
  d.version = {sizeof kVersion - 1, reinterpret_cast<std::uint8_t*>(const_cast<char*>(kVersion))};
  d.has_version = 1;

  auto send = [&] {
    const std::size_t size = dnstap__dnstap__get_packed_size(&d);
    auto* frame = static_cast<std::uint8_t*>(std::malloc(size));
    if (frame == nullptr) {
      bump_lane(lanes_[worker].dropped);
      return;
    }
    dnstap__dnstap__pack(&d, frame);
    submit(lanes_[worker], frame, size);
  };
  if (config_.queries) {
    m.type = DNSTAP__MESSAGE__TYPE__AUTH_QUERY;
    send();
  }
  if (config_.responses && !response.empty()) {
    m.type = DNSTAP__MESSAGE__TYPE__AUTH_RESPONSE;
    m.response_message = {response.size(), const_cast<std::uint8_t*>(response.data())};
    m.has_response_message = 1;
    m.response_time_sec = static_cast<std::uint64_t>(answered.tv_sec);
    m.response_time_nsec = static_cast<std::uint32_t>(answered.tv_nsec);
    m.has_response_time_sec = m.has_response_time_nsec = 1;
    send();
  }
}

}  // namespace steerdns::server
