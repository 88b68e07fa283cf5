// common::Publication: snapshots published by one thread, pinned by readers,
// and freed by the writer, never by a reader.
#include <doctest/doctest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "common/publication.hpp"

using steerdns::common::Pin;
using steerdns::common::Publication;

namespace {
// Records the thread that destroyed it.
struct Snapshot {
  int value;
  std::thread::id* destroyed_on;
  ~Snapshot() {
    if (destroyed_on) *destroyed_on = std::this_thread::get_id();
  }
};
}  // namespace

TEST_CASE("publication: a reader sees the new snapshot at its next refresh; the writer frees the old one") {
  std::thread::id first_freed_on, second_freed_on;
  Publication<Snapshot> publication(std::make_shared<const Snapshot>(1, nullptr));
  std::shared_ptr<const Snapshot> first = publication.load();
  const_cast<Snapshot&>(*first).destroyed_on = &first_freed_on;  // set before any reader runs
  first.reset();

  std::thread::id reader_id;
  Pin<Snapshot> pin(publication);
  std::thread reader([&] {
    reader_id = std::this_thread::get_id();
    CHECK(pin.refresh().value == 1);
  });
  reader.join();

  // Published while the reader still pins the first: nothing is freed yet.
  publication.publish(std::make_shared<const Snapshot>(2, &second_freed_on));
  CHECK(first_freed_on == std::thread::id());
  CHECK(publication.collect() == 1);

  // The reader's next batch moves to the new snapshot and lets go of the
  // old one, which only the writer's collect() destroys.
  std::thread again([&] { CHECK(pin.refresh().value == 2); });
  again.join();
  CHECK(first_freed_on == std::thread::id());
  CHECK(publication.collect() == 0);
  CHECK(first_freed_on == std::this_thread::get_id());
  CHECK(first_freed_on != reader_id);

  // A snapshot no reader pinned is freed by publish() itself.
  publication.publish(std::make_shared<const Snapshot>(3, nullptr));
  CHECK(second_freed_on == std::thread::id());  // still pinned
  CHECK(pin.refresh().value == 3);
  publication.collect();
  CHECK(second_freed_on == std::this_thread::get_id());
}

namespace {
// A snapshot readers check whole: every element equals value, so a reader
// that saw a half-built or freed snapshot fails (and ASan/TSan report it).
struct Big {
  int value;
  std::vector<int> copies;
  std::atomic<int>* destroyed_off_writer;
  std::thread::id writer;
  Big(int v, std::atomic<int>* off, std::thread::id w)
      : value(v), copies(256, v), destroyed_off_writer(off), writer(w) {}
  ~Big() {
    if (std::this_thread::get_id() != writer) destroyed_off_writer->fetch_add(1);
  }
};

// Polls COND until it holds or LIMIT passes; no fixed sleep.
template <class F>
bool eventually(F cond, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::yield();
  }
  return true;
}
}  // namespace

TEST_CASE("tsan: readers pin and read snapshots while the writer publishes and collects") {
  constexpr int kReaders = 3;
  constexpr int kPublications = 200;
  std::atomic<int> destroyed_off_writer{0};
  const std::thread::id writer = std::this_thread::get_id();
  Publication<Big> publication(std::make_shared<const Big>(0, &destroyed_off_writer, writer));

  std::atomic<bool> stop{false};
  std::array<std::atomic<int>, kReaders> seen{};  // the newest value each reader saw
  std::atomic<int> torn{0}, backwards{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r)
    readers.emplace_back([&, r] {
      Pin<Big> pin(publication);
      int last = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        const Big& b = pin.refresh();
        for (int c : b.copies)
          if (c != b.value) torn.fetch_add(1);
        if (b.value < last) backwards.fetch_add(1);
        last = b.value;
        seen[r].store(b.value, std::memory_order_relaxed);
      }
      // The pin dies here, on the reader, still holding a snapshot: the
      // writer's collect() frees it later.
    });

  for (int i = 1; i <= kPublications; ++i) {
    publication.publish(std::make_shared<const Big>(i, &destroyed_off_writer, writer));
    // Every tenth, wait until every reader moved on, so pins really overlap
    // publications and collections instead of the writer racing ahead.
    if (i % 10 == 0) {
      const bool caught_up = eventually([&] {
        for (auto& s : seen)
          if (s.load(std::memory_order_relaxed) < i) return false;
        return true;
      });
      CHECK(caught_up);  // not REQUIRE: the readers must be joined first
      if (!caught_up) break;
      publication.collect();
    }
  }
  stop = true;
  for (auto& t : readers) t.join();

  CHECK(torn == 0);
  CHECK(backwards == 0);
  CHECK(publication.collect() == 0);  // the readers' pins are gone
  CHECK(destroyed_off_writer == 0);   // never freed by a reader
  CHECK(publication.load()->value == kPublications);
}
