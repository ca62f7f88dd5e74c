// kvctl's one-shot commands. Each prints its result on out, at most one
// line on err, and returns the exit code (exit_codes.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "batch_ops.h"

namespace kvctl {

struct CommandContext {
  std::string socket;
  std::ostream& out;
  std::ostream& err;
  bool out_is_tty = false;             // get escapes non-printable bytes on a terminal
  std::chrono::milliseconds timeout{0};  // bounds connect and each request (0 = none)
  // get, scan, count: the server answers once it has applied this LSN
  // (read-your-writes, e.g. on a replica); 0 = at once.
  uint64_t min_lsn = 0;
};

struct ScanOptions {
  std::optional<std::string> prefix;
  std::optional<std::string> start;
  std::optional<std::string> end;
  uint64_t limit = 0;  // 0 = everything
};

int CmdPut(const CommandContext& c, const std::string& key, const std::string& value, bool durable);
// Prints the value and a newline; on a terminal, EscapeForTerminal()ed.
// raw: exactly the value's bytes, nothing added, even on a terminal.
int CmdGet(const CommandContext& c, const std::string& key, bool raw);
int CmdDel(const CommandContext& c, const std::string& key, bool durable);
// One atomic DEL_RANGE: every key with the prefix, or every key in [from, to).
// Prints "deleted=N lsn=L" (N may be 0: exit 0 all the same).
struct DelRangeOptions {
  std::optional<std::string> prefix;
  std::optional<std::string> from;
  std::optional<std::string> to;
};
int CmdDelRange(const CommandContext& c, const DelRangeOptions& o, bool durable);
int CmdSize(const CommandContext& c);
int CmdCount(const CommandContext& c, const std::string& prefix);
int CmdScan(const CommandContext& c, const ScanOptions& o);
int CmdFlush(const CommandContext& c);
// Prints "lsn=N path=P": the snapshot's LSN and file, the file named as
// docs/snapshot_format.md says under the server's storage.snapshot_path.
int CmdSnapshot(const CommandContext& c);
// One atomic BATCH; prints OK.
int CmdBatch(const CommandContext& c, const std::vector<BatchEntry>& entries, bool durable);
int CmdStatus(const CommandContext& c, bool json);
int CmdPing(const CommandContext& c);
int CmdConfigGet(const CommandContext& c, const std::string& name);
// A value, key or name the server refuses (InvalidArgument) exits 2.
int CmdConfigSet(const CommandContext& c, const std::string& name, const std::string& value);

// PROMOTE: prints "epoch=E" (the epoch begun). The server's refusal (it
// may lack acknowledged writes) is printed as it gives it; force overrides.
int CmdPromote(const CommandContext& c, bool force, uint64_t epoch);
// REPLICATE: the node follows the primary at host_port; prints OK.
int CmdReplicate(const CommandContext& c, const std::string& host_port);

// "snap-<20-digit LSN>.kvs" (docs/snapshot_format.md).
std::string SnapshotFileName(uint64_t lsn);

}  // namespace kvctl
