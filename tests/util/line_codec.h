// LineCodec: a toy text protocol behind the Codec seam, for tests that show
// the serving core is protocol-neutral. One request per line, "OP arg...":
// PUT k v | GET k | DEL k | FLUSH | PING | COUNT prefix | SNAPSHOT; an
// unknown OP fails only that request (as RESP's unknown command does); a
// line starting with '!' breaks the stream. Like RESP it carries no request
// ids: the session's sequence number is the id. Replies are lines
// "<id> <op> <code> <text>".
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "daemon/serve/codec.h"

namespace kvd::test {

class LineCodec : public daemon::Codec {
 public:
  daemon::DecodeResult Decode(std::span<const std::byte> data, uint64_t seq, daemon::Command* cmd) override {
    using daemon::Op;
    ++calls;
    daemon::DecodeResult r;
    const std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
    const size_t eol = text.find('\n');
    if (eol == std::string_view::npos) return r;
    std::string_view line = text.substr(0, eol);
    *cmd = daemon::Command{};
    cmd->ref.id = seq;
    if (line.starts_with('!')) {
      r.kind = daemon::DecodeResult::kBroken;
      r.error = Status::InvalidArgument("broken line");
      r.ref = cmd->ref;
      return r;
    }
    std::vector<std::string_view> w;
    while (!line.empty()) {
      const size_t sp = line.find(' ');
      w.push_back(line.substr(0, sp));
      line = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
    }
    const std::string_view op = w.empty() ? std::string_view() : w[0];
    auto arg = [&](size_t i) { return i < w.size() ? w[i] : std::string_view(); };
    if (op == "PUT") {
      cmd->ref.op = Op::kPut;
      cmd->key = arg(1);
      cmd->value = arg(2);
    } else if (op == "GET" || op == "DEL" || op == "COUNT") {
      cmd->ref.op = op == "GET" ? Op::kGet : op == "DEL" ? Op::kDel : Op::kCount;
      cmd->key = arg(1);
    } else if (op == "FLUSH") {
      cmd->ref.op = Op::kFlush;
    } else if (op == "SNAPSHOT") {
      cmd->ref.op = Op::kSnapshot;
    } else if (op == "PING") {
      cmd->ref.op = Op::kPing;
    } else {
      cmd->ref.op = Op::kPing;
      cmd->problem = Status::Unsupported("unknown command");
      cmd->fatal = false;
    }
    r.kind = daemon::DecodeResult::kCommand;
    r.consumed = eol + 1;
    ++decoded;
    return r;
  }
  bool HasRequest(std::span<const std::byte> data) const override {
    const std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
    return text.find('\n') != std::string_view::npos;
  }
  void EncodeReply(const daemon::Reply& r, std::string* out) override {
    *out += std::to_string(r.ref.id) + " " + std::string(daemon::OpName(r.ref.op)) + " " +
            std::string(CodeName(r.code)) + " ";
    if (r.ref.op == daemon::Op::kCount && r.code == Code::kOk) {
      *out += std::to_string(r.count);
    } else {
      *out += r.text;
    }
    *out += "\n";
  }

  int decoded = 0;  // commands decoded (a waiting barrier is decoded again)
  int calls = 0;  // every Decode, whatever it returned
};

}  // namespace kvd::test
