// The RESP codec: Redis's protocol behind the codec seam (serve/codec.h),
// on lib's parser and reply writer (kvd/resp.h, docs/resp.md).
//
// Decode turns one RESP command into a neutral Command:
//   GET, plain SET, MSET, SAVE, CONFIG SET  -> the native protocol's ops
//                                               (GET is answered ahead like
//                                               a native GET)
//   SETNX, SET NX|XX|GET, GETDEL, DEL, MSETNX -> a write (Op::kBatch, so the
//                                               session submits it at once);
//                                               the RESP handler decides it
//   MGET, EXISTS, SCAN, INFO, ... and the     -> a barrier (Op::kPing); the
//   connection's own commands (HELLO, AUTH)     handler or this codec answers
// The RESP command and how to answer it ride in RequestRef.tag (RespTag);
// the arguments after the name in Command::args. A bad argument list is a
// non-fatal problem with Redis's error text; only a protocol error (and
// QUIT) ends the connection.
//
// The connection's own state (protocol version, AUTH, client name) changes
// when its command's reply is encoded, never in Decode (which a waiting
// barrier repeats): every reply before HELLO 3 is still RESP2.
//
// Threading: the loop thread only.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kvd/resp.h"
#include "resp/resp_commands.h"
#include "serve/codec.h"

namespace kvd::daemon {

// RequestRef.tag of a RESP command.
struct RespTag {
  static constexpr uint16_t kIdMask = 0x3f;
  static constexpr uint16_t kResp3 = 1 << 6;  // reply in RESP3
  static constexpr uint16_t kNx = 1 << 7;     // SET NX
  static constexpr uint16_t kXx = 1 << 8;     // SET XX
  static constexpr uint16_t kGet = 1 << 9;    // SET GET
  static RespCmd Cmd(uint16_t tag) { return static_cast<RespCmd>(tag & kIdMask); }
  static int Protocol(uint16_t tag) { return (tag & kResp3) != 0 ? 3 : 2; }
};

struct RespLimits {
  uint32_t max_key_bytes = 64 * 1024;
  uint32_t max_value_bytes = 16 * 1024 * 1024;
  // Most bytes one command may take (its arguments and their framing).
  uint64_t max_command_bytes = 32 * 1024 * 1024;
};

class RespCodec : public Codec {
 public:
  RespCodec(RespLimits limits, std::string password, uint64_t client_id);

  DecodeResult Decode(std::span<const std::byte> data, uint64_t seq, Command* cmd) override;
  bool HasRequest(std::span<const std::byte> data) const override;
  void EncodeReply(const Reply& reply, std::string* out) override;

  int protocol() const { return protocol_; }
  bool authenticated() const { return authenticated_; }

 private:
  // Fills *cmd for args (name first); sets cmd->problem for a bad call.
  void Route(std::span<const std::string_view> args, Command* cmd);
  void RouteSet(std::span<const std::string_view> args, Command* cmd);
  // False (and a problem set) when over the limit; the check is inline, the
  // error text is built out of line.
  bool CheckKey(std::string_view key, Command* cmd) {
    return key.size() <= limits_.max_key_bytes || KeyTooLarge(key, cmd);
  }
  bool CheckValue(std::string_view value, Command* cmd) {
    return value.size() <= limits_.max_value_bytes || ValueTooLarge(value, cmd);
  }
  bool KeyTooLarge(std::string_view key, Command* cmd);
  bool ValueTooLarge(std::string_view value, Command* cmd);
  void EncodeLocal(RespCmd id, std::string* out);
  void EncodeHello(resp::ReplyWriter& w);
  bool PasswordMatches(std::string_view user, std::string_view pass) const;

  RespLimits limits_;
  std::string password_;  // empty: no AUTH needed
  uint64_t client_id_;
  resp::CommandParser parser_;
  mutable resp::CommandParser probe_;  // HasRequest's, so parser_'s args survive
  std::vector<BatchOp> batch_;         // MSET
  int protocol_ = 2;
  bool authenticated_ = false;
  std::string name_;  // CLIENT SETNAME
};

class RespProtocol : public Protocol {
 public:
  RespProtocol(RespLimits limits, std::string password) : limits_(limits), password_(std::move(password)) {}
  std::string_view name() const override { return "resp"; }
  std::unique_ptr<Codec> NewCodec() override {
    return std::make_unique<RespCodec>(limits_, password_, next_client_id_++);
  }
  void EncodeRefusal(Code code, std::string_view message, std::string* out) const override;

 private:
  RespLimits limits_;
  std::string password_;
  uint64_t next_client_id_ = 1;
};

// "-ERR <text>" unless text already starts with an error code word
// (NOAUTH, WRONGPASS, ...).
void WriteRespError(resp::ReplyWriter& w, std::string_view text);

}  // namespace kvd::daemon
