#include "format.h"

#include <cinttypes>
#include <cstdio>

namespace kvctl {
namespace {

constexpr char kHex[] = "0123456789abcdef";

void AppendHexEscape(std::string* out, unsigned char c) {
  out->push_back('\\');
  out->push_back('x');
  out->push_back(kHex[c >> 4]);
  out->push_back(kHex[c & 15]);
}

// Escapes s for one line of output: \\ \n \t \r, \xNN for other bytes
// outside 0x20..0x7e, and \" too when the result goes between quotes.
void AppendEscaped(std::string* out, std::string_view s, bool escape_quote) {
  out->reserve(out->size() + s.size());
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        if (escape_quote) {
          *out += "\\\"";
        } else {
          out->push_back(ch);
        }
        break;
      case '\\': *out += "\\\\"; break;
      case '\n': *out += "\\n"; break;
      case '\t': *out += "\\t"; break;
      case '\r': *out += "\\r"; break;
      default:
        if (c >= 0x20 && c <= 0x7e) {
          out->push_back(ch);
        } else {
          AppendHexEscape(out, c);
        }
    }
  }
}

}  // namespace

bool NeedsQuoting(std::string_view s) {
  if (s.empty() || s.front() == '(') return true;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') return true;
  }
  return false;
}

std::string Quote(std::string_view s) {
  std::string out = "\"";
  AppendEscaped(&out, s, /*escape_quote=*/true);
  out.push_back('"');
  return out;
}

std::string FormatToken(std::string_view s) { return NeedsQuoting(s) ? Quote(s) : std::string(s); }

std::string EscapeForLine(std::string_view s) {
  std::string out;
  AppendEscaped(&out, s, /*escape_quote=*/false);
  return out;
}

namespace {

// Length of the valid UTF-8 sequence of a printable (non-control) character
// at the start of s, or 0. Rejects overlong forms, surrogates, code points
// above U+10FFFF and the C1 controls U+0080..U+009F.
size_t PrintableUtf8Length(std::string_view s) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  size_t n = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xbf;  // allowed range of the second byte
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    if (c == 0xc2) lo = 0xa0;  // C2 80..C2 9F are the C1 controls
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (s.size() < n || b(1) < lo || b(1) > hi) return 0;
  for (size_t i = 2; i < n; ++i) {
    if (b(i) < 0x80 || b(i) > 0xbf) return 0;
  }
  return n;
}

}  // namespace

std::string EscapeForTerminal(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      AppendEscaped(&out, s.substr(i, 1), /*escape_quote=*/false);
      ++i;
    } else if (const size_t n = PrintableUtf8Length(s.substr(i)); n > 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      AppendHexEscape(&out, c);
      ++i;
    }
  }
  return out;
}

std::string HumanBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes) / 1024.0;
  size_t unit = 0;
  while (v >= 1024.0 && unit + 1 < std::size(kUnits)) {
    v /= 1024.0;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f %s", v, kUnits[unit]);
  return buf;
}

std::string HumanSeconds(double seconds) {
  char buf[48];
  if (seconds < 0) seconds = 0;
  if (seconds < 1e-3) {
    std::snprintf(buf, sizeof(buf), "%.0f us", seconds * 1e6);
  } else if (seconds < 1.0) {
    std::snprintf(buf, sizeof(buf), "%.1f ms", seconds * 1e3);
  } else if (seconds < 60.0) {
    std::snprintf(buf, sizeof(buf), "%.2f s", seconds);
  } else {
    const auto total = static_cast<uint64_t>(seconds);
    if (total < 3600) {
      std::snprintf(buf, sizeof(buf), "%" PRIu64 "m%02" PRIu64 "s", total / 60, total % 60);
    } else if (total < 86400) {
      std::snprintf(buf, sizeof(buf), "%" PRIu64 "h%02" PRIu64 "m", total / 3600, (total / 60) % 60);
    } else {
      std::snprintf(buf, sizeof(buf), "%" PRIu64 "d%02" PRIu64 "h", total / 86400, (total / 3600) % 24);
    }
  }
  return buf;
}

}  // namespace kvctl
