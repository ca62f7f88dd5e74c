// The line protocol: the original engine's commands (PUT GET DEL SIZE SNAP
// FLUSH SETBATCH BENCH EXIT) plus kvctl's (SCAN COUNT STATUS PING CONFIG HELP
// QUIT), case-insensitive, one reply line per command.
//
// Used as a prompt loop on a terminal and as a filter when stdin is not a
// terminal (no prompt, every reply flushed at once). Replies:
//   PUT, SETBATCH, CONFIG SET, EXIT -> OK        DEL -> OK | (nil)
//   GET -> the value, FormatToken()-quoted when needed | (nil)
//   SIZE, COUNT -> the number      FLUSH, SNAP -> OK lsn=N      PING -> PONG
//   SCAN -> key value key value ... (each FormatToken()ed) | (empty)
//   STATUS, CONFIG GET -> one line of JSON (CONFIG GET name -> the value)
//   BENCH n -> OK n puts in T s: R ops/s
//   anything failing -> ERR message
// Blank lines and lines starting with '#' are skipped without a reply.
// Read from a pipe, the exit status tells whether every command worked:
// 0 yes ((nil) included); 2 some ERR was the user's (unknown command, bad
// arguments, a value the server refused as invalid); 3 the server failed a
// command or could not be reached (connection lost, timeout). 3 wins over 2.
#pragma once

#include <chrono>
#include <iosfwd>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvd/client.h"

namespace kvctl {

class ReplSession {
 public:
  // interactive: HELP prints several lines (the filter mode keeps to one).
  // timeout bounds each connect and request (0 = none).
  ReplSession(std::string socket_path, std::chrono::milliseconds timeout, bool interactive);
  ~ReplSession();

  struct Outcome {
    std::optional<std::string> reply;  // nullopt: nothing to print
    bool exit = false;
    int exit_code = 0;  // 0, kExitUsage or kExitServer (exit_codes.h)
  };
  Outcome Execute(std::string_view line);

  // Connects now (the loop calls this once so a missing server is reported
  // before the first command). Commands reconnect on their own.
  kvd::Status EnsureConnected();

 private:
  using Args = std::span<const std::string>;
  std::string Dispatch(const std::string& verb, Args args, bool* exit);
  // Runs op on a live connection. A broken connection is dropped so the
  // next command reconnects; read-only ops are retried once on a fresh one
  // (a kvd restarted under a REPL is then invisible to reads).
  template <typename Fn>
  auto WithClient(bool read_only, Fn&& op) -> decltype(op(std::declval<kvd::Client&>()));

  std::string Bench(uint64_t n);
  // Records the outcome of the command's final request in command_exit_.
  void Note(const kvd::Status& s);

  std::string socket_path_;
  std::chrono::milliseconds timeout_;
  bool interactive_;
  int command_exit_ = 0;
  std::unique_ptr<kvd::Client> client_;
};

// Reads lines from in until EOF or EXIT. Interactive: a "kvd> " prompt, and
// the exit code is 0. Otherwise the worst Outcome::exit_code.
int RunRepl(const std::string& socket_path, std::chrono::milliseconds timeout, std::istream& in, std::ostream& out,
            bool interactive);

// The one-line and the multi-line help text.
std::string ReplHelp(bool multi_line);

}  // namespace kvctl
