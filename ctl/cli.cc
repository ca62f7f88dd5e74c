#include "cli.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>

#include "bench.h"
#include "commands.h"
#include "exit_codes.h"
#include "repl.h"
#include "socket_resolve.h"

namespace kvctl {
namespace {

constexpr const char* kFooter = R"(Socket: KVD_SOCKET overrides everything; else --socket; else --config FILE's
[server] socket; else that of /etc/kvd/kvd.toml if readable; else /run/kvd/kvd.sock.

Without a command kvctl reads commands (PUT GET DEL SIZE SNAP FLUSH SETBATCH
BENCH SCAN COUNT STATUS PING CONFIG HELP EXIT): a prompt on a terminal,
otherwise one reply line per input line. Try `echo HELP | kvctl`.

Exit codes: 0 ok; 1 not found (get/del of an absent key); 2 usage error;
3 server error or server unreachable. Errors are one line on stderr.)";

std::string ReadAllStdin() {
  std::cin >> std::noskipws;
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

}  // namespace

int KvctlMain(int argc, char** argv) {
  CLI::App app{"kvctl: command-line client for the kvd key-value daemon", "kvctl"};
  app.footer(kFooter);
  app.set_version_flag("--version", std::string("kvctl ") + KVD_VERSION);
  app.require_subcommand(0, 1);
  app.fallthrough();  // global options may also follow the command

  std::string socket_flag;
  std::string config_flag;
  auto* socket_opt = app.add_option("--socket,-s", socket_flag, "kvd's Unix socket");
  auto* config_opt = app.add_option("--config", config_flag, "read the socket from this kvd.toml ([server] socket)");
  socket_opt->excludes(config_opt);

  std::string key;
  std::string value;
  bool durable = false;

  auto* put = app.add_subcommand("put", "store VALUE under KEY; prints OK");
  put->add_option("KEY", key, "the key")->required();
  put->add_option("VALUE", value, "the value; - reads it from stdin (binary safe)")->required();
  put->add_flag("--durable", durable, "reply only once the write is durable, whatever the durability mode");

  auto* get = app.add_subcommand(
      "get", "print KEY's value: raw bytes (plus a newline on a terminal); absent: nothing, exit 1");
  get->add_option("KEY", key, "the key")->required();

  auto* del = app.add_subcommand("del", "delete KEY; prints OK; absent: exit 1 (like get)");
  del->add_option("KEY", key, "the key")->required();
  del->add_flag("--durable", durable, "reply only once the delete is durable");

  auto* size = app.add_subcommand("size", "print the number of keys");

  std::string count_prefix;
  auto* count = app.add_subcommand("count", "print the number of keys with a prefix");
  count->add_option("--prefix,-p", count_prefix, "count only keys starting with this");

  ScanOptions scan_opts;
  std::string scan_prefix;
  std::string scan_start;
  std::string scan_end;
  auto* scan = app.add_subcommand(
      "scan", "print KEY<TAB>VALUE lines in key order (non-printable bytes, \\ and tabs escaped as \\xNN \\\\ \\t)");
  auto* prefix_opt = scan->add_option("--prefix,-p", scan_prefix, "only keys starting with this");
  auto* start_opt = scan->add_option("--start", scan_start, "range start (inclusive)");
  auto* end_opt = scan->add_option("--end", scan_end, "range end (exclusive)");
  prefix_opt->excludes(start_opt)->excludes(end_opt);
  scan->add_option("--limit,-n", scan_opts.limit, "stop after this many keys (0 = all)");

  auto* flush = app.add_subcommand("flush", "fdatasync the WAL now; prints the durable LSN");
  auto* snapshot = app.add_subcommand("snapshot", "take a snapshot now; prints its LSN once installed");

  bool status_json = false;
  auto* status = app.add_subcommand("status", "server status, grouped (version, keys, durability, WAL, ...)");
  status->add_flag("--json", status_json, "print the server's status as one JSON object");

  auto* ping = app.add_subcommand("ping", "check the server answers; prints PONG");

  std::string cfg_name;
  std::string cfg_value;
  auto* config = app.add_subcommand("config", "read or change runtime settings");
  config->require_subcommand(1);
  auto* config_get = config->add_subcommand("get", "print NAME's value, or every NAME = value");
  config_get->add_option("NAME", cfg_name, "e.g. durability.batch_size");
  auto* config_set = config->add_subcommand("set", "change a runtime setting (value as in kvd.toml)");
  config_set->add_option("NAME", cfg_name, "e.g. durability.mode")->required();
  config_set->add_option("VALUE", cfg_value, "e.g. batch, 64, 10ms")->required();

  BenchOptions bo;
  auto* bench = app.add_subcommand("bench", "load generator: ops/s and latency percentiles (like redis-benchmark)");
  bench->footer(
      "--durability sets the server's durability.mode for the run and restores it afterwards;\n"
      "--durable-flag instead asks for a durable reply per PUT. --prefill writes every key once\n"
      "first (in mode none, then FLUSH). Ctrl-C ends the run early and still reports.");
  bench->add_option("--clients,-c", bo.clients, "connections (each its own socket)")->capture_default_str();
  auto* req_opt = bench->add_option("--requests,-n", bo.requests, "total requests (default 100000)");
  auto* dur_opt = bench->add_option("--duration,-d", bo.duration, "run this long instead, e.g. 10s, 500ms, 1m");
  req_opt->excludes(dur_opt);
  bench->add_option("--pipeline,-P", bo.pipeline, "requests in flight per connection")->capture_default_str();
  bench->add_option("--value-size", bo.value_size, "value bytes")->capture_default_str();
  bench->add_option("--key-space,-k", bo.key_space, "keys drawn uniformly from key:000000000000 ..")
      ->capture_default_str();
  bench->add_option("--ratio,-r", bo.ratio, "PUT:GET mix, e.g. 1:0 (PUT only), 10:90")->capture_default_str();
  bench->add_option("--durability", bo.durability, "sync | batch | none for the run")
      ->check(CLI::IsMember({"sync", "batch", "none"}));
  bench->add_flag("--durable-flag", bo.durable_flag, "set the per-request durable flag on every PUT");
  bench->add_flag("--prefill", bo.prefill, "write every key once before measuring");
  bench->add_flag("--json", bo.json, "print one JSON object");
  bench->add_option("--threads,-t", bo.threads, "generator threads (epoll loops)")->capture_default_str();
  bench->add_option("--seed", bo.seed, "random seed for keys and the mix")->capture_default_str();
  bool no_progress = false;
  bench->add_flag("--no-progress", no_progress, "no live progress line on stderr");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::cerr << "kvctl: " << e.what() << " (see kvctl --help)\n";
    return kExitUsage;
  }

