// server/cookie.hpp: SipHash-2-4 against OpenSSL's, RFC 9018's example
// server cookie, and the states of a cookie (fresh, stale, other secret,
// other address, the previous secret of a rollover); the secret file.
#include <doctest/doctest.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include <random>

#include "common/load_error.hpp"
#include "fixture.hpp"
#include "server/cookie.hpp"

using namespace steerdns;

namespace {

// OpenSSL's SipHash-2-4 with an 8-octet output: the reference.
std::array<std::uint8_t, 8> openssl_siphash(const std::uint8_t key[16],
                                            const std::vector<std::uint8_t>& data) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "SIPHASH", nullptr);
  REQUIRE(mac != nullptr);
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  unsigned size = 8;
  OSSL_PARAM params[] = {OSSL_PARAM_construct_uint(OSSL_MAC_PARAM_SIZE, &size), OSSL_PARAM_construct_end()};
  REQUIRE(EVP_MAC_init(ctx, key, 16, params) == 1);
  REQUIRE(EVP_MAC_update(ctx, data.data(), data.size()) == 1);
  std::array<std::uint8_t, 8> out{};
  std::size_t written = 0;
  REQUIRE(EVP_MAC_final(ctx, out.data(), &written, out.size()) == 1);
  REQUIRE(written == 8);
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  return out;
}

std::vector<std::uint8_t> hex(const std::string& text) {
  std::vector<std::uint8_t> out;
  for (std::size_t i = 0; i + 1 < text.size(); i += 2)
    out.push_back(static_cast<std::uint8_t>(std::stoi(text.substr(i, 2), nullptr, 16)));
  return out;
}

server::Cookie cookie_of(const std::vector<std::uint8_t>& client, const std::uint8_t* server = nullptr,
                         std::size_t server_size = 0) {
  server::Cookie c;
  c.present = true;
  std::memcpy(c.data, client.data(), 8);
  if (server != nullptr) std::memcpy(c.data + 8, server, server_size);
  c.size = static_cast<std::uint8_t>(8 + server_size);
  return c;
}

server::CookieSecrets secrets_of(const std::string& current) {
  server::CookieSecrets s;
  s.enabled = true;
  const auto bytes = hex(current);
  std::copy(bytes.begin(), bytes.end(), s.current.begin());
  return s;
}

}  // namespace

TEST_CASE("SipHash-2-4 agrees with OpenSSL's at every length from 0 to 64 octets") {
  std::mt19937 random(7);
  std::uint8_t key[16];
  for (auto& k : key) k = static_cast<std::uint8_t>(random());
  std::vector<std::uint8_t> data;
  for (std::size_t len = 0; len <= 64; ++len) {
    std::uint8_t ours[8];
    server::siphash24(key, data.data(), data.size(), ours);
    const auto theirs = openssl_siphash(key, data);
    CHECK_MESSAGE(std::equal(theirs.begin(), theirs.end(), ours), "length ", len);
    data.push_back(static_cast<std::uint8_t>(random()));
  }
}

TEST_CASE("RFC 9018 Appendix A.1: the server cookie for 198.51.100.100 at 1559731985") {
  const auto secrets = secrets_of("e5e973e5a6b2a43f48e7dc849e37bfcf");
  const auto client = hex("2464c4abcf10c957");
  const sockaddr_storage from = test::source("198.51.100.100");
  std::uint8_t made[server::kServerCookie];
  server::make_server_cookie(secrets.current, client.data(), &from, 1559731985, made);
  CHECK(std::vector<std::uint8_t>(made, made + 16) == hex("010000005cf79f111f8130c3eee29480"));
  // Sent back within the hour from the same address: valid, and returned as is.
  const auto v = server::check_cookie(secrets, cookie_of(client, made, 16), &from, 1559731985 + 60);
  CHECK(v.state == server::CookieState::valid);
  CHECK(std::equal(made, made + 16, v.server));
}

