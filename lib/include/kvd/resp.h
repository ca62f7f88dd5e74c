// RESP, the Redis serialization protocol: a command parser and a reply writer.
//
// Only the byte format lives here (docs/resp.md): what a command means is the
// daemon's RESP front end's business. Like the native codec (kvd/protocol.h)
// this knows nothing of sockets.
//
// Commands arrive in one of Redis's two request forms:
//   multibulk  *<argc>\r\n then argc x ($<len>\r\n<len bytes>\r\n)
//   inline     a line of words split as redis-cli / sdssplitargs does, with
//              "double" (\n \r \t \b \a \\ \" \xHH) and 'single' (\') quotes
// Protocol errors carry Redis's own texts ("Protocol error: invalid bulk
// length", ...), so a client sees the message it would see from Redis.
//
// Threading: a parser or writer is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kvd::resp {

struct ParserLimits {
  // A line (inline command, *<argc>, $<len>) longer than this without its
  // newline is refused (Redis's PROTO_INLINE_MAX_SIZE).
  size_t max_inline_bytes = 64 * 1024;
  // Largest bulk argument (Redis's proto-max-bulk-len is 512 MiB; kvd's
  // values are far smaller, so the daemon passes its own bound).
  uint64_t max_bulk_bytes = 512ull * 1024 * 1024;
  // Most arguments in one command.
  uint64_t max_args = 1024 * 1024;
};

enum class ParseOutcome {
  kCommand,        // one command parsed: args() and consumed are valid
  kNeedMore,       // the input holds only part of a command
  kProtocolError,  // error() says why; reply with it and close the connection
};

struct Parsed {
  ParseOutcome outcome = ParseOutcome::kNeedMore;
  // kCommand: bytes the command took (drop them from the input).
  size_t consumed = 0;
  // kNeedMore: the command cannot complete before the input holds at least
  // this many bytes (from its start), so a caller may wait until then instead
  // of parsing again after every read. Never more than what the command needs.
  size_t need_bytes = 0;
  // kProtocolError: Redis's text without the "-ERR " prefix (valid until the
  // parser's next Parse call).
  std::string_view error;
  bool is_inline = false;
};

class CommandParser {
 public:
  explicit CommandParser(ParserLimits limits = {}) : limits_(limits) {}

  // Parses the first command in `in`. On kCommand, args() holds its
  // arguments (args()[0] is the command name); an empty command (an empty
  // line, "*0" or "*-1") parses as kCommand with no arguments, and callers
  // skip it, as Redis does. The views point into `in`, or into the parser
  // for inline arguments that had escapes: valid until the next Parse call
  // and while `in`'s bytes stay where they are.
  Parsed Parse(std::string_view in);
  std::span<const std::string_view> args() const { return args_; }

 private:
  Parsed ParseMultibulk(std::string_view in);
  Parsed ParseInline(std::string_view in);

  ParserLimits limits_;
  std::vector<std::string_view> args_;
  std::string unescaped_;  // inline arguments with quotes or escapes
  std::vector<std::pair<size_t, size_t>> spans_;  // offsets into unescaped_
  std::string error_text_;  // a protocol error that quotes the input
};

// Splits one inline line into arguments the way Redis's sdssplitargs does.
// Returns false on unbalanced quotes (or a closing quote followed by a
// non-space). Arguments are appended to *out as (offset, length) into *text.
bool SplitInlineArgs(std::string_view line, std::string* text,
                     std::vector<std::pair<size_t, size_t>>* out);

// Appends replies to a string in RESP2 or RESP3 (after HELLO 3). The RESP3
// types a RESP2 client cannot read fall back as Redis does: a map becomes a
// flat array of 2n items, null becomes $-1 (or *-1 for a null array),
// booleans become integers 1/0, doubles become bulk strings.
class ReplyWriter {
 public:
  ReplyWriter(std::string* out, int protocol) : out_(out), resp3_(protocol >= 3) {}

  bool resp3() const { return resp3_; }
  void set_protocol(int protocol) { resp3_ = protocol >= 3; }

  void Simple(std::string_view s);  // +s  (CR and LF in s become spaces)
  // -<text>: text starts with the error code word ("ERR ...", "WRONGTYPE
  // ...", "NOAUTH ..."); CR and LF in it become spaces.
  void Error(std::string_view text);
  void Integer(int64_t v);
  void Bulk(std::string_view s);
  void Null();       // a missing value: RESP2 $-1, RESP3 _
  void NullArray();  // a missing array: RESP2 *-1, RESP3 _
  void Array(size_t n);
  void Map(size_t pairs);  // then 2 x pairs items: key, value, ...
  void Set(size_t n);
  void Bool(bool b);
  void Double(double d);
  // Text for humans (INFO, CLIENT INFO): RESP3 verbatim string "txt", RESP2 bulk.
  void Verbatim(std::string_view text);

 private:
  void Header(char type, int64_t n);
  void Line(char type, std::string_view s);

  std::string* out_;
  bool resp3_;
};

// Encodes args as one multibulk command (what clients send). For tests,
// benchmarks and the fuzz target's round trip.
std::string EncodeCommand(std::span<const std::string_view> args);

}  // namespace kvd::resp
