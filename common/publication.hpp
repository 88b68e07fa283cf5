// One publication mechanism for immutable snapshots (the world and the
// health table): a writer publishes a new shared_ptr; each reader
// thread holds a Pin that re-fetches only when the generation moved. The
// mutex is taken by readers only right after a publication, never per query.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace steerdns::common {

template <class T>
class Publication {
 public:
  explicit Publication(std::shared_ptr<const T> first) : current_(std::move(first)) {}

  // Any thread. The old snapshot is retired: it lives on until the last pin
  // lets go of it, and is then destroyed by collect(), never by a reader.
  void publish(std::shared_ptr<const T> next) {
    {
      std::lock_guard lock(mutex_);
      retired_.push_back(std::exchange(current_, std::move(next)));
    }
    generation_.fetch_add(1, std::memory_order_release);
    collect();
  }

  // Destroys, on the calling thread, the retired snapshots no pin holds any
  // more, so that a worker never pays for freeing a large world (tens of
  // milliseconds for 100,000 records) in the middle of its queries. Called
  // by publish() and, for snapshots still pinned then, by the writer from
  // time to time. Returns how many are still pinned.
  std::size_t collect() {
    std::vector<std::shared_ptr<const T>> unused;
    std::size_t pinned = 0;
    {
      std::lock_guard lock(mutex_);
      auto keep = retired_.begin();
      for (auto& r : retired_) {
        // Only pins copy from current_, never from retired_: a count of one
        // (ours) cannot rise again.
        if (r.use_count() == 1) unused.push_back(std::move(r));
        else *keep++ = std::move(r);
      }
      retired_.erase(keep, retired_.end());
      pinned = retired_.size();
    }
    return pinned;  // UNUSED is destroyed here, outside the lock
  }

  std::shared_ptr<const T> load() const {
    std::lock_guard lock(mutex_);
    return current_;
  }

  std::uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const T> current_;
  std::vector<std::shared_ptr<const T>> retired_;
  std::atomic<std::uint64_t> generation_{0};
};

// A reader's hold on the current snapshot. One per thread; not shared.
template <class T>
class Pin {
 public:
  explicit Pin(const Publication<T>& publication) : publication_(publication) {}

  // Call once per batch: an atomic load, plus a locked copy after a publication.
  const T& refresh() {
    const std::uint64_t generation = publication_.generation();
    if (generation != generation_ || !held_) {
      held_ = publication_.load();
      generation_ = generation;
    }
    return *held_;
  }

 private:
  const Publication<T>& publication_;
  std::shared_ptr<const T> held_;
  std::uint64_t generation_ = 0;
};

}  // namespace steerdns::common
