// kvctl's one-shot commands. Each prints its result on out, at most one
// line on err, and returns the exit code (exit_codes.h).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

namespace kvctl {

struct CommandContext {
  std::string socket;
  std::ostream& out;
  std::ostream& err;
  bool out_is_tty = false;  // get adds a newline after the value only on a terminal
};

struct ScanOptions {
  std::optional<std::string> prefix;
  std::optional<std::string> start;
  std::optional<std::string> end;
  uint64_t limit = 0;  // 0 = everything
};

int CmdPut(const CommandContext& c, const std::string& key, const std::string& value, bool durable);
int CmdGet(const CommandContext& c, const std::string& key);
int CmdDel(const CommandContext& c, const std::string& key, bool durable);
int CmdSize(const CommandContext& c);
int CmdCount(const CommandContext& c, const std::string& prefix);
int CmdScan(const CommandContext& c, const ScanOptions& o);
int CmdFlush(const CommandContext& c);
int CmdSnapshot(const CommandContext& c);
int CmdStatus(const CommandContext& c, bool json);
int CmdPing(const CommandContext& c);
int CmdConfigGet(const CommandContext& c, const std::string& name);
int CmdConfigSet(const CommandContext& c, const std::string& name, const std::string& value);

}  // namespace kvctl
