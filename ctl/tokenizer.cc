#include "tokenizer.h"

#include <string>

namespace kvctl {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

kvd::Status Error(std::string what, size_t pos) {
  return kvd::Status::InvalidArgument(what + " at column " + std::to_string(pos + 1));
}

}  // namespace

kvd::Result<std::vector<std::string>> Tokenize(std::string_view line) {
  std::vector<std::string> tokens;
  size_t i = 0;
  const size_t n = line.size();
  while (true) {
    while (i < n && IsSpace(line[i])) ++i;
    if (i == n) break;
    std::string tok;
    if (line[i] != '"') {
      while (i < n && !IsSpace(line[i])) tok.push_back(line[i++]);
      tokens.push_back(std::move(tok));
      continue;
    }
    const size_t open = i++;
    bool closed = false;
    while (i < n) {
      const char c = line[i];
      if (c == '"') {
        closed = true;
        ++i;
        break;
      }
      if (c != '\\') {
        tok.push_back(c);
        ++i;
        continue;
      }
      if (i + 1 >= n) return Error("unterminated escape", i);
      const char e = line[i + 1];
      switch (e) {
        case '"': tok.push_back('"'); break;
        case '\\': tok.push_back('\\'); break;
        case 'n': tok.push_back('\n'); break;
        case 't': tok.push_back('\t'); break;
        case 'r': tok.push_back('\r'); break;
        case 'x': {
          const int hi = i + 2 < n ? HexValue(line[i + 2]) : -1;
          const int lo = i + 3 < n ? HexValue(line[i + 3]) : -1;
          if (hi < 0 || lo < 0) return Error("bad \\x escape (need two hex digits)", i);
          tok.push_back(static_cast<char>(hi * 16 + lo));
          i += 2;
          break;
        }
        default:
          return Error(std::string("bad escape \\") + (e >= 0x20 && e < 0x7f ? std::string(1, e) : "?"), i);
      }
      i += 2;
    }
    if (!closed) return Error("unterminated quote", open);
    if (i < n && !IsSpace(line[i])) return Error("closing quote must be followed by a space", i);
    tokens.push_back(std::move(tok));
  }
  return tokens;
}

}  // namespace kvctl
