#include "common/yaml.hpp"

#include <yaml.h>

#include <cstring>
#include <unordered_map>

namespace steerdns::common {

enum class YamlKind : std::uint8_t { null, scalar, sequence, map };

// Nodes in document order; a collection's children are a run of `kids`
// (for a map: key, value, key, value...).
struct YamlTree {
  struct Node {
    YamlKind kind;
    std::uint32_t line;
    std::uint32_t first = 0, count = 0;  // run of kids; count = kids in it
    std::string text;
  };
  std::vector<Node> nodes;
  std::vector<std::uint32_t> kids;
};

namespace {

const std::string kEmpty;

bool plain_null(const yaml_event_t& e) {
  if (e.data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return false;
  const std::string_view v(reinterpret_cast<const char*>(e.data.scalar.value), e.data.scalar.length);
  return v.empty() || v == "~" || v == "null" || v == "Null" || v == "NULL";
}

// libyaml's parser, freed on every path.
struct Parser {
  yaml_parser_t p;
  Parser() {
    if (!yaml_parser_initialize(&p)) throw std::bad_alloc();
  }
  ~Parser() { yaml_parser_delete(&p); }
};
struct Event {
  yaml_event_t e{};
  ~Event() { yaml_event_delete(&e); }
};

std::string syntax_reason(const yaml_parser_t& p) {
  std::string reason = p.problem ? p.problem : "malformed document";
  if (p.context) reason = std::string(p.context) + ": " + reason;
  return reason;
}

}  // namespace

Yaml Yaml::parse(std::string_view text) {
  auto tree = std::make_shared<YamlTree>();
  Parser parser;
  yaml_parser_set_input_string(&parser.p, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  struct Open {
    std::uint32_t node;
    std::vector<std::uint32_t> kids;
    std::unordered_map<std::string, std::uint32_t> keys;  // a map's keys so far, to their lines
  };
  std::vector<Open> open;  // collections being read, innermost last
  std::unordered_map<std::string, std::uint32_t> anchors;
  bool have_root = false, done = false;
  std::uint32_t root = 0;
  int documents = 0;

  auto add = [&](YamlKind kind, const yaml_event_t& e, std::string text_value) -> std::uint32_t {
    const auto index = static_cast<std::uint32_t>(tree->nodes.size());
    tree->nodes.push_back(
        {kind, static_cast<std::uint32_t>(e.start_mark.line + 1), 0, 0, std::move(text_value)});
    return index;
  };
  auto anchor = [&](const yaml_char_t* name, std::uint32_t index) {
    if (name) anchors[reinterpret_cast<const char*>(name)] = index;
  };
  // Attaches a finished node to its parent (or makes it the root). A map's
  // keys must be unique scalars.
  auto attach = [&](std::uint32_t index) {
    if (open.empty()) {
      root = index;
      have_root = true;
      return;
    }
    Open& parent = open.back();
    const YamlTree::Node& p = tree->nodes[parent.node];
    if (p.kind == YamlKind::map && parent.kids.size() % 2 == 0) {
      const YamlTree::Node& key = tree->nodes[index];
      if (key.kind == YamlKind::sequence || key.kind == YamlKind::map)
        throw YamlSyntaxError(static_cast<int>(key.line), "a map key must be a scalar");
      const auto [seen, fresh] = parent.keys.emplace(key.text, key.line);
      if (!fresh)
        throw YamlSyntaxError(static_cast<int>(key.line), "duplicate key '" + key.text + "' (first on line " +
                                                              std::to_string(seen->second) + ")");
    }
    parent.kids.push_back(index);
  };
  while (!done) {
    Event ev;
    if (!yaml_parser_parse(&parser.p, &ev.e))
      throw YamlSyntaxError(static_cast<int>(parser.p.problem_mark.line + 1), syntax_reason(parser.p));
    const yaml_event_t& e = ev.e;
    switch (e.type) {
      case YAML_STREAM_END_EVENT: done = true; break;
      case YAML_DOCUMENT_START_EVENT:
        if (++documents > 1)
          throw YamlSyntaxError(static_cast<int>(e.start_mark.line + 1), "only one YAML document per file");
        break;
      case YAML_SCALAR_EVENT: {
        const bool null = plain_null(e);
        const auto i = add(null ? YamlKind::null : YamlKind::scalar, e,
                           null ? std::string()
                                : std::string(reinterpret_cast<const char*>(e.data.scalar.value),
                                              e.data.scalar.length));
        anchor(e.data.scalar.anchor, i);
        attach(i);
        break;
      }
      case YAML_ALIAS_EVENT: {
        const auto it = anchors.find(reinterpret_cast<const char*>(e.data.alias.anchor));
        if (it == anchors.end())
          throw YamlSyntaxError(static_cast<int>(e.start_mark.line + 1),
                                std::string("unknown alias '*") +
                                    reinterpret_cast<const char*>(e.data.alias.anchor) + "'");
        attach(it->second);
        break;
      }
      case YAML_SEQUENCE_START_EVENT:
      case YAML_MAPPING_START_EVENT: {
        const bool map = e.type == YAML_MAPPING_START_EVENT;
        const auto i = add(map ? YamlKind::map : YamlKind::sequence, e, {});
        anchor(map ? e.data.mapping_start.anchor : e.data.sequence_start.anchor, i);
        open.push_back({i, {}, {}});
        break;
      }
      case YAML_SEQUENCE_END_EVENT:
      case YAML_MAPPING_END_EVENT: {
        Open done_node = std::move(open.back());
        open.pop_back();
        YamlTree::Node& n = tree->nodes[done_node.node];
        n.first = static_cast<std::uint32_t>(tree->kids.size());
        n.count = static_cast<std::uint32_t>(done_node.kids.size());
        tree->kids.insert(tree->kids.end(), done_node.kids.begin(), done_node.kids.end());
        attach(done_node.node);
        break;
      }
      default: break;
    }
  }
  if (!have_root) return {};  // an empty document
  return Yaml(std::move(tree), root);
}

bool Yaml::is_null() const noexcept { return tree_ && tree_->nodes[index_].kind == YamlKind::null; }
bool Yaml::is_scalar() const noexcept { return tree_ && tree_->nodes[index_].kind == YamlKind::scalar; }
bool Yaml::is_sequence() const noexcept { return tree_ && tree_->nodes[index_].kind == YamlKind::sequence; }
bool Yaml::is_map() const noexcept { return tree_ && tree_->nodes[index_].kind == YamlKind::map; }

const std::string& Yaml::scalar() const noexcept { return tree_ ? tree_->nodes[index_].text : kEmpty; }

std::size_t Yaml::size() const noexcept {
  if (!tree_) return 0;
  const auto& n = tree_->nodes[index_];
  return n.kind == YamlKind::map ? n.count / 2 : n.count;
}

int Yaml::line() const noexcept { return tree_ ? static_cast<int>(tree_->nodes[index_].line) : 0; }

Yaml Yaml::operator[](std::string_view key) const {
  if (!is_map()) return {};
  const auto& n = tree_->nodes[index_];
  for (std::uint32_t k = 0; k < n.count; k += 2) {
    const auto& candidate = tree_->nodes[tree_->kids[n.first + k]];
    if (candidate.kind == YamlKind::scalar && candidate.text == key)
      return Yaml(tree_, tree_->kids[n.first + k + 1]);
  }
  return {};
}

Yaml Yaml::operator[](std::size_t i) const {
  if (!is_sequence() || i >= size()) return {};
  return Yaml(tree_, tree_->kids[tree_->nodes[index_].first + i]);
}

YamlEntry Yaml::Iterator::operator*() const {
  const auto& tree = node_->tree_;
  const auto& n = tree->nodes[node_->index_];
  YamlEntry entry;
  if (n.kind == YamlKind::map) {
    entry.first = Yaml(tree, tree->kids[n.first + 2 * at_]);
    entry.second = Yaml(tree, tree->kids[n.first + 2 * at_ + 1]);
  } else {
    entry.first = entry.second = Yaml(tree, tree->kids[n.first + at_]);
  }
  static_cast<Yaml&>(entry) = entry.second;
  return entry;
}

namespace {
int append_output(void* out, unsigned char* buffer, size_t size) {
  static_cast<std::string*>(out)->append(reinterpret_cast<const char*>(buffer), size);
  return 1;
}
}  // namespace

std::string emit_yaml(const std::vector<YamlSection>& sections) {
  std::string out;
  yaml_emitter_t emitter;
  if (!yaml_emitter_initialize(&emitter)) throw std::bad_alloc();
  yaml_emitter_set_output(&emitter, append_output, &out);
  yaml_emitter_set_unicode(&emitter, 1);
  yaml_event_t e;
  bool ok = true;
  auto emit = [&](bool made) { ok = ok && made && yaml_emitter_emit(&emitter, &e); };
  auto scalar = [&](const std::string& text) {
    auto* value = reinterpret_cast<yaml_char_t*>(const_cast<char*>(text.c_str()));
    emit(yaml_scalar_event_initialize(&e, nullptr, nullptr, value, static_cast<int>(text.size()), 1, 1,
                                      YAML_ANY_SCALAR_STYLE));
  };
  emit(yaml_stream_start_event_initialize(&e, YAML_UTF8_ENCODING));
  emit(yaml_document_start_event_initialize(&e, nullptr, nullptr, nullptr, 1));
  emit(yaml_mapping_start_event_initialize(&e, nullptr, nullptr, 1, YAML_BLOCK_MAPPING_STYLE));
  for (const auto& [name, entries] : sections) {
    scalar(name);
    emit(yaml_mapping_start_event_initialize(&e, nullptr, nullptr, 1,
                                             entries.empty() ? YAML_FLOW_MAPPING_STYLE
                                                             : YAML_BLOCK_MAPPING_STYLE));
    for (const auto& [key, value] : entries) {
      scalar(key);
      if (value.fields.empty()) {
        scalar(value.text);
        continue;
      }
      emit(yaml_mapping_start_event_initialize(&e, nullptr, nullptr, 1, YAML_FLOW_MAPPING_STYLE));
      for (const auto& [field, text] : value.fields) {
        scalar(field);
        scalar(text);
      }
      emit(yaml_mapping_end_event_initialize(&e));
    }
    emit(yaml_mapping_end_event_initialize(&e));
  }
  emit(yaml_mapping_end_event_initialize(&e));
  emit(yaml_document_end_event_initialize(&e, 1));
  emit(yaml_stream_end_event_initialize(&e));
  yaml_emitter_delete(&emitter);
  if (!ok) throw std::runtime_error("cannot write YAML");
  return out;
}

}  // namespace steerdns::common
