// Probe results and instants for tests that drive health::Registry by hand
// (health/ and server/ tests): no prober, no clock.
#pragma once

#include <chrono>

#include "health/registry.hpp"

namespace steerdns::test {

inline const health::Result kOk{true, health::Reason::none, {}};
inline const health::Result kRefused{false, health::Reason::refused, "connection refused"};

inline health::TimePoint at(int seconds) { return health::TimePoint{} + std::chrono::seconds(seconds); }

}  // namespace steerdns::test
