// common::Publication: snapshots published by one thread, pinned by readers,
// and freed by the writer, never by a reader.
#include <doctest/doctest.h>

#include <thread>

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
