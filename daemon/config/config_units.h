// Text forms of durations, sizes and file modes as kvd.toml writes them.
// Parsing lives in config.h (ParseDuration, ParseSize); these are the
// inverses, used by RenderConfig and CONFIG GET so that what kvd prints
// parses back to the same value.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "kvd/status.h"

namespace kvd::daemon {

// The largest unit that divides exactly: "0", "250ms", "5s", "5m", "1h".
// s without leading and trailing blanks (spaces, tabs).
std::string_view Trim(std::string_view s);

std::string FormatDuration(std::chrono::milliseconds d);
// The largest binary unit that divides exactly: "0", "4096", "64KiB", "1GiB".
std::string FormatSize(uint64_t bytes);
// "0660".
std::string FormatMode(uint32_t mode);
// "0660", "660", "0o660": octal digits only, at most 0777.
Result<uint32_t> ParseMode(std::string_view text);
// "HOST:PORT" ("127.0.0.1:9380", "[::1]:9380", port 0 = any free one);
// kInvalidArgument saying why otherwise. host/port may be null.
Status ParseHostPort(std::string_view text, std::string* host, uint16_t* port);

}  // namespace kvd::daemon
