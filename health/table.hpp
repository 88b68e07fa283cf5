// The health table: what answer() reads of health, and nothing else.
//
// An immutable snapshot, published by the prober (health/prober.hpp) through
// common::Publication and pinned by any number of workers once per receive
// batch. Slots are dense indices handed out per VIP and per region when a
// world's checks are applied (health::Registry::apply).
#pragma once

#include <cstdint>
#include <vector>

namespace steerdns::health {

// Per VIP slot and per region slot, a byte of flags. A slot the table does
// not hold reads as up and not overridden: that is how a world built without
// a prober (`steerdns check`, `explain`, tests) reads, with every slot
// kNoSlot, and how a world published before its table reads.
struct Table {
  static constexpr std::uint8_t kUp = 1;              // probed up, or overridden up
  static constexpr std::uint8_t kOverriddenDown = 2;  // an operator said down: never serve it
  static constexpr std::uint8_t kOverriddenUp = 4;    // an operator said up
  static constexpr std::uint32_t kNoSlot = UINT32_MAX;

  std::vector<std::uint8_t> vips;
  std::vector<std::uint8_t> regions;

  std::uint8_t vip(std::uint32_t slot) const noexcept { return slot < vips.size() ? vips[slot] : kUp; }
  std::uint8_t region(std::uint32_t slot) const noexcept { return slot < regions.size() ? regions[slot] : 0; }

  // The one rule for a VIP in an answer: up and not overridden down.
  static bool serves_flags(std::uint8_t flags) noexcept {
    return (flags & kUp) && !(flags & kOverriddenDown);
  }
  bool serves(std::uint32_t slot) const noexcept { return serves_flags(vip(slot)); }
  bool overridden_down(std::uint32_t slot) const noexcept { return (vip(slot) & kOverriddenDown) != 0; }
};

}  // namespace steerdns::health
