#include "repl/promote_check.h"

#include <spdlog/fmt/fmt.h>

namespace kvd::daemon::repl {

Status CheckPromoteSafe(const PromoteFacts& f) {
  auto refuse = [](const std::string& why) {
    return Status::InvalidArgument("promote refused: " + why + " (kvctl promote --force overrides this)");
  };
  if (!f.heard_primary) {
    return refuse("this replica has not heard from a primary since it started, so it cannot tell whether it has "
                  "every acknowledged write");
  }
  if (f.own_durable < f.primary_durable) {
    return refuse(fmt::format("this replica's durable LSN {} is behind the primary's durable LSN {} as last "
                              "reported: up to {} acknowledged writes may be missing here",
                              f.own_durable, f.primary_durable, f.primary_durable - f.own_durable));
  }
  if (f.link_up && f.silent_for > kPromoteSilence) {
    return refuse(fmt::format("the link to the primary is up but nothing was heard for {} ms: the primary may "
                              "still be acknowledging writes this replica does not have",
                              f.silent_for.count()));
  }
  return Status::Ok();
}

}  // namespace kvd::daemon::repl