TEST_CASE("Cookie states: client only, valid, stale, refreshed, another address or secret, rollover") {
  using server::CookieState;
  const auto secrets = secrets_of("000102030405060708090a0b0c0d0e0f");
  const auto client = hex("0102030405060708");
  const sockaddr_storage from = test::source("127.0.0.1");
  const sockaddr_storage other = test::source("127.0.0.2");
  const std::uint32_t t = 2'000'000'000;

  const auto first = server::check_cookie(secrets, cookie_of(client), &from, t);
  CHECK(first.state == CookieState::client_only);
  CHECK(first.server[0] == 1);  // version 1, then three reserved zero octets
  CHECK(first.server[1] == 0);
  const auto cookie = cookie_of(client, first.server, 16);

  CHECK(server::check_cookie(secrets, cookie, &from, t + 100).state == CookieState::valid);
  CHECK(server::check_cookie(secrets, cookie, &from, t - 200).state == CookieState::valid);  // clock skew
  CHECK(server::check_cookie(secrets, cookie, &from, t - 301).state == CookieState::invalid);
  CHECK(server::check_cookie(secrets, cookie, &from, t + 3601).state == CookieState::invalid);
  CHECK(server::check_cookie(secrets, cookie, &other, t).state == CookieState::invalid);
  CHECK(server::check_cookie(secrets_of("ff0102030405060708090a0b0c0d0e0f"), cookie, &from, t).state ==
        CookieState::invalid);

  // Past half an hour: still valid, but a new cookie (made now) goes back.
  const auto old = server::check_cookie(secrets, cookie, &from, t + 2000);
  CHECK(old.state == CookieState::valid);
  CHECK_FALSE(std::equal(first.server, first.server + 16, old.server));

  // Rollover: the old secret becomes the previous one; its cookies are
  // still valid, and are replaced by ones under the new secret.
  auto rolled = secrets_of("ff0102030405060708090a0b0c0d0e0f");
  rolled.has_previous = true;
  rolled.previous = secrets.current;
  const auto during = server::check_cookie(rolled, cookie, &from, t + 10);
  CHECK(during.state == CookieState::valid);
  const auto renewed = cookie_of(client, during.server, 16);
  CHECK(server::check_cookie(rolled, renewed, &from, t + 20).state == CookieState::valid);
  CHECK(server::check_cookie(secrets, renewed, &from, t + 20).state == CookieState::invalid);

  // A server cookie of another length or version than ours: invalid.
  std::uint8_t wrong[16];
  std::memcpy(wrong, first.server, 16);
  wrong[0] = 2;
  CHECK(server::check_cookie(secrets, cookie_of(client, wrong, 16), &from, t).state == CookieState::invalid);
  CHECK(server::check_cookie(secrets, cookie_of(client, first.server, 8), &from, t).state ==
        CookieState::invalid);
}

TEST_CASE("The cookie secret file: one or two secrets of 32 hex digits, errors with file and line") {
  test::TempDir dir;
  const auto two = server::read_cookie_secrets(dir.write(
      "s", "# rolled on 2026-12-01\n000102030405060708090a0b0c0d0e0f\n\nFFEEDDCCBBAA99887766554433221100\n"));
  CHECK(two.enabled);
  CHECK(two.current[1] == 0x01);
  CHECK(two.has_previous);
  CHECK(two.previous[0] == 0xFF);
  CHECK_FALSE(
      server::read_cookie_secrets(dir.write("one", "000102030405060708090a0b0c0d0e0f\n")).has_previous);

  auto error = [&](const std::string& text) {
    try {
      server::read_cookie_secrets(dir.write("bad", text));
    } catch (const common::LoadError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  CHECK(error("0001\n").find("bad:1: a cookie secret is 32 hexadecimal digits") != std::string::npos);
  CHECK(error("\n000102030405060708090a0b0c0d0e0g\n").find("bad:2:") != std::string::npos);
  CHECK(error("# nothing\n").find("no cookie secret") != std::string::npos);
  CHECK(error(std::string(3, ' ') + "000102030405060708090a0b0c0d0e0f\n000102030405060708090a0b0c0d0e0f\n"
                                    "000102030405060708090a0b0c0d0e0f\n")
            .find("bad:3: a third secret") != std::string::npos);
  CHECK_THROWS_AS(server::read_cookie_secrets((dir.path() / "missing").string()), common::LoadError);
}
