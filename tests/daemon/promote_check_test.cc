// CheckPromoteSafe: when a replica may lack acknowledged writes, promote
// refuses and says why; --force is the way past it.
#include <doctest/doctest.h>

#include "repl/promote_check.h"

namespace kvd::daemon::repl {
namespace {

PromoteFacts Healthy() {
  PromoteFacts f;
  f.heard_primary = true;
  f.link_up = false;  // the primary died: the link closed
  f.own_durable = 100;
  f.primary_durable = 100;
  return f;
}

TEST_CASE("promote check: a replica that has what the primary last reported durable may be promoted") {
  CHECK(CheckPromoteSafe(Healthy()).ok());
  PromoteFacts ahead = Healthy();
  ahead.own_durable = 120;  // records streamed before the primary's own fdatasync
  CHECK(CheckPromoteSafe(ahead).ok());
  PromoteFacts talking = Healthy();
  talking.link_up = true;
  talking.silent_for = std::chrono::milliseconds(200);  // one heartbeat ago
  CHECK(CheckPromoteSafe(talking).ok());
}

TEST_CASE("promote check: refusals name the reason and the override") {
  struct Row {
    const char* what;
    PromoteFacts facts;
    const char* says;
  };
  PromoteFacts never = Healthy();
  never.heard_primary = false;
  PromoteFacts behind = Healthy();
  behind.own_durable = 90;
  PromoteFacts silent = Healthy();
  silent.link_up = true;
  silent.silent_for = std::chrono::milliseconds(1500);
  const Row rows[] = {
      {"never heard from a primary", never, "has not heard from a primary"},
      {"durable LSN behind the primary's", behind, "durable LSN 90 is behind the primary's durable LSN 100"},
      {"link up, primary silent", silent, "nothing was heard for 1500 ms"},
  };
  for (const Row& r : rows) {
    CAPTURE(r.what);
    Status st = CheckPromoteSafe(r.facts);
    REQUIRE_FALSE(st.ok());
    CHECK(st.code() == Code::kInvalidArgument);
    CHECK(st.message().find(r.says) != std::string::npos);
    CHECK(st.message().find("--force") != std::string::npos);
  }
  CHECK(CheckPromoteSafe(behind).message().find("up to 10 acknowledged writes") != std::string::npos);
}

}  // namespace
}  // namespace kvd::daemon::repl
