// Regression tests for what fuzzing (fuzz/, `make fuzz`) found in server/:
// each test is named after its target and the input that broke it. The
// zones/ findings (fuzz_zone) are in zones/test_fuzz_findings.cpp.
#include <doctest/doctest.h>

#include <fstream>

#include "common/load_error.hpp"
#include "fixture.hpp"
#include "server/config.hpp"

using namespace steerdns;

namespace {

const std::string kHead = "zone: example.com\nsoa: {mname: ns1, rname: h, serial: 1}\nns: [ns1]\n";

}  // namespace

// fuzz/corpus/config/finding-token-dev-zero.yaml. read_token_file read the
// token's "first line" with std::getline, so `token_file: /dev/zero` read
// until memory ran out (libFuzzer: out-of-memory), and a FIFO blocked the load.
TEST_CASE("fuzz_config: token_file /dev/zero is refused, not read until memory runs out") {
  test::TempDir dir;
  dir.write("zones/a.yaml", kHead);
  auto config_error = [&](const std::string& token_file) -> std::string {
    try {
      server::load_config(
          dir.write("c.yaml", "server: {listen: [127.0.0.1:53]}\nzones: zones\nadmin: {token_file: " +
                                  token_file + "}\n"));
    } catch (const common::LoadError& e) {
      return e.what();
    }
    return "no error";
  };
  CHECK(config_error("/dev/zero").find("c.yaml:3: token_file: cannot read '/dev/zero': not a regular file") !=
        std::string::npos);
  CHECK(config_error("zones").find("not a regular file") != std::string::npos);
  dir.write("long", std::string(5000, 'x'));
  CHECK(config_error("long").find("longer than 4096 characters") != std::string::npos);
  dir.write("good", "0123456789abcdef0123\r\nsecond line\n");
  CHECK(config_error("good") == "no error");
  CHECK(server::read_token_file(dir.path().string() + "/good") == "0123456789abcdef0123");
}
