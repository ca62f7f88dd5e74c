// The RESP command table's lookups: by name (case-insensitive, as Redis and
// strncasecmp match) and by id.
#include <doctest/doctest.h>

#include <strings.h>

#include <string>
#include <string_view>

#include "daemon/resp/resp_commands.h"

namespace kvd::daemon {
namespace {

// What FindRespCommand must agree with: a scan of the table with strncasecmp.
const RespCommandDef* Reference(std::string_view name) {
  for (const RespCommandDef& d : RespCommands()) {
    if (d.name.size() == name.size() && strncasecmp(d.name.data(), name.data(), name.size()) == 0) return &d;
  }
  return nullptr;
}

TEST_CASE("every command is found by its name in any case, and by its id") {
  for (const RespCommandDef& d : RespCommands()) {
    std::string upper(d.name), mixed(d.name);
    for (size_t i = 0; i < upper.size(); ++i) {
      upper[i] = static_cast<char>(upper[i] - 'a' + 'A');
      if (i % 2 == 0) mixed[i] = upper[i];
    }
    CHECK(FindRespCommand(d.name) == &d);
    CHECK(FindRespCommand(upper) == &d);
    CHECK(FindRespCommand(mixed) == &d);
    CHECK(&RespCommandOf(d.id) == &d);
  }
  CHECK(FindRespCommand("GET")->id == RespCmd::kGet);
  CHECK(FindRespCommand("set")->id == RespCmd::kSet);
}

TEST_CASE("a name that differs in any one byte, or in length, is another command or none") {
  size_t checked = 0;
  for (const RespCommandDef& d : RespCommands()) {
    for (size_t i = 0; i < d.name.size(); ++i) {
      for (int b = 0; b < 256; ++b) {
        std::string name(d.name);
        name[i] = static_cast<char>(b);
        CHECK_MESSAGE(FindRespCommand(name) == Reference(name), name);
        ++checked;
      }
    }
    const std::string longer = std::string(d.name) + "x";
    CHECK(FindRespCommand(longer) == Reference(longer));
    CHECK(FindRespCommand(std::string(d.name) + '\0') == nullptr);
    CHECK(FindRespCommand(d.name.substr(0, d.name.size() - 1)) == Reference(d.name.substr(0, d.name.size() - 1)));
  }
  CHECK(checked > 20 * 256);
  CHECK(FindRespCommand("") == nullptr);
  CHECK(FindRespCommand("lastsavex") == nullptr);
  CHECK(FindRespCommand(std::string(100, 'a')) == nullptr);
}

TEST_CASE("an id outside the table falls back to the first row") {
  CHECK(&RespCommandOf(RespCmd::kNone) == &RespCommands()[0]);
}

}  // namespace
}  // namespace kvd::daemon
