#include "cli.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "backup.h"
#include "batch_ops.h"
#include "bench.h"
#include "cluster_route.h"
#include "cluster_status.h"
#include "cluster_view.h"
#include "commands.h"
#include "etcd_gateway.h"
#include "exit_codes.h"
#include "format.h"
#include "repl.h"
#include "socket_resolve.h"
#include "switchover.h"

namespace kvctl {
namespace {

constexpr const char* kDefaultClusterPrefix = "/kvd/default";  // kvd's [cluster] prefix default

constexpr const char* kFooter = R"(Socket, first match wins: --socket PATH; --config FILE's [server] socket; the
KVD_SOCKET environment variable; /etc/kvd/kvd.toml's [server] socket if that
file is readable; /run/kvd/kvd.sock.

--cluster http://IP:PORT[,...] (etcd) sends to the cluster's primary: the one
its <prefix>/leader key names (--cluster-prefix, default /kvd/default), at the
client socket of its member key. https://IP:PORT endpoints (TLS to etcd) need
--etcd-cacert, and --etcd-cert with --etcd-key if etcd asks for a client
certificate. --cluster unix:PATH[,unix:PATH...] uses the first of those kvd
nodes that answers. Either way, and with --socket too, a write refused by a
replica naming its primary (NotPrimary ... primary_address=PATH) is sent once
more, to PATH; a second refusal is an error. `kvctl cluster status` and
`kvctl switchover --to NODE` need etcd endpoints (docs/cluster.md).

--timeout (default 5s; 0 = wait forever) bounds connecting and each request:
when kvd does not answer in time (stopped, overloaded), kvctl prints one line
and exits 3. A snapshot of a large data set may need a longer --timeout.

Without a command kvctl reads commands (PUT GET DEL SIZE SNAP FLUSH SETBATCH
BENCH SCAN COUNT STATUS PING CONFIG HELP EXIT): a prompt on a terminal,
otherwise one reply line per input line (ERR lines included, so replies stay
aligned with commands). Try `echo HELP | kvctl`.

Exit codes: 0 ok; 1 not found (get/del of an absent key); 2 usage error
(also a config set value, key or name the server refuses); 3 server error,
server unreachable or timeout. Errors are one line on stderr. Reading commands
from a pipe: 0 when every command succeeded ((nil) counts as success), 2 when
some were malformed, 3 when the server failed one or the connection was lost.)";

// --timeout: "5s", "500ms", "1m", a bare number of seconds; "0" = none.
std::optional<std::chrono::milliseconds> ParseTimeout(const std::string& text) {
  if (text == "0") return std::chrono::milliseconds(0);
  auto d = ParseBenchDuration(text);
  if (!d.has_value()) return std::nullopt;
  return std::max(std::chrono::milliseconds(1), std::chrono::ceil<std::chrono::milliseconds>(*d));
}

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
  std::string timeout_flag = "5s";
  app.add_option("--timeout", timeout_flag, "bound on connecting and on each request, e.g. 5s, 500ms; 0 = none")
      ->capture_default_str();

  // Cluster (docs/cluster.md "kvctl"): etcd endpoints, or a list of node sockets.
  std::string cluster_flag;
  std::string cluster_prefix = kDefaultClusterPrefix;
  auto* cluster_opt = app.add_option("--cluster", cluster_flag,
                                     "etcd endpoints http://IP:PORT[,...]: send to the cluster's primary; or "
                                     "unix:PATH[,unix:PATH...]: kvd nodes, the first that answers");
  cluster_opt->excludes(socket_opt)->excludes(config_opt);
  app.add_option("--cluster-prefix", cluster_prefix, "the cluster's etcd prefix ([cluster] prefix)")
      ->capture_default_str();
  // TLS to etcd (https:// endpoints), as [cluster] etcd_ca_file, etcd_cert_file, etcd_key_file.
  EtcdTls etcd_tls;
  app.add_option("--etcd-cacert", etcd_tls.ca_file,
                 "PEM CA that signed etcd's certificate (required with https:// endpoints; always verified)");
  app.add_option("--etcd-cert", etcd_tls.cert_file, "PEM client certificate for etcd (with --etcd-key)");
  app.add_option("--etcd-key", etcd_tls.key_file, "PEM private key of --etcd-cert");

