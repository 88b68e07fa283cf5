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

// NAME: a domain name; CLIENT: "ADDRESS[/PREFIX]", sent as EDNS Client
// Subnet. Without HEALTH (the CLI), every VIP counts as up.
std::string explain(const World& world, const std::string& name, const std::string& client,
                    const ExplainHealth* health = nullptr);

}  // namespace steerdns::server
