// Status codes: their numbers are wire protocol (docs/wire_protocol.md §3),
// and every code has its own name.
#include "kvd/status.h"

#include <doctest/doctest.h>

#include <set>
#include <string_view>

namespace kvd {
namespace {

TEST_CASE("the reversible write-fence codes have fixed numbers and names") {
  CHECK(static_cast<int>(Code::kNotPrimary) == 12);
  CHECK(static_cast<int>(Code::kFenced) == 13);
  CHECK(CodeName(Code::kNotPrimary) == "NotPrimary");
  CHECK(CodeName(Code::kFenced) == "Fenced");
  CHECK(Status::NotPrimary("role is replica").code() == Code::kNotPrimary);
  CHECK(Status::Fenced("epoch 7 > 6").ToString() == "Fenced: epoch 7 > 6");
  CHECK(static_cast<int>(Code::kTimedOut) == 14);
  CHECK(CodeName(Code::kTimedOut) == "TimedOut");
  CHECK(CodeName(static_cast<Code>(15)) == "Unknown");  // appended later: unknown to this build
}

TEST_CASE("every code has a distinct name") {
  std::set<std::string_view> names;
  for (int c = 0; c <= 14; ++c) {
    std::string_view n = CodeName(static_cast<Code>(c));
    CHECK_MESSAGE(n != "Unknown", c);
    names.insert(n);
  }
  CHECK(names.size() == 15);
}

}  // namespace
}  // namespace kvd
