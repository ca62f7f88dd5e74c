// RESP command parser and reply writer (docs/resp.md).
#include "kvd/resp.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

namespace kvd::resp {
namespace {

constexpr std::string_view kCrlf = "\r\n";

// Redis's string2ll: an optional '-', then digits with no leading zeros
// (except "0" itself), nothing else, no overflow.
bool ParseDecimal(std::string_view s, int64_t* out) {
  // Every request has a few of these ("*3", "$3", "$100"): up to 18 digits
  // cannot overflow, so they need neither a sign nor from_chars.
  if (!s.empty() && s.size() <= 18 && s[0] >= '1' && s[0] <= '9') {
    int64_t v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    *out = v;
    return true;
  }
  if (s.empty() || s.size() > 20) return false;
  size_t i = s[0] == '-' ? 1 : 0;
  if (i == s.size()) return false;
  if (s[i] == '0' && s.size() > i + 1) return false;
  if (s == "-0") return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Where a "\r\n"-terminated line that starts at `pos` ends (the index of its
// '\r'), or npos when the input does not hold the terminator yet. A '\r'
// followed by anything but '\n' is reported through *bad.
size_t FindLineEnd(std::string_view in, size_t pos, bool* bad) {
  size_t cr = in.find('\r', pos);
  if (cr == std::string_view::npos || cr + 1 >= in.size()) return std::string_view::npos;
  if (in[cr + 1] != '\n') *bad = true;
  return cr;
}

Parsed Error(std::string_view text) {
  Parsed p;
  p.outcome = ParseOutcome::kProtocolError;
  p.error = text;
  return p;
}

Parsed NeedMore(size_t need_bytes) {
  Parsed p;
  p.outcome = ParseOutcome::kNeedMore;
  p.need_bytes = need_bytes;
  return p;
}

}  // namespace

Parsed CommandParser::Parse(std::string_view in) {
  args_.clear();
  if (in.empty()) return NeedMore(1);
  return in[0] == '*' ? ParseMultibulk(in) : ParseInline(in);
}

Parsed CommandParser::ParseMultibulk(std::string_view in) {
  bool bad = false;
  size_t end = FindLineEnd(in, 1, &bad);
  if (end == std::string_view::npos) {
    if (in.size() > limits_.max_inline_bytes) return Error("Protocol error: too big mbulk count string");
    return NeedMore(in.size() + 1);
  }
  int64_t argc = 0;
  if (bad || !ParseDecimal(in.substr(1, end - 1), &argc) ||
      argc > static_cast<int64_t>(std::min<uint64_t>(limits_.max_args, std::numeric_limits<int32_t>::max()))) {
    return Error("Protocol error: invalid multibulk length");
  }
  size_t pos = end + 2;
  if (argc <= 0) {  // "*0" and "*-1": an empty command, skipped
    Parsed p;
    p.outcome = ParseOutcome::kCommand;
    p.consumed = pos;
    return p;
  }
  // Reserve no more than the input could hold: a hostile "*1000000" costs
  // nothing until its arguments arrive (each takes at least 6 bytes).
  args_.reserve(std::min<uint64_t>(static_cast<uint64_t>(argc), (in.size() - pos) / 6 + 1));
  for (int64_t i = 0; i < argc; ++i) {
    if (pos >= in.size()) return NeedMore(pos + 1);
    if (in[pos] != '$') {
      // Redis's wording; the byte is shown as is, as Redis does.
      error_text_ = "Protocol error: expected '$', got '";
      error_text_ += in[pos];
      error_text_ += "'";
      return Error(error_text_);
    }
    bad = false;
    end = FindLineEnd(in, pos + 1, &bad);
    if (end == std::string_view::npos) {
      if (in.size() - pos > limits_.max_inline_bytes) return Error("Protocol error: too big bulk count string");
      return NeedMore(in.size() + 1);
    }
    int64_t len = 0;
    if (bad || !ParseDecimal(in.substr(pos + 1, end - pos - 1), &len) || len < 0 ||
        static_cast<uint64_t>(len) > limits_.max_bulk_bytes) {
      return Error("Protocol error: invalid bulk length");
    }
    pos = end + 2;
    const size_t need = pos + static_cast<size_t>(len) + 2;
    if (in.size() < need) return NeedMore(need);
    if (in[need - 2] != '\r' || in[need - 1] != '\n') {
      return Error("Protocol error: bulk string not followed by CRLF");
    }
    args_.push_back(in.substr(pos, static_cast<size_t>(len)));
    pos = need;
  }
  Parsed p;
  p.outcome = ParseOutcome::kCommand;
  p.consumed = pos;
  return p;
}

Parsed CommandParser::ParseInline(std::string_view in) {
  size_t nl = in.find('\n');
  if (nl == std::string_view::npos) {
    if (in.size() > limits_.max_inline_bytes) return Error("Protocol error: too big inline request");
    return NeedMore(in.size() + 1);
  }
  std::string_view line = in.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  unescaped_.clear();
  spans_.clear();
  if (!SplitInlineArgs(line, &unescaped_, &spans_)) return Error("Protocol error: unbalanced quotes in request");
  if (spans_.size() > limits_.max_args) return Error("Protocol error: invalid multibulk length");
  for (auto [off, len] : spans_) args_.push_back(std::string_view(unescaped_).substr(off, len));
  Parsed p;
  p.outcome = ParseOutcome::kCommand;
  p.consumed = nl + 1;
  p.is_inline = true;
  return p;
}

bool SplitInlineArgs(std::string_view line, std::string* text, std::vector<std::pair<size_t, size_t>>* out) {
  // As sdssplitargs works on a C string, a NUL byte ends the line.
  if (size_t nul = line.find('\0'); nul != std::string_view::npos) line = line.substr(0, nul);
  text->reserve(text->size() + line.size());
  const size_t n = line.size();
  auto at = [&](size_t i) { return i < n ? line[i] : '\0'; };
  size_t p = 0;
  while (true) {
    while (p < n && IsSpace(line[p])) ++p;
    if (p >= n) return true;
    const size_t start = text->size();
    bool in_double = false, in_single = false, done = false;
    while (!done) {
      const char c = at(p);
      if (in_double) {
        if (c == '\\' && at(p + 1) == 'x' && HexValue(at(p + 2)) >= 0 && HexValue(at(p + 3)) >= 0) {
          text->push_back(static_cast<char>(HexValue(at(p + 2)) * 16 + HexValue(at(p + 3))));
          p += 3;
        } else if (c == '\\' && p + 1 < n) {
          ++p;
          switch (line[p]) {
            case 'n': text->push_back('\n'); break;
            case 'r': text->push_back('\r'); break;
            case 't': text->push_back('\t'); break;
            case 'b': text->push_back('\b'); break;
            case 'a': text->push_back('\a'); break;
            default: text->push_back(line[p]); break;
          }
        } else if (c == '"') {
          // A closing quote must be followed by a space or the end.
          if (p + 1 < n && !IsSpace(line[p + 1])) return false;
          done = true;
        } else if (p >= n) {
          return false;  // unterminated quotes
        } else {
          text->push_back(c);
        }
      } else if (in_single) {
        if (c == '\\' && at(p + 1) == '\'') {
          ++p;
          text->push_back('\'');
        } else if (c == '\'') {
          if (p + 1 < n && !IsSpace(line[p + 1])) return false;
          done = true;
        } else if (p >= n) {
          return false;
        } else {
          text->push_back(c);
        }
      } else {
        switch (c) {
          case ' ': case '\n': case '\r': case '\t': case '\0': done = true; break;
          case '"': in_double = true; break;
          case '\'': in_single = true; break;
          default: text->push_back(c); break;
        }
      }
      if (p < n) ++p;
    }
    out->emplace_back(start, text->size() - start);
  }
}

// ---- replies --------------------------------------------------------------------

void ReplyWriter::Header(char type, int64_t n) {
  // Built on the stack and appended once: every GET reply has one.
  char buf[24];  // type, at most 20 characters of int64, CR LF
  buf[0] = type;
  auto [end, ec] = std::to_chars(buf + 1, buf + sizeof buf - 2, n);
  (void)ec;
  *end++ = '\r';
  *end++ = '\n';
  out_->append(buf, end);
}

void ReplyWriter::Line(char type, std::string_view s) {
  out_->push_back(type);
  const size_t at = out_->size();
  out_->append(s);
  for (size_t i = at; i < out_->size(); ++i) {
    if ((*out_)[i] == '\r' || (*out_)[i] == '\n') (*out_)[i] = ' ';
  }
  out_->append(kCrlf);
}

void ReplyWriter::Simple(std::string_view s) { Line('+', s); }
void ReplyWriter::Error(std::string_view text) { Line('-', text); }
void ReplyWriter::Integer(int64_t v) { Header(':', v); }

void ReplyWriter::Bulk(std::string_view s) {
  Header('$', static_cast<int64_t>(s.size()));
  out_->append(s);
  out_->append(kCrlf);
}

void ReplyWriter::Null() {
  if (resp3_) {
    out_->append("_\r\n");
  } else {
    out_->append("$-1\r\n");
  }
}

void ReplyWriter::NullArray() {
  if (resp3_) {
    out_->append("_\r\n");
  } else {
    out_->append("*-1\r\n");
  }
}

void ReplyWriter::Array(size_t n) { Header('*', static_cast<int64_t>(n)); }

void ReplyWriter::Map(size_t pairs) {
  if (resp3_) {
    Header('%', static_cast<int64_t>(pairs));
  } else {
    Header('*', static_cast<int64_t>(2 * pairs));
  }
}

void ReplyWriter::Set(size_t n) { Header(resp3_ ? '~' : '*', static_cast<int64_t>(n)); }

void ReplyWriter::Bool(bool b) {
  if (resp3_) {
    out_->append(b ? "#t\r\n" : "#f\r\n");
  } else {
    Integer(b ? 1 : 0);
  }
}

void ReplyWriter::Double(double d) {
  std::string text;
  if (std::isnan(d)) {
    text = "nan";
  } else if (std::isinf(d)) {
    text = d > 0 ? "inf" : "-inf";
  } else {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);  // shortest round-trip form
    (void)ec;
    text.assign(buf, end);
  }
  if (resp3_) {
    Line(',', text);
  } else {
    Bulk(text);
  }
}

void ReplyWriter::Verbatim(std::string_view text) {
  if (!resp3_) return Bulk(text);
  Header('=', static_cast<int64_t>(text.size() + 4));
  out_->append("txt:");
  out_->append(text);
  out_->append(kCrlf);
}

std::string EncodeCommand(std::span<const std::string_view> args) {
  std::string out;
  ReplyWriter w(&out, 2);
  w.Array(args.size());
  for (std::string_view a : args) w.Bulk(a);
  return out;
}

}  // namespace kvd::resp