  SocketSources sources = SocketSourcesFromEnv();
  if (socket_opt->count() > 0) sources.socket_flag = socket_flag;
  if (config_opt->count() > 0) sources.config_flag = config_flag;
  auto socket = ResolveSocket(sources);
  if (!socket.has_value()) {
    std::cerr << "kvctl: " << socket.error().message() << "\n";
    return kExitUsage;
  }
  const CommandContext ctx{*socket, std::cout, std::cerr, ::isatty(STDOUT_FILENO) == 1};

  if (*put) return CmdPut(ctx, key, value == "-" ? ReadAllStdin() : value, durable);
  if (*get) return CmdGet(ctx, key);
  if (*del) return CmdDel(ctx, key, durable);
  if (*size) return CmdSize(ctx);
  if (*count) return CmdCount(ctx, count_prefix);
  if (*scan) {
    if (prefix_opt->count() > 0) scan_opts.prefix = scan_prefix;
    if (start_opt->count() > 0) scan_opts.start = scan_start;
    if (end_opt->count() > 0) scan_opts.end = scan_end;
    return CmdScan(ctx, scan_opts);
  }
  if (*flush) return CmdFlush(ctx);
  if (*snapshot) return CmdSnapshot(ctx);
  if (*status) return CmdStatus(ctx, status_json);
  if (*ping) return CmdPing(ctx);
  if (*config_get) return CmdConfigGet(ctx, cfg_name);
  if (*config_set) return CmdConfigSet(ctx, cfg_name, cfg_value);
  if (*bench) {
    bo.progress = !no_progress;
    return RunBench(*socket, bo, std::cout, std::cerr);
  }
  return RunRepl(*socket, std::cin, std::cout, ::isatty(STDIN_FILENO) == 1);
}

}  // namespace kvctl
