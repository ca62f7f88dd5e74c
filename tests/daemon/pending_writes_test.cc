// PendingWrites: what a conditional write (RESP's SETNX, GETDEL, ...) sees of
// writes submitted but not yet applied, range deletes included.
#include <doctest/doctest.h>

#include "daemon/serve/pending_writes.h"

namespace kvd::daemon {
namespace {

bool Present(const PendingWrites& p, std::string_view key) {
  const PendingWrites::Entry* e = p.Find(key);
  REQUIRE(e != nullptr);
  return e->present;
}

TEST_CASE("pending writes: the latest write to a key wins, range deletes included") {
  PendingWrites p;
  p.Note(1, "user:1", "a");
  p.NoteRange(2, KeyRange{true, "user:", {}});
  p.Note(3, "user:2", "b");
  CHECK_FALSE(Present(p, "user:1"));   // deleted by the range after its PUT
  CHECK(Present(p, "user:2"));         // written after the range
  CHECK(p.Find("user:2")->value == "b");
  CHECK_FALSE(Present(p, "user:9"));   // only the range touches it
  CHECK(p.Find("other") == nullptr);   // outside the range: the State decides
  p.NoteRange(4, KeyRange{false, "a", "c"});
  CHECK_FALSE(Present(p, "b"));
  CHECK(p.Find("c") == nullptr);       // the end is exclusive

  p.Done(2);  // the first PUT and the prefix delete are applied
  CHECK(p.Find("user:1") == nullptr);
  CHECK(p.Find("user:9") == nullptr);
  CHECK(Present(p, "user:2"));
  p.Done(4);
  CHECK(p.empty());
}

}  // namespace
}  // namespace kvd::daemon
