#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <vector>

#include "../temp_dir.hpp"
#include "common/load_error.hpp"
#include "zones/name.hpp"
#include "zones/zone.hpp"

using namespace steerdns;
using steerdns::test::TempDir;

namespace {

const char* kZone = R"(zone: example.com
ttl: 3600
soa: {mname: ns1, rname: hostmaster, serial: 7, minimum: 300}
ns: [ns1, ns2.example.net.]
records:
  ns1: {A: 127.0.0.1}
  www: {A: [127.0.0.10, 127.0.0.11], AAAA: "::1"}
  "*.wild": {A: 127.0.0.20}
  a.b.deep: {A: 127.0.0.30}
  sub: {NS: [ns1.sub, ns.example.net.]}
  ns1.sub: {A: 127.0.0.40}
  mx: {ttl: 60, MX: "10 www", TXT: {ttl: 5, data: ["one", "two"]}}
)";

// Loads TEXT as a zone file and returns the LoadError message it throws.
std::string load_error(const std::string& text) {
  TempDir dir;
  const auto path = dir.write("bad.yaml", text);
  try {
    zones::load_zone(path);
  } catch (const common::LoadError& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("a zone compiles into nodes, empty non-terminals, cuts and wildcards") {
  TempDir dir;
  auto zone = zones::load_zone(dir.write("z.yaml", kZone));
  const auto& z = *zone;
  CHECK(z.serial() == 7);
  // SOA, 2 NS, ns1, www x3, wildcard, deep, sub NS x2, glue, MX, TXT x2
  CHECK(z.record_count() == 15);
  const auto* www = z.find(*zones::name_from_text("www.example.com."));
  REQUIRE(www);
  REQUIRE(www->find(zones::rrtype::A));
  CHECK(www->find(zones::rrtype::A)->count == 2);
  CHECK(www->cut == nullptr);
  const auto* ent = z.find(*zones::name_from_text("b.deep.example.com."));
  REQUIRE(ent);
  CHECK(ent->rrsets.empty());
  const auto* wild = z.find(*zones::name_from_text("wild.example.com."));
  REQUIRE(wild);
  REQUIRE(wild->wildcard);
  CHECK(wild->wildcard->find(zones::rrtype::A));
  const auto* sub = z.find(*zones::name_from_text("sub.example.com."));
  REQUIRE(sub);
  CHECK(sub->is_delegation());
  const auto* glue = z.find(*zones::name_from_text("ns1.sub.example.com."));
  REQUIRE(glue);
  CHECK(glue->cut == sub);
  // The delegation's NS carries its glue; the out-of-zone server has none.
  REQUIRE(sub->find(zones::rrtype::NS)->additional.size() == 1);
  CHECK(sub->find(zones::rrtype::NS)->additional[0].owner == glue->owner);
  // MX target www is ours: its A and AAAA go to the additional section.
  const auto* mx = z.find(*zones::name_from_text("mx.example.com."))->find(zones::rrtype::MX);
  CHECK(mx->ttl == 60);
  CHECK(mx->additional.size() == 2);
  CHECK(z.find(*zones::name_from_text("mx.example.com."))->find(zones::rrtype::TXT)->ttl == 5);
  // Negative answers use min(SOA TTL, minimum).
  CHECK(z.negative_soa().ttl == 300);
}

TEST_CASE("serial auto comes from the content: a copy with another mtime keeps it, an edit changes it") {
  TempDir dir;
  std::string text = kZone;
  text.replace(text.find("serial: 7"), 9, "serial: auto");
  const auto path = dir.write("z.yaml", text);
  const auto copy = dir.write("copy/z.yaml", text);
  std::filesystem::last_write_time(copy,
                                   std::filesystem::file_time_type::clock::now() - std::chrono::hours(24));
  const auto first = zones::load_zone(path)->serial();
  CHECK(zones::load_zone(copy)->serial() == first);
  CHECK(zones::load_zone_text(text, "elsewhere.yaml")->serial() == first);
  CHECK(first == zones::AutoSerial::candidate(zones::AutoSerial::digest(text), 0));
  CHECK(zones::load_zone_text(text + "# an edit\n", "z.yaml")->serial() != first);
  // RFC 1982: greater means ahead by less than half the space.
  CHECK(zones::AutoSerial::greater(1, 0));
  CHECK(zones::AutoSerial::greater(0, 0xffffffffu));
  CHECK_FALSE(zones::AutoSerial::greater(0x80000000u, 0));
  CHECK_FALSE(zones::AutoSerial::greater(5, 5));
}

TEST_CASE("zone errors name file, line and the offending key or value") {
  const std::string head = "zone: example.com\nsoa: {mname: ns1, rname: h}\nns: [ns1]\n";
  CHECK(load_error(head + "colour: blue\n").find("bad.yaml:4: unknown key 'colour'") != std::string::npos);
  CHECK(load_error(head + "records:\n  www:\n    A: 999.1.1.1\n").find("bad.yaml:6:") != std::string::npos);
  CHECK(load_error(head + "records:\n  www:\n    A: 999.1.1.1\n").find("999.1.1.1") != std::string::npos);
  CHECK(load_error(head + "records:\n  www:\n    HINFO: a b\n").find("unsupported record type 'HINFO'") !=
        std::string::npos);
  CHECK(
      load_error(head + "records:\n  www:\n    A: 127.0.0.1\n    CNAME: x\n").find("CNAME and other data") !=
      std::string::npos);
  CHECK(load_error(head + "records:\n  www.example.org.:\n    A: 127.0.0.1\n").find("outside zone") !=
        std::string::npos);
  CHECK(load_error(head + "records:\n  sub: {NS: ns.sub}\n  x.sub: {TXT: hi}\n").find("only glue") !=
        std::string::npos);
  CHECK(load_error("zone: example.com\nsoa: {mname: ns1, rname: h}\n").find("missing key 'ns'") !=
        std::string::npos);
  CHECK(load_error("zone: example.com\nsoa: {mname: ns1, rname: h}\nns: [ns1\n").find("bad.yaml:") !=
        std::string::npos);
  CHECK(load_error(head + "records:\n  \"@\": {CNAME: x}\n").find("apex") != std::string::npos);
}

TEST_CASE("rrsets that no DNS message could carry are refused; duplicate VIPs too") {
  const std::string head = "zone: example.com\nsoa: {mname: ns1, rname: h}\nns: [ns1]\n";
  std::string many = "records:\n  ns1: {A: 127.0.0.1}\n  big:\n    A:\n";
  for (int i = 0; i < 4280; ++i)  // 59,920 octets of records, 68k with owners
    many += "      - 10." + std::to_string(i / 65536) + "." + std::to_string(i / 256 % 256) + "." +
            std::to_string(i % 256) + "\n";
  CHECK(load_error(head + many).find("larger than a DNS message can carry") != std::string::npos);
  CHECK(load_error(head + "regions:\n  r: {location: [1, 2], vips: [127.1.0.1, 127.1.0.1]}\n")
            .find(":5: region 'r': VIP '127.1.0.1' is listed twice") != std::string::npos);
  CHECK(load_error(head + "regions:\n  r: {location: [1, 2], vips: [127.1.0.1]}\n"
                          "  s: {location: [3, 4], vips: [\"::1\", 127.1.0.1]}\n")
            .find(":6: region 's': VIP '127.1.0.1' is also in region 'r' (line 5); a VIP belongs to one "
                  "region") != std::string::npos);
}

TEST_CASE("TXT text is quoted and split into 255-byte strings") {
  TempDir dir;
  const std::string head = "zone: example.com\nsoa: {mname: ns1, rname: h}\nns: [ns1]\n";
  auto zone = zones::load_zone(dir.write("z.yaml", head + "records:\n  ns1: {A: 127.0.0.1}\n  t: {TXT: \"" +
                                                       std::string(300, 'x') + " \\\"q\\\"\"}\n"));
  const auto* txt = zone->find(*zones::name_from_text("t.example.com."))->find(zones::rrtype::TXT);
  REQUIRE(txt);
  // rdata: 255-byte string + remainder string (300 x, space, "q" with quotes = 304 bytes).
  CHECK(txt->wire.size() == 10 + 1 + 255 + 1 + (304 - 255));
}

TEST_CASE("two files declaring one zone are rejected") {
  TempDir dir;
  std::vector<std::unique_ptr<zones::Zone>> zs;
  zs.push_back(zones::load_zone(dir.write("a.yaml", kZone)));
  zs.push_back(zones::load_zone(dir.write("b.yaml", kZone)));
  CHECK_THROWS_AS(zones::ZoneTable(std::move(zs)), common::LoadError);
}

// zones::load_zone_text, the loader the fuzz targets use.
TEST_CASE("load_zone_text: the zone from text, errors naming the given path") {
  auto zone = zones::load_zone_text(
      "zone: example.com\nsoa: {mname: ns1, rname: h, serial: 9}\nns: [ns1]\n"
      "records: {ns1: {A: 127.0.0.1}}\n",
      "text.yaml");
  CHECK(zone->serial() == 9);
  CHECK(zone->file() == "text.yaml");
  try {
    zones::load_zone_text("zone: example.com\nsoa: {mname: ns1\n", "broken.yaml");
    FAIL("no error");
  } catch (const common::LoadError& e) {
    CHECK(std::string(e.what()).find("broken.yaml:") == 0);
  }
}

// Issue #16: an NS target inside the zone is looked up in the zone itself;
// without an address there no resolver can reach that server.
TEST_CASE("an NS target inside the zone without an address is refused with file:line") {
  const std::string head = "zone: example.com\nsoa: {mname: ns1, rname: h}\n";
  // Apex NS: the error names the ns key's line.
  CHECK(load_error(head + "ns: [ns1]\n")
            .find("bad.yaml:3: NS ns1.example.com. of example.com. is inside the zone but has no address: "
                  "give it an A or AAAA record") != std::string::npos);
  CHECK(load_error(head + "ns: [ns1, ns2]\nrecords:\n  ns1: {A: 127.0.0.1}\n")
            .find("bad.yaml:3: NS ns2.example.com. of example.com. is inside the zone") != std::string::npos);
  // A TXT or a CNAME is no address; the apex itself needs one too.
  CHECK(load_error(head + "ns: [ns1]\nrecords:\n  ns1: {TXT: hi}\n").find("NS ns1.example.com.") !=
        std::string::npos);
  CHECK(load_error(head + "ns: [ns1]\nrecords:\n  ns1: {CNAME: www}\n  www: {A: 127.0.0.1}\n")
            .find("NS ns1.example.com.") != std::string::npos);
  CHECK(load_error(head + "ns: \"@\"\n").find("NS example.com. of example.com.") != std::string::npos);
  // A delegation whose target is below its cut needs the glue; one whose
  // target is elsewhere in the zone needs that name's address.
  const std::string apex_ok = head + "ns: [ns1]\nrecords:\n  ns1: {A: 127.0.0.1}\n";
  CHECK(load_error(apex_ok + "  sub: {NS: [ns1.sub]}\n")
            .find("bad.yaml:6: NS ns1.sub.example.com. of sub.example.com. is inside the zone but has no "
                  "address") != std::string::npos);
  CHECK(load_error(apex_ok + "  sub: {NS: [ns1.sub, ns9]}\n  ns1.sub: {A: 127.0.0.2}\n")
            .find("bad.yaml:6: NS ns9.example.com. of sub.example.com.") != std::string::npos);
  // Accepted: an address (A or AAAA), glue, a name server outside the zone,
  // a geo name (it answers A and AAAA itself).
  CHECK(load_error(apex_ok + "  sub: {NS: [ns1.sub, ns1, ns.example.net.]}\n  ns1.sub: {AAAA: \"::1\"}\n") ==
        "no error");
  CHECK(load_error(head + "ns: [ns1]\nrecords:\n  ns1: {AAAA: \"::1\"}\n") == "no error");
  CHECK(load_error(head + "ns: [ns1.example.net., ns2.example.org.]\n") == "no error");
  CHECK(load_error(head + "ns: [ns1, ns.example.net.]\nregions:\n  paris: {location: [48.86, 2.35], vips: "
                          "[127.1.0.1]}\ngeo:\n  ns1: {regions: [paris]}\n") == "no error");
  // A name server of a parent or a sibling zone is not ours to check.
  CHECK(load_error("zone: sub.example.com\nsoa: {mname: ns1, rname: h}\nns: [ns1.example.com.]\n") ==
        "no error");
}
