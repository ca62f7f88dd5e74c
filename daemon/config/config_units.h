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
std::string FormatDuration(std::chrono::milliseconds d);
// The largest binary unit that divides exactly: "0", "4096", "64KiB", "1GiB".
std::string FormatSize(uint64_t bytes);
// "0660".
std::string FormatMode(uint32_t mode);
// "0660", "660", "0o660": octal digits only, at most 0777.
Result<uint32_t> ParseMode(std::string_view text);

}  // namespace kvd::daemon
