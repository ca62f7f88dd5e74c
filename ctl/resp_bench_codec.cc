#include "resp_bench_codec.h"

#include <array>
#include <charconv>

#include "kvd/resp.h"

namespace kvctl {

RespRequestTemplate RespRequestTemplate::Set(std::string_view key, std::string_view value) {
  const std::array<std::string_view, 3> args = {"SET", key, value};
  RespRequestTemplate t;
  t.frame_ = kvd::resp::EncodeCommand(args);
  // ... $<key len>\r\n<key>\r\n$<value len>\r\n<value>\r\n
  const std::string value_header = "$" + std::to_string(value.size()) + "\r\n";
  t.key_offset_ = t.frame_.size() - 2 - value.size() - value_header.size() - 2 - key.size();
  t.key_size_ = key.size();
  return t;
}

RespRequestTemplate RespRequestTemplate::Get(std::string_view key) {
  const std::array<std::string_view, 2> args = {"GET", key};
  RespRequestTemplate t;
  t.frame_ = kvd::resp::EncodeCommand(args);
  t.key_offset_ = t.frame_.size() - 2 - key.size();
  t.key_size_ = key.size();
  return t;
}

RespReply DecodeRespReply(std::string_view in, size_t max_bulk_bytes) {
  RespReply r;
  if (in.empty()) return r;
  const size_t eol = in.find("\r\n");
  if (eol == std::string_view::npos) {
    // A reply line of SET/GET is short; a long line without CRLF is garbage.
    if (in.size() > 64 * 1024) r = {RespReply::kBad, 0, "reply line without CRLF"};
    return r;
  }
  const std::string_view line = in.substr(1, eol - 1);
  switch (in[0]) {
    case '+':
      return {RespReply::kSimple, eol + 2, line};
    case '-':
      return {RespReply::kError, eol + 2, line};
    case ':':
      return {RespReply::kInteger, eol + 2, line};
    case '_':
      return {RespReply::kNull, eol + 2, {}};
    case '$': {
      int64_t n = 0;
      const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), n);
      if (ec != std::errc() || end != line.data() + line.size() || n < -1) {
        return {RespReply::kBad, 0, "bad bulk length"};
      }
      if (n == -1) return {RespReply::kNull, eol + 2, {}};
      if (static_cast<uint64_t>(n) > max_bulk_bytes) return {RespReply::kBad, 0, "bulk reply too large"};
      const size_t total = eol + 2 + static_cast<size_t>(n) + 2;
      if (in.size() < total) return r;
      if (in.substr(total - 2, 2) != "\r\n") return {RespReply::kBad, 0, "bulk reply without CRLF"};
      return {RespReply::kBulk, total, in.substr(eol + 2, static_cast<size_t>(n))};
    }
    default:
      return {RespReply::kBad, 0, "unexpected reply type"};
  }
}

}  // namespace kvctl
