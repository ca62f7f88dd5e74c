// The RESP command table: one row per Redis command kvd answers (docs/resp.md
// §4), like Redis's commands.def. The codec looks names up here, checks the
// arity, and routes by `kind`; COMMAND and COMMAND DOCS are answered from it.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace kvd::daemon {

enum class RespCmd : uint8_t {
  kNone = 0,  // no command: a protocol error, or an unknown name
  kPing, kEcho, kHello, kAuth, kSelect, kQuit, kClient, kCommand, kWait,
  kGet, kSet, kSetNx, kGetDel, kDel, kExists, kMGet, kMSet, kMSetNx,
  kDbSize, kScan, kKeys, kType, kInfo, kConfig, kSave, kBgSave, kLastSave,
};

// Where a command is answered.
enum class RespKind : uint8_t {
  kLocal,    // by the codec, from the connection's own state (PING, HELLO, CLIENT ...)
  kNeutral,  // by the dispatcher, as the native protocol's op (GET, plain SET, MSET, SAVE)
  kRead,     // by the RESP handler, reading the State or STATUS (MGET, SCAN, INFO ...)
  kDecided,  // by the RESP handler: a write decided against the current value (SETNX, DEL ...)
};

struct RespCommandDef {
  std::string_view name;  // lower case
  RespCmd id;
  int arity;              // Redis's convention: n exactly, -n at least n (name included)
  RespKind kind;          // the usual route; SET and CONFIG pick theirs per call
  bool write;
  std::string_view group;    // COMMAND DOCS
  std::string_view summary;  // COMMAND DOCS
  std::string_view syntax;   // argument names for COMMAND DOCS, e.g. "key value [NX|XX] [GET]"
};

std::span<const RespCommandDef> RespCommands();
// Case-insensitive; nullptr for a name kvd does not know.
const RespCommandDef* FindRespCommand(std::string_view name);
const RespCommandDef& RespCommandOf(RespCmd id);

}  // namespace kvd::daemon
