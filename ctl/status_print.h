// Human-readable text from the server's STATUS and CONFIG GET JSON.
//
// kvctl does not hard-code the STATUS schema (the daemon owns it): top-level
// scalars go in a first "server" group, every top-level object becomes a group
// of "  key: value" lines (nested objects flattened as a.b), arrays of scalars
// are joined with ", ". Numbers whose key ends in _bytes or _s / _ms / _us /
// _seconds get a human rendering beside the raw value.
#pragma once

#include <string>
#include <string_view>

#include "kvd/status.h"

namespace kvctl {

// kInvalidArgument if json_text is not a JSON object.
kvd::Result<std::string> RenderStatusText(std::string_view json_text);

// STATUS JSON re-serialised compactly as one line (for --json and the REPL).
kvd::Result<std::string> CompactJson(std::string_view json_text);

// CONFIG GET's {name: value} as "name = value" lines (sorted as received).
kvd::Result<std::string> RenderConfigText(std::string_view json_text);

// One value of CONFIG GET's object as plain text (strings unquoted).
kvd::Result<std::string> ConfigValueText(std::string_view json_text, std::string_view name);

}  // namespace kvctl
