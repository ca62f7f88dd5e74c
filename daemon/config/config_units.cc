#include "config/config_units.h"

#include <charconv>
#include <limits>

#include "config/config.h"

namespace kvd::daemon {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

namespace {

// Splits "64 MiB" into 64 and "MiB". The number is decimal digits only: no
// sign, no fraction, no exponent, so "1.5s" and "-1" are rejected.
bool SplitNumber(std::string_view text, uint64_t* number, std::string_view* unit) {
  text = Trim(text);
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + digits, *number);
  if (ec != std::errc() || ptr != text.data() + digits) return false;
  *unit = Trim(text.substr(digits));
  return true;
}

struct Unit {
  std::string_view name;
  uint64_t factor;
};

constexpr Unit kDurationUnits[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000},
};
constexpr Unit kSizeUnits[] = {
    {"", 1},
    {"B", 1},
    {"KiB", 1ull << 10},
    {"MiB", 1ull << 20},
    {"GiB", 1ull << 30},
    {"TiB", 1ull << 40},
};

}  // namespace

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  const std::string shown(text);
  uint64_t n = 0;
  std::string_view unit;
  if (!SplitNumber(text, &n, &unit)) {
    return Status::InvalidArgument("expected a duration such as \"250ms\", \"5s\", \"5m\" or \"1h\", got \"" +
                                   shown + "\"");
  }
  if (unit.empty()) {
    if (n == 0) return std::chrono::milliseconds(0);
    return Status::InvalidArgument("a duration needs a unit (ms, s, m, h, d), got \"" + shown + "\"");
  }
  if (unit == "us" || unit == "ns" || unit == "µs") {
    return Status::InvalidArgument("durations have millisecond resolution, got \"" + shown + "\"");
  }
  for (const Unit& u : kDurationUnits) {
    if (unit != u.name) continue;
    // milliseconds::rep is signed 64-bit.
    if (n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / u.factor) {
      return Status::InvalidArgument("duration too large: \"" + shown + "\"");
    }
    return std::chrono::milliseconds(static_cast<int64_t>(n * u.factor));
  }
  return Status::InvalidArgument("unknown duration unit \"" + std::string(unit) +
                                 "\" (use ms, s, m, h or d), got \"" + shown + "\"");
}

Result<uint64_t> ParseSize(std::string_view text) {
  const std::string shown(text);
  uint64_t n = 0;
  std::string_view unit;
  if (!SplitNumber(text, &n, &unit)) {
    return Status::InvalidArgument("expected a size such as \"4096\", \"64KiB\", \"64MiB\" or \"1GiB\", got \"" +
                                   shown + "\"");
  }
  for (const Unit& u : kSizeUnits) {
    if (unit != u.name) continue;
    if (n > std::numeric_limits<uint64_t>::max() / u.factor) {
      return Status::InvalidArgument("size too large: \"" + shown + "\"");
    }
    return n * u.factor;
  }
  // "MB" is ambiguous (10^6 or 2^20 depending on who you ask): refuse it.
  return Status::InvalidArgument("unknown size unit \"" + std::string(unit) +
                                 "\" (use B, KiB, MiB, GiB or TiB), got \"" + shown + "\"");
}

std::string FormatDuration(std::chrono::milliseconds d) {
  const int64_t ms = d.count();
  if (ms == 0) return "0";
  for (int i = static_cast<int>(std::size(kDurationUnits)) - 1; i >= 0; --i) {
    const auto f = static_cast<int64_t>(kDurationUnits[i].factor);
    if (ms % f == 0) return std::to_string(ms / f) + std::string(kDurationUnits[i].name);
  }
  return std::to_string(ms) + "ms";
}

std::string FormatSize(uint64_t bytes) {
  if (bytes == 0) return "0";
  for (int i = static_cast<int>(std::size(kSizeUnits)) - 1; i >= 2; --i) {
    if (bytes % kSizeUnits[i].factor == 0) {
      return std::to_string(bytes / kSizeUnits[i].factor) + std::string(kSizeUnits[i].name);
    }
  }
  return std::to_string(bytes);
}

std::string FormatMode(uint32_t mode) {
  std::string s = "0000";
  for (int i = 3; i >= 1; --i) {
    s[static_cast<size_t>(i)] = static_cast<char>('0' + (mode & 7));
    mode >>= 3;
  }
  return s;
}

Result<uint32_t> ParseMode(std::string_view text) {
  std::string_view t = Trim(text);
  if (t.substr(0, 2) == "0o") t.remove_prefix(2);
  uint32_t mode = 0;
  if (t.empty() || t.size() > 4) {
    return Status::InvalidArgument("expected an octal file mode such as \"0660\", got \"" + std::string(text) + "\"");
  }
  for (char ch : t) {
    if (ch < '0' || ch > '7') {
      return Status::InvalidArgument("expected an octal file mode such as \"0660\", got \"" + std::string(text) +
                                     "\"");
    }
    mode = mode * 8 + static_cast<uint32_t>(ch - '0');
  }
  if (mode > 0777) {
    return Status::InvalidArgument("file mode \"" + std::string(text) + "\" is above 0777");
  }
  return mode;
}

Status ParseHostPort(std::string_view listen, std::string* host, uint16_t* port) {
  if (listen.size() > 255 || listen.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("expected HOST:PORT of at most 255 bytes");
  }
  const size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Status::InvalidArgument("expected HOST:PORT such as \"127.0.0.1:9380\", got \"" + std::string(listen) + "\"");
  }
  std::string_view h = listen.substr(0, colon);
  const std::string_view p = listen.substr(colon + 1);
  if (h.front() == '[') {
    if (h.size() < 3 || h.back() != ']') return Status::InvalidArgument("an IPv6 host needs brackets: \"[::1]:9380\"");
  } else if (h.find(':') != std::string_view::npos) {
    return Status::InvalidArgument("an IPv6 host needs brackets: \"[::1]:9380\"");
  }
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
  if (p.empty() || ec != std::errc() || ptr != p.data() + p.size() || value > 65535) {
    return Status::InvalidArgument("the port must be a number from 0 to 65535, got \"" + std::string(p) + "\"");
  }
  if (host != nullptr) *host = std::string(h);
  if (port != nullptr) *port = static_cast<uint16_t>(value);
  return Status::Ok();
}

}  // namespace kvd::daemon
