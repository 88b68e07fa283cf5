#include "zones/name.hpp"

#include "common/ldns.hpp"

namespace steerdns::zones {

std::optional<WireName> name_from_text(std::string_view text) {
  const std::string copy(text);
  ldns_rdf* rdf = ldns_dname_new_frm_str(copy.c_str());
  if (rdf == nullptr) return std::nullopt;
  ldns_dname2canonical(rdf);
  WireName wire(reinterpret_cast<const char*>(ldns_rdf_data(rdf)), ldns_rdf_size(rdf));
  ldns_rdf_deep_free(rdf);
  return wire;
}

std::string name_to_text(std::string_view wire) {
  if (wire.size() <= 1) return ".";
  std::string out;
  for (std::size_t i = 0; i < wire.size() && wire[i] != 0;) {
    const auto len = static_cast<std::uint8_t>(wire[i]);
    for (std::size_t j = i + 1; j <= i + len && j < wire.size(); ++j) {
      const auto c = static_cast<unsigned char>(wire[j]);
      if (c == '.' || c == '\\' || c == '"' || c == '(' || c == ')' || c == ';' || c == ' ') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c < 0x21 || c > 0x7e) {
        char buf[5];
        std::snprintf(buf, sizeof buf, "\\%03u", c);
        out += buf;
      } else {
        out += static_cast<char>(c);
      }
    }
    out += '.';
    i += 1 + len;
  }
  return out;
}

}  // namespace steerdns::zones