  std::string key;
  std::string value;
  bool durable = false;

  auto* put = app.add_subcommand("put", "store VALUE under KEY; prints OK");
  put->add_option("KEY", key, "the key")->required();
  put->add_option("VALUE", value, "the value; - reads it from stdin (binary safe)")->required();
  put->add_flag("--durable", durable, "reply only once the write is durable, whatever the durability mode");

  bool raw = false;
  auto* get = app.add_subcommand(
      "get", "print KEY's value and a newline (non-printable bytes escaped on a terminal); absent: nothing, exit 1");
  get->add_option("KEY", key, "the key")->required();
  get->add_flag("--raw", raw, "exactly the value's bytes, no newline, nothing escaped (binary safe)");
  // Read-your-writes: pass the LSN a write printed (or a STATUS last_lsn).
  uint64_t min_lsn = 0;
  const char* kMinLsnHelp =
      "answer only once the server has applied this LSN (read-your-writes on a replica); it waits at most "
      "its [replication] min_lsn_wait, then fails (exit 3)";
  get->add_option("--min-lsn", min_lsn, kMinLsnHelp);

  auto* del = app.add_subcommand(
      "del", "delete KEY; prints OK; absent: exit 1 (like get). --prefix/--from --to: a range, prints deleted=N lsn=L");
  auto* del_key = del->add_option("KEY", key, "the key");
  std::string del_prefix, del_from, del_to;
  auto* del_prefix_opt = del->add_option("--prefix,-p", del_prefix, "delete every key starting with this");
  auto* del_from_opt = del->add_option("--from", del_from, "range start (inclusive)");
  auto* del_to_opt = del->add_option("--to", del_to, "range end (exclusive: [FROM, TO))");
  del_key->excludes(del_prefix_opt)->excludes(del_from_opt)->excludes(del_to_opt);
  del->add_flag("--durable", durable, "reply only once the delete is durable");
  del->footer(R"(A range delete (--prefix P, or --from A --to B for the half-open range [A, B))
is one atomic write: one WAL record and one LSN, all of the keys or none across a
crash. It prints the number of keys it deleted (0 is not an error: exit 0).)");

  std::string backup_file;
  auto* backup = app.add_subcommand(
      "backup", "write an online, consistent backup of kvd to FILE (verified); prints OK lsn=N keys=K bytes=B");
  backup->add_option("FILE", backup_file, "where to write it (atomically: FILE is whole or untouched)")->required();
  backup->footer(R"(The backup is a snapshot taken by a forked child of kvd, pulled over the socket,
written to FILE.tmp-PID, fsynced, verified (every checksum, its LSN and key count)
and renamed to FILE. Restore it with kvd --restore FILE --config kvd.toml into an
empty data directory (docs/backup.md). A large data set may need a longer --timeout.)");

