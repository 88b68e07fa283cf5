// serial: auto with memory (server/serials.hpp): the same content keeps its
// serial; a changed one gets a greater serial (RFC 1982); two instances that
// served the same versions give the same serial.
#include <doctest/doctest.h>

#include <random>
#include <string>

#include "../temp_dir.hpp"
#include "server/serials.hpp"

using namespace steerdns;
using zones::AutoSerial;

TEST_CASE("serials: kept for the same content, greater for a changed one, alike on two instances") {
  test::TempDir dir;
  const std::string path = (dir.path() / "serials.yaml").string();
  const std::string apex = "example.com.";
  std::mt19937_64 random(7);

  server::SerialMemory first(path);
  const std::uint64_t v1 = random();
  const std::uint32_t s1 = first.serial(apex, v1);
  CHECK(s1 == AutoSerial::candidate(v1, 0));  // no memory yet: the content's own
  first.save();

  // A restart with the same content: the same serial.
  CHECK(server::SerialMemory(path).serial(apex, v1) == s1);

  // A hundred edits: each serial greater than the last, and two instances
  // reading the same memory agree on each.
  std::uint32_t last = s1;
  for (int i = 0; i < 100; ++i) {
    const std::uint64_t v = random();
    server::SerialMemory a(path), b(path);
    const std::uint32_t s = a.serial(apex, v);
    CHECK(AutoSerial::greater(s, last));
    CHECK(b.serial(apex, v) == s);
    a.save();
    last = s;
  }
  // Another zone is independent; a corrupt memory starts afresh.
  CHECK(server::SerialMemory(path).serial("other.example.", v1) == s1);
  dir.write("serials.yaml", "zones: {example.com.: {digest: xyz, serial: 1}}\n");
  CHECK(server::SerialMemory(path).serial(apex, v1) == s1);
  // No state file, no memory: the content's serial.
  CHECK(server::serials_path("") == "");
  CHECK(server::serials_path("/var/lib/steerdns/state.yaml") == "/var/lib/steerdns/serials.yaml");
}
