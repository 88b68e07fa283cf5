// health: the prober. One thread with its own libuv loop drives libcurl's
// multi interface for every check (http, https, tcp), applies rise/fall,
// watches the operators' state file, and publishes a new health Table on
// every change.
//
// Thread contract: construct, apply() and destroy on one thread (the main
// thread); table() may be pinned from any thread. Every probe is bounded by
// its timeout and reads at most kMaxBody, so no backend can delay another
// probe, and nothing here ever blocks a DNS worker.
#pragma once

#include <memory>
#include <string>

#include "common/publication.hpp"
#include "health/registry.hpp"

namespace steerdns::health {

class Monitor {
 public:
  // STATE_FILE holds the operators' overrides (see load_overrides); empty:
  // none. Its folder must exist: it is watched, and an edit applies at once.
  // Throws common::LoadError when the file is malformed.
  explicit Monitor(std::string state_file);
  ~Monitor();
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  // Start-up and reload: applies PLAN (Registry::apply: unchanged checks
  // keep their state, new ones start, removed ones stop), waits until every
  // new check has a first result (bounded by its timeout), publishes the
  // table and returns the slots. The world built with these slots must be
  // published after this returns.
  Slots apply(const Plan& plan);

  const common::Publication<Table>& table() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace steerdns::health
