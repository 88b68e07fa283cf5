// server/edns.hpp on its own: OPT options, EDNS Client Subnet (RFC 7871),
// cookies (RFC 7873), NSID (RFC 5001) and edns-tcp-keepalive (RFC 7828).
#include <doctest/doctest.h>

#include <vector>

#include "server/edns.hpp"

using namespace steerdns;

namespace {

std::vector<std::uint8_t> option(std::uint16_t code, std::vector<std::uint8_t> data) {
  data.insert(data.begin(),
              {static_cast<std::uint8_t>(code >> 8), static_cast<std::uint8_t>(code),
               static_cast<std::uint8_t>(data.size() >> 8), static_cast<std::uint8_t>(data.size())});
  return data;
}

bool read(const std::vector<std::uint8_t>& rdata, server::EdnsOptions& options) {
  return server::read_opt_options(rdata.data(), rdata.size(), options);
}

bool read(const std::vector<std::uint8_t>& rdata, server::ClientSubnet& ecs) {
  server::EdnsOptions options;
  const bool ok = read(rdata, options);
  ecs = options.ecs;
  return ok;
}

std::vector<std::uint8_t> operator+(std::vector<std::uint8_t> a, const std::vector<std::uint8_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TEST_CASE("OPT options: unknown ones are skipped, ECS is read, overruns are FORMERR") {
  server::ClientSubnet ecs;
  CHECK(read({}, ecs));
  CHECK_FALSE(ecs.present);
  CHECK(read(option(10, {1, 2, 3, 4, 5, 6, 7, 8}) + option(12, {0, 0, 0}), ecs));
  CHECK_FALSE(ecs.present);

  server::ClientSubnet v4;
  REQUIRE(read(option(10, {1, 2, 3, 4, 5, 6, 7, 8}) + option(8, {0, 1, 21, 0, 193, 51, 24}), v4));
  CHECK(v4.present);
  CHECK(v4.family == 1);
  CHECK(v4.source == 21);
  CHECK(v4.address_size() == 3);
  CHECK(v4.address[0] == 193);
  CHECK(v4.address[2] == 24);
  CHECK(v4.address[3] == 0);

  server::ClientSubnet bad;
  CHECK_FALSE(read({0, 8, 0}, bad));               // an option header cut short
  CHECK_FALSE(read({0, 10, 0, 9, 1, 2, 3}, bad));  // data past the RDATA
  CHECK_FALSE(read(option(65000, {}) + std::vector<std::uint8_t>{0}, bad));
}

TEST_CASE("ECS (RFC 7871 §7.1.1): what makes the query FORMERR") {
  auto rejects = [](std::vector<std::uint8_t> data) {
    server::ClientSubnet ecs;
    return !read(option(8, std::move(data)), ecs);
  };
  CHECK(rejects({0, 1, 24}));                     // shorter than family, source, scope
  CHECK(rejects({0, 3, 0, 0}));                   // unknown family
  CHECK(rejects({0, 1, 33, 0, 1, 2, 3, 4, 5}));   // longer than IPv4
  CHECK(rejects({0, 1, 24, 8, 193, 51, 24}));     // a scope in a query
  CHECK(rejects({0, 1, 24, 0, 193, 51, 24, 0}));  // an address longer than the prefix
  CHECK(rejects({0, 1, 23, 0, 193, 51, 25}));     // a bit set beyond the prefix
  CHECK_FALSE(rejects({0, 1, 0, 0}));             // source 0: no address
  CHECK_FALSE(rejects({0, 2, 128, 0, 0x20, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));
  server::ClientSubnet twice;
  CHECK_FALSE(read(option(8, {0, 1, 0, 0}) + option(8, {0, 1, 0, 0}), twice));
}

TEST_CASE("COOKIE (RFC 7873 §5.2.2): a client cookie, or one with a server cookie of 8 to 32 octets") {
  server::EdnsOptions client;
  REQUIRE(read(option(10, {1, 2, 3, 4, 5, 6, 7, 8}), client));
  CHECK(client.cookie.present);
  CHECK(client.cookie.server_size() == 0);
  CHECK(client.cookie.client()[7] == 8);

  std::vector<std::uint8_t> both{1, 2, 3, 4, 5, 6, 7, 8};
  for (int i = 0; i < 16; ++i) both.push_back(static_cast<std::uint8_t>(0xA0 + i));
  server::EdnsOptions full;
  REQUIRE(read(option(10, both), full));
  CHECK(full.cookie.server_size() == 16);
  CHECK(full.cookie.server()[0] == 0xA0);
  CHECK(full.cookie.server()[15] == 0xAF);

  auto rejects = [](std::size_t size) {
    server::EdnsOptions o;
    return !read(option(10, std::vector<std::uint8_t>(size, 7)), o);
  };
  for (std::size_t size : {0, 1, 7, 9, 15, 41, 64}) CHECK_MESSAGE(rejects(size), size);
  for (std::size_t size : {8, 16, 24, 40}) CHECK_MESSAGE(!rejects(size), size);
  server::EdnsOptions twice;
  CHECK_FALSE(read(option(10, {1, 2, 3, 4, 5, 6, 7, 8}) + option(10, {1, 2, 3, 4, 5, 6, 7, 8}), twice));
}

TEST_CASE("NSID is a request whatever it carries; a keepalive with a TIMEOUT is marked") {
  server::EdnsOptions o;
  REQUIRE(read(option(3, {}) + option(11, {}), o));
  CHECK(o.nsid);
  CHECK(o.keepalive);
  server::EdnsOptions with_data;
  CHECK(read(option(3, {1, 2}), with_data));
  CHECK(with_data.nsid);
  server::EdnsOptions timeout;
  CHECK(read(option(11, {0, 50}), timeout));  // FORMERR over TCP only (answer())
  CHECK(timeout.keepalive_timeout);
  CHECK_FALSE(o.keepalive_timeout);
  server::EdnsOptions none;
  CHECK(read(option(12, {0, 0}), none));
  CHECK_FALSE(none.nsid);
  CHECK_FALSE(none.keepalive);
  CHECK_FALSE(none.cookie.present);
}
