// Explanations: why a client gets the answer it gets. Runs the serving code
// (answer() on the given world) and adds what the geo compilation decided.
// Load-time/tool path: allocates, may throw std::invalid_argument on bad input.
#pragma once

#include <string>

#include "health/prober.hpp"
#include "server/world.hpp"

namespace steerdns::server {

// The health a running server answers with (the admin API's /explain).
struct ExplainHealth {
  const health::Table& table;
  const health::Status& status;
};

// How the client reaches us: through a resolver that sends EDNS Client
// Subnet, or through one that does not (the client is placed by the
// resolver's address, CLIENT then being that address).
enum class Placed : std::uint8_t { by_ecs, by_resolver };

// NAME: a domain name in one of WORLD's zones; CLIENT: "ADDRESS[/PREFIX]"
// (by_resolver: one address). Without HEALTH (the CLI), every VIP counts as
// up. Throws std::invalid_argument for a bad name or client, and for a name
// outside every zone (the server would answer REFUSED).
std::string explain(const World& world, const std::string& name, const std::string& client,
                    const ExplainHealth* health = nullptr, Placed placed = Placed::by_ecs);

// The explanation as JSON (the admin API's /explain?format=json, `ctl
// explain --json`): each "label:" line of TEXT becomes a member of that name;
// "health" and "answer", which may take several lines, are arrays of them.
std::string explain_json(const std::string& text);

}  // namespace steerdns::server
