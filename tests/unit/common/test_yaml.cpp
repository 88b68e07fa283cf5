// common::Yaml: the YAML tree every operator file is read through.
#include <doctest/doctest.h>

#include <string>

#include "common/load_error.hpp"
#include "common/yaml.hpp"

using steerdns::common::Yaml;
using steerdns::common::YamlSyntaxError;

namespace {
// "LINE: reason" of the syntax error TEXT raises, or "no error".
std::string syntax_error(const std::string& text) {
  try {
    Yaml::parse(text);
  } catch (const YamlSyntaxError& e) {
    return std::to_string(e.line()) + ": " + e.what();
  }
  return "no error";
}
}  // namespace

TEST_CASE("yaml: scalars keep their text, plain null spellings are null, lines are 1-based") {
  const Yaml root = Yaml::parse("a: 1\nb:\nc: ~\nd: null\ne: \"null\"\nf: 'x y'\ng: [1, 2]\nh: {k: v}\n");
  REQUIRE(root.is_map());
  CHECK(root.size() == 8);
  CHECK(root["a"].scalar() == "1");
  CHECK(root["a"].line() == 1);
  CHECK(root["b"].is_null());
  CHECK(root["c"].is_null());
  CHECK(root["d"].is_null());
  CHECK(root["e"].is_scalar());  // quoted: the string null
  CHECK(root["e"].scalar() == "null");
  CHECK(root["f"].scalar() == "x y");
  CHECK(root["g"].is_sequence());
  CHECK(root["g"][1].scalar() == "2");
  CHECK_FALSE(root["g"][2].is_defined());
  CHECK(root["h"]["k"].line() == 8);
  CHECK_FALSE(root["missing"]);
  CHECK_FALSE(root["a"]["x"]);  // not a map: undefined, no throw
  CHECK(Yaml::parse("").is_defined() == false);
  CHECK(Yaml::parse("# only a comment\n").is_defined() == false);

  std::string keys;
  for (const auto& entry : root) keys += entry.first.scalar();
  CHECK(keys == "abcdefgh");
  std::string items;
  for (const auto& item : root["g"]) items += item.scalar();
  CHECK(items == "12");
}

TEST_CASE("yaml: anchors and aliases share the anchored node") {
  const Yaml root = Yaml::parse("base: &c {type: http, port: 80}\nx: *c\n");
  CHECK(root["x"]["port"].scalar() == "80");
  CHECK(root["x"]["port"].line() == 1);
  CHECK(syntax_error("x: *nothing\n").find("1: ") == 0);
}

TEST_CASE("yaml: errors carry the line: syntax, duplicate keys, complex keys, several documents") {
  CHECK(syntax_error("a: 1\nb: [1, 2\nc: 3\n").find("did not find expected") != std::string::npos);
  CHECK(syntax_error("a: 1\nb: 2\na: 3\n") == "3: duplicate key 'a' (first on line 1)");
  CHECK(syntax_error("records:\n  www: {A: 1}\n  www: {A: 2}\n") ==
        "3: duplicate key 'www' (first on line 2)");
  CHECK(syntax_error("? [a, b]\n: c\n").find("a map key must be a scalar") != std::string::npos);
  CHECK(syntax_error("a: 1\n---\nb: 2\n") == "2: only one YAML document per file");
  CHECK(syntax_error("---\na: 1\n") == "no error");
  CHECK(syntax_error("a: \"unterminated\n")
            .find("while scanning a quoted scalar: found unexpected end of stream") != std::string::npos);
}

TEST_CASE("yaml: emit_yaml writes what parse reads back, quoting where needed") {
  const std::string text = steerdns::common::emit_yaml({{"regions", {{"paris", "down"}, {"yes", "up"}}},
                                                        {"vips", {{"::1", "down"}, {"a: b", "up"}}},
                                                        {"none", {}}});
  const Yaml root = Yaml::parse(text);
  CHECK(root["regions"]["paris"].scalar() == "down");
  CHECK(root["regions"]["yes"].scalar() == "up");
  CHECK(root["vips"]["::1"].scalar() == "down");
  CHECK(root["vips"]["a: b"].scalar() == "up");
  CHECK(root["none"].is_map());
  CHECK(root["none"].size() == 0);
}

TEST_CASE("load: a duration needs its unit; an unknown key near a known one is named") {
  using steerdns::common::LoadError;
  const steerdns::common::YamlDoc doc{"c.yaml", Yaml::parse("a: 2000\nb: 2000ms\nc: 0\nd: 5s\ne: 2m\n")};
  auto duration_error = [&](const char* key) {
    try {
      steerdns::common::read_duration(doc, doc.root[key], key);
    } catch (const LoadError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  CHECK(duration_error("a") ==
        "c.yaml:1: a: '2000' has no unit: write 2000ms or 2000s (a duration is a "
        "number with ms, s, m or h)");
  CHECK(steerdns::common::read_duration(doc, doc.root["b"], "b").count() == 2000);
  CHECK(steerdns::common::read_duration(doc, doc.root["c"], "c").count() == 0);
  CHECK(steerdns::common::read_duration(doc, doc.root["d"], "d").count() == 5000);
  CHECK(steerdns::common::read_duration(doc, doc.root["e"], "e").count() == 120000);

  CHECK(steerdns::common::did_you_mean("intreval", {"interval", "timeout"}) == "; did you mean 'interval'?");
  CHECK(steerdns::common::did_you_mean("thresold", {"location", "vips", "threshold"}) ==
        "; did you mean 'threshold'?");
  CHECK(steerdns::common::did_you_mean("colour", {"type", "port", "path"}).empty());
  CHECK(steerdns::common::did_you_mean("ab", {"xy"}).empty());
  const steerdns::common::YamlDoc map{"m.yaml", Yaml::parse("listne: [x]\n")};
  try {
    steerdns::common::require_map_keys(map, map.root, "server", {"listen", "workers"});
    FAIL("accepted");
  } catch (const LoadError& e) {
    CHECK(std::string(e.what()) == "m.yaml:1: unknown key 'listne' in server; did you mean 'listen'?");
  }
}
