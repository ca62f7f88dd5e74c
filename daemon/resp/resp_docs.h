// COMMAND, COMMAND COUNT / LIST / INFO / DOCS, answered from the command
// table (resp_commands.h): enough for redis-cli's hints and for client
// libraries that look commands up.
#pragma once

#include <span>
#include <string_view>

#include "kvd/resp.h"

namespace kvd::daemon {

// args: what follows COMMAND (empty, or a subcommand and its arguments).
void WriteCommandReply(resp::ReplyWriter& w, std::span<const std::string_view> args);

}  // namespace kvd::daemon