  std::vector<std::string> batch_args;
  auto* batch = app.add_subcommand("batch", "apply puts and deletes atomically (one BATCH, one LSN); prints OK");
  batch->add_option("OPS", batch_args, "put KEY VALUE | del KEY ...; none or - : one per line from stdin");
  batch->add_flag("--durable", durable, "reply only once the batch is durable");
  batch->footer(R"(Arguments: kvctl batch put user:1 alice put user:2 bob del user:3
(write `kvctl batch -- put k -1` when a key or value starts with '-').
Stdin: one operation per line, PUT key value or DEL key, with the REPL's tokens
("double quotes" and \" \\ \n \t \r \xNN escapes); blank lines and # comments
are skipped:  printf 'PUT a 1\nDEL b\n' | kvctl batch
Either every operation is applied or none, also across a crash. A syntax error
sends nothing and exits 2.)");

  auto* size = app.add_subcommand("size", "print the number of keys");

  std::string count_prefix;
  auto* count = app.add_subcommand("count", "print the number of keys with a prefix");
  count->add_option("--prefix,-p", count_prefix, "count only keys starting with this");
  count->add_option("--min-lsn", min_lsn, kMinLsnHelp);

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
  scan->add_option("--min-lsn", min_lsn, kMinLsnHelp);

  auto* flush = app.add_subcommand("flush", "fdatasync the WAL now; prints the durable LSN");
  auto* snapshot = app.add_subcommand("snapshot", "take a snapshot now; prints lsn=N path=FILE once installed");

  bool status_json = false;
  auto* status = app.add_subcommand("status", "server status, grouped (version, keys, durability, WAL, ...)");
  status->add_flag("--json", status_json, "print the server's status as one JSON object");

  auto* ping = app.add_subcommand("ping", "check the server answers; prints PONG");

  bool promote_force = false;
  uint64_t promote_epoch = 0;
  auto* promote = app.add_subcommand("promote", "make this replica the primary in a new epoch; prints epoch=E");
  promote->add_flag("--force", promote_force, "promote even if this replica may lack acknowledged writes");
  promote->add_option("--epoch", promote_epoch, "the epoch to begin (default: the highest seen + 1)");
  promote->footer(
      "Refused, with the reason, when the replica may lack writes the primary acknowledged: its durable\n"
      "LSN is behind the primary's last reported one, or the link is up but the primary went silent.\n"
      "See docs/replication.md section 7.");
  std::string replicate_from;
  auto* replicate = app.add_subcommand("replicate", "make this node a replica of another primary");
  replicate->add_option("--from", replicate_from, "HOST:PORT of the primary's [replication] listen")->required();
  replicate->footer(
      "A primary is fenced first (its writes refused), then it follows HOST:PORT; a log that diverged\n"
      "from the new primary's is cut and set aside in wal/diverged-<first>-<last>.broken.");

  std::string cfg_name;
  std::string cfg_value;
  auto* config = app.add_subcommand("config", "read or change runtime settings");
  config->require_subcommand(1);
  auto* config_get = config->add_subcommand("get", "print NAME's value, or every NAME = value");
  config_get->add_option("NAME", cfg_name, "e.g. durability.batch_size");
  auto* config_set = config->add_subcommand("set", "change a runtime setting (value as in kvd.toml)");
  config_set->add_option("NAME", cfg_name, "e.g. durability.mode")->required();
  config_set->add_option("VALUE", cfg_value, "e.g. batch, 64, 10ms")->required();

  auto* cluster = app.add_subcommand("cluster", "the cluster as etcd sees it (needs --cluster http://IP:PORT,...)");
  cluster->require_subcommand(1);
  bool cluster_json = false;
  auto* cluster_status = cluster->add_subcommand(
      "status", "members, roles, epochs, LSNs and lag, the sync set, and each etcd endpoint's health");
  cluster_status->add_option("--prefix", cluster_prefix, "the cluster's etcd prefix (same as --cluster-prefix)");
  cluster_status->add_flag("--json", cluster_json, "one JSON object (schema in docs/cluster.md)");

  std::string switchover_to;
  std::string switchover_timeout = "10s";
  auto* switchover = app.add_subcommand(
      "switchover", "planned handover of the primary role to NODE (needs --cluster http://IP:PORT,...)");
  switchover->add_option("--to", switchover_to, "the member that becomes primary")->required();
  switchover->add_option("--prefix", cluster_prefix, "the cluster's etcd prefix (same as --cluster-prefix)");
  switchover->add_option("--timeout", switchover_timeout, "how long to wait for NODE to become primary")
      ->capture_default_str();
  switchover->footer(
      "kvctl asks, the nodes hand over: it puts <prefix>/switchover = {\"from\", \"to\"} on a short lease\n"
      "(only if no switchover is pending and the primary did not change) and waits until the leader key\n"
      "names NODE in a new epoch. Prints OK from=A to=B epoch=E took_ms=N. On timeout the request is\n"
      "withdrawn and kvctl exits 3. NODE must be a live member; outside the sync set, the primary makes it\n"
      "the synchronous member first (once it has every write).");

  BenchOptions bo;
  auto* bench = app.add_subcommand("bench", "load generator: ops/s and latency percentiles (like redis-benchmark)");
  bench->footer(
      "bench never changes the server's configuration: it runs in the server's durability mode;\n"
      "--durability sync (or --durable-flag) asks for a durable reply per PUT instead.\n"
      "Keys are PREFIX + 12 digits; after the run every key of the key space under the prefix\n"
      "is deleted (also after Ctrl-C) unless --keep. --prefill writes every key once first\n"
      "(then FLUSH). Ctrl-C ends the run early and still reports.");
  bench->add_option("--clients,-c", bo.clients, "connections (each its own socket)")->capture_default_str();
  auto* req_opt = bench->add_option("--requests,-n", bo.requests, "total requests (default 100000)");
  auto* dur_opt = bench->add_option("--duration,-d", bo.duration, "run this long instead, e.g. 10s, 500ms, 1m");
  req_opt->excludes(dur_opt);
  bench->add_option("--pipeline,-P", bo.pipeline, "requests in flight per connection")->capture_default_str();
  bench->add_option("--value-size", bo.value_size, "value bytes")->capture_default_str();
  bench->add_option("--key-space,-k", bo.key_space, "keys drawn uniformly from PREFIX000000000000 ..")
      ->capture_default_str();
  bench->add_option("--ratio,-r", bo.ratio, "PUT:GET mix, e.g. 1:0 (PUT only), 10:90")->capture_default_str();
  bench->add_option("--prefix", bo.prefix, "key prefix")->capture_default_str();
  bench->add_flag("--keep", bo.keep, "keep the keys after the run");
  bench->add_option("--durability", bo.durability,
                    "sync: durable flag on every PUT; batch | none: only if the server already runs so")
      ->check(CLI::IsMember({"sync", "batch", "none"}));
  bench->add_option("--resp", bo.resp,
                    "drive kvd's RESP listener (Unix socket or HOST:PORT) with SET/GET instead of the native "
                    "protocol; --socket stays the control connection");
  bench->add_flag("--durable-flag", bo.durable_flag, "set the per-request durable flag on every PUT");
  bench->add_flag("--prefill", bo.prefill, "write every key once before measuring");
  bench->add_flag("--json", bo.json, "print one JSON object");
  bench->add_option("--threads,-t", bo.threads, "generator threads (epoll loops)")->capture_default_str();
  bench->add_option("--seed", bo.seed, "random seed for keys and the mix")->capture_default_str();
  bench->add_option("--ack-log", bo.ack_log,
                    "write '<lsn> <ack_ns>' (CLOCK_MONOTONIC) of every acknowledged PUT to FILE (bounded)");
  bool no_progress = false;
  bench->add_flag("--no-progress", no_progress, "no live progress line on stderr");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // A word where a command belongs: name it, rather than CLI11's "not expected".
    if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr && app.get_subcommands().empty()) {
      for (const std::string& extra : app.remaining()) {
        if (extra.starts_with('-')) continue;
        std::cerr << "kvctl: unknown command '" << EscapeForLine(extra) << "' (see kvctl --help)\n";
        return kExitUsage;
      }
    }
    std::cerr << "kvctl: " << e.what() << " (see kvctl --help)\n";
    return kExitUsage;
  }
  const auto timeout = ParseTimeout(timeout_flag);
  if (!timeout.has_value()) {
    std::cerr << "kvctl: --timeout: not a duration: '" << EscapeForLine(timeout_flag) << "' (e.g. 5s, 500ms, 0)\n";
    return kExitUsage;
  }

  if (*cluster_status || *switchover) {
    const char* what = *switchover ? "kvctl switchover" : "kvctl cluster status";
    auto endpoints = EtcdGateway::ParseEndpoints(cluster_flag);
    if (!endpoints.has_value()) {
      std::cerr << what << ": --cluster: " << endpoints.error().message() << "\n";
      return kExitUsage;
    }
    if (kvd::Status st = EtcdGateway::CheckTls(*endpoints, etcd_tls); !st.ok()) {
      std::cerr << what << ": " << st.message() << "\n";
      return kExitUsage;
    }
    auto prefix = NormalizePrefix(cluster_prefix);
    if (!prefix.has_value()) {
      std::cerr << what << ": --prefix: " << prefix.error().message() << "\n";
      return kExitUsage;
    }
    EtcdGateway gw(std::move(*endpoints), *timeout, etcd_tls);
    if (*cluster_status) return CmdClusterStatus(gw, *prefix, cluster_json, std::cout, std::cerr);
    const auto wait = ParseTimeout(switchover_timeout);
    if (!wait.has_value() || wait->count() == 0) {
      std::cerr << what << ": --timeout: not a positive duration: '" << EscapeForLine(switchover_timeout) << "'\n";
      return kExitUsage;
    }
    return CmdSwitchover(gw, {*prefix, switchover_to, *wait}, std::cout, std::cerr);
  }

  SocketSources sources = SocketSourcesFromEnv();
  if (socket_opt->count() > 0) sources.socket_flag = socket_flag;
  if (config_opt->count() > 0) sources.config_flag = config_flag;
  kvd::Result<std::string> socket = std::string();
  if (cluster_opt->count() > 0) {
    auto spec = ParseClusterSpec(cluster_flag);
    if (!spec.has_value()) {
      std::cerr << "kvctl: --cluster: " << spec.error().message() << "\n";
      return kExitUsage;
    }
    const std::vector<std::string> etcd_endpoints =
        spec->kind == ClusterSpec::kEtcd ? spec->items : std::vector<std::string>();
    if (kvd::Status st = EtcdGateway::CheckTls(etcd_endpoints, etcd_tls); !st.ok()) {
      std::cerr << "kvctl: --cluster: " << st.message() << "\n";
      return kExitUsage;
    }
    auto prefix = NormalizePrefix(cluster_prefix);
    if (!prefix.has_value()) {
      std::cerr << "kvctl: --cluster-prefix: " << prefix.error().message() << "\n";
      return kExitUsage;
    }
    socket = ResolveClusterSocket(*spec, *prefix, *timeout, etcd_tls);
    if (!socket.has_value()) {
      std::cerr << "kvctl: --cluster: " << socket.error().message() << "\n";
      return kExitServer;
    }
  } else {
    socket = ResolveSocket(sources);
    if (!socket.has_value()) {
      std::cerr << "kvctl: " << socket.error().message() << "\n";
      return kExitUsage;
    }
  }
  const CommandContext ctx{*socket, std::cout, std::cerr, ::isatty(STDOUT_FILENO) == 1, *timeout, min_lsn};

  if (*put) return CmdPut(ctx, key, value == "-" ? ReadAllStdin() : value, durable);
  if (*get) return CmdGet(ctx, key, raw);
  if (*batch) {
    const bool from_stdin = batch_args.empty() || (batch_args.size() == 1 && batch_args[0] == "-");
    auto entries = from_stdin ? ParseBatchLines(std::cin) : ParseBatchArgs(batch_args);
    if (!entries.has_value()) {
      std::cerr << "kvctl batch: " << entries.error().message() << " (nothing was sent)\n";
      return kExitUsage;
    }
    return CmdBatch(ctx, *entries, durable);
  }
  if (*del) {
    if (del_key->count() > 0) return CmdDel(ctx, key, durable);
    DelRangeOptions ro;
    if (del_prefix_opt->count() > 0) ro.prefix = del_prefix;
    if (del_from_opt->count() > 0) ro.from = del_from;
    if (del_to_opt->count() > 0) ro.to = del_to;
    if (!ro.prefix && !ro.from && !ro.to) {
      std::cerr << "kvctl del: give KEY, --prefix P or --from A --to B (see kvctl del --help)\n";
      return kExitUsage;
    }
    return CmdDelRange(ctx, ro, durable);
  }
  if (*backup) return CmdBackup(ctx, backup_file);
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
  if (*promote) return CmdPromote(ctx, promote_force, promote_epoch);
  if (*replicate) return CmdReplicate(ctx, replicate_from);
  if (*config_get) return CmdConfigGet(ctx, cfg_name);
  if (*config_set) return CmdConfigSet(ctx, cfg_name, cfg_value);
  if (*bench) {
    bo.progress = !no_progress;
    bo.timeout = *timeout;
    return RunBench(*socket, bo, std::cout, std::cerr);
  }
  return RunRepl(*socket, *timeout, std::cin, std::cout, ::isatty(STDIN_FILENO) == 1);
}

}  // namespace kvctl
