// Explanations: why a client gets the answer it gets. Runs the serving code
// (answer() on the given world) and adds what the geo compilation decided.
// Load-time/tool path: allocates, may throw std::invalid_argument on bad input.
#pragma once

#include <string>

#include "server/world.hpp"

namespace steerdns::server {

// NAME: a domain name; CLIENT: "ADDRESS[/PREFIX]", sent as EDNS Client Subnet.
std::string explain(const World& world, const std::string& name, const std::string& client);

}  // namespace steerdns::server
