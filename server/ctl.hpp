// `steerdns ctl`: a client of the admin API (server/admin.hpp) for
// operators at a shell. Prints to stdout, errors to stderr.
#pragma once

#include <string>
#include <vector>

namespace steerdns::server {

struct CtlOptions {
  std::string config_path;  // optional: the admin address and token come from it
  std::string admin;        // HOST:PORT; overrides the config's
  std::string token_file;   // overrides the config's
  bool json = false;        // print the API's JSON as is
  bool no_ecs = false;      // explain: the client's resolver sends no ECS
  std::string reason;       // drain: why (kept with the override, shown in status)
  std::string by;           // drain: who; default the login name running ctl
  std::string command;      // status, explain, drain, undrain, reload
  std::vector<std::string> arguments;
};

// Returns the exit status: 0 done, 1 the API refused or failed, 2 unreachable.
int run_ctl(const CtlOptions& options);

}  // namespace steerdns::server
