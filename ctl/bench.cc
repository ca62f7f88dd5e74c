#include "bench.h"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <ostream>
#include <vector>

#include "ack_log.h"
#include "connect.h"
#include "exit_codes.h"
#include "keyspace.h"
#include "kvd/types.h"
#include "status_print.h"

namespace kvctl {
namespace {

constexpr const char* kModeKey = "durability.mode";

std::atomic<bool> g_stop{false};
extern "C" void OnInterrupt(int) { g_stop.store(true); }

// Ctrl-C ends the run early (the report and the mode restore still happen).
class InterruptScope {
 public:
  InterruptScope() {
    g_stop.store(false);
    struct sigaction sa {};
    sa.sa_handler = OnInterrupt;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
  }
  ~InterruptScope() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

double Seconds(const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; }

// The live line: total so far and the rate over the last second.
class ProgressLine {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled) {}
  void Update(const char* phase, const LoadProgress& p) {
    if (!enabled_) return;
    const double dt = p.elapsed_s - last_s_;
    const double rate = dt > 0 ? static_cast<double>(p.completed - last_completed_) / dt : 0.0;
    std::fprintf(stderr, "\r\033[K%s %6.1f s  %llu requests  %.0f ops/s  errors %llu", phase, p.elapsed_s,
                 static_cast<unsigned long long>(p.completed), rate, static_cast<unsigned long long>(p.errors));
    std::fflush(stderr);
    last_s_ = p.elapsed_s;
    last_completed_ = p.completed;
    shown_ = true;
  }
  void Clear() {
    if (shown_) std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    shown_ = false;
    last_s_ = 0;
    last_completed_ = 0;
  }

 private:
  bool enabled_;
  bool shown_ = false;
  double last_s_ = 0;
  uint64_t last_completed_ = 0;
};

}  // namespace

kvd::Status DeleteBenchKeys(const std::string& socket_path, std::chrono::milliseconds timeout, const BenchKeys& keys,
                            uint64_t key_space) {
  KVD_ASSIGN_OR_RETURN(auto client, ConnectTo(socket_path, timeout));
  // Exactly the keys a run over this key space can write: [Key(0), Key(key_space)).
  const std::string first = keys.Key(0);
  const std::string end = key_space < kMaxKeySpace ? keys.Key(key_space) : std::string();
  kvd::proto::ScanArgs scan;
  scan.kind = kvd::proto::ScanArgs::kRange;
  // Pages (and so delete batches) stay far below the 64 MiB batch limit whatever the prefix.
  scan.limit = static_cast<uint32_t>(
      std::clamp<uint64_t>((16u << 20) / (keys.size() + 16), 1, kvd::proto::kMaxScanLimit));
  scan.a = first;
  scan.b = end;
  if (end.empty()) {
    scan.kind = kvd::proto::ScanArgs::kPrefix;
    scan.a = keys.prefix();
  }
  std::string after;
  while (true) {
    scan.after = after;
    KVD_ASSIGN_OR_RETURN(auto page, client->Scan(scan));
    if (page.items.empty()) return kvd::Status::Ok();
    std::vector<kvd::BatchOp> ops;
    ops.reserve(page.items.size());
    for (const auto& item : page.items) ops.push_back({kvd::OpType::kDel, item.first, {}});
    KVD_RETURN_IF_ERROR(client->Batch(ops).error());
    if (!page.more) return kvd::Status::Ok();
    after = page.items.back().first;
  }
}

int RunBench(const std::string& socket_path, const BenchOptions& options, std::ostream& out, std::ostream& err) {
  auto usage = [&](const kvd::Status& s) {
    err << "kvctl bench: " << s.message() << "\n";
    return kExitUsage;
  };
  BenchOptions o = options;
  LoadSpec spec;
  auto ratio = ParseRatio(o.ratio);
  if (!ratio.has_value()) return usage(ratio.error());
  spec.put_weight = ratio->first;
  spec.get_weight = ratio->second;
  if (!o.duration.empty()) {
    if (o.requests != 0) return usage(kvd::Status::InvalidArgument("--requests and --duration exclude each other"));
    auto d = ParseBenchDuration(o.duration);
    if (!d.has_value()) return usage(d.error());
    spec.duration = *d;
  } else if (o.requests == 0) {
    o.requests = kDefaultRequests;
  }
  if (!o.durability.empty() && !kvd::ParseDurabilityMode(o.durability)) {
    return usage(kvd::Status::InvalidArgument("--durability must be sync, batch or none"));
  }
  if (o.clients == 0 || o.pipeline == 0 || o.key_space == 0 || o.threads == 0) {
    return usage(kvd::Status::InvalidArgument("--clients, --pipeline, --key-space and --threads must be positive"));
  }
  if (o.key_space > kMaxKeySpace) return usage(kvd::Status::InvalidArgument("--key-space must be below 10^12"));
  // The prefix is what makes the keys findable and safe to delete afterwards.
  if (o.prefix.empty() || o.prefix.size() + kBenchKeyDigits > kvd::kMaxKeyBytes) {
    return usage(kvd::Status::InvalidArgument("--prefix must be 1 to " +
                                              std::to_string(kvd::kMaxKeyBytes - kBenchKeyDigits) + " bytes"));
  }
  if (o.value_size > kvd::kMaxValueBytes) return usage(kvd::Status::InvalidArgument("--value-size too large"));
  o.threads = std::min(o.threads, o.clients);
  spec.clients = o.clients;
  spec.threads = o.threads;
  spec.pipeline = o.pipeline;
  spec.value_size = o.value_size;
  spec.key_space = o.key_space;
  spec.requests = o.requests;
  spec.seed = o.seed;
  spec.key_prefix = o.prefix;
  spec.max_ack_samples = o.ack_log.empty() ? 0 : kMaxAckSamples;
  spec.resp = !o.resp.empty();
  if (spec.resp && o.durable_flag) {
    return usage(kvd::Status::InvalidArgument("--durable-flag is native only: RESP has no per-request durable flag"));
  }
  if (spec.resp && !o.ack_log.empty()) {
    return usage(kvd::Status::InvalidArgument("--ack-log needs LSNs, which RESP replies do not carry"));
  }
  const std::string& load_endpoint = spec.resp ? o.resp : socket_path;

  auto server_error = [&](const kvd::Status& s) {
    err << "kvctl bench: " << s.message() << "\n";
    return kExitServer;
  };
  auto control = ConnectTo(socket_path, o.timeout);
  if (!control.has_value()) return server_error(control.error());
  std::unique_ptr<kvd::Client> ctl = std::move(*control);

  // The server's configuration is never changed (a killed bench must not
  // leave it in another mode): the run uses the server's mode, and sync
  // replies are asked per request with the durable flag.
  std::string server_mode;
  if (auto cfg = ctl->ConfigGet(kModeKey); cfg.has_value()) {
    if (auto v = ConfigValueText(*cfg, kModeKey); v.has_value()) server_mode = *v;
  }
  if (spec.resp && !o.durability.empty() && o.durability != server_mode) {
    return usage(kvd::Status::InvalidArgument(
        "--durability " + o.durability + " with --resp: the server runs in mode '" + server_mode +
        "' and RESP cannot ask for sync per request; run `kvctl config set " + kModeKey + " " + o.durability +
        "` yourself first"));
  }
  if (!o.durability.empty() && o.durability != "sync" && o.durability != server_mode) {
    return usage(kvd::Status::InvalidArgument(
        "--durability " + o.durability + ": the server runs in mode '" + server_mode +
        "' and kvctl bench never changes it; only sync can be asked per request. Run `kvctl config set " +
        kModeKey + " " + o.durability + "` yourself first, or use --durability sync"));
  }
  spec.durable_flag = !spec.resp && (o.durable_flag || o.durability == "sync");
  const std::string run_mode = spec.durable_flag ? "sync" : (server_mode.empty() ? "unknown" : server_mode);

  // Unless --keep, the run's keys go away afterwards, whatever happened.
  struct Cleanup {
    std::function<void()> fn;
    ~Cleanup() { fn(); }
  } cleanup{[&] {
    if (o.keep) return;
    if (kvd::Status s = DeleteBenchKeys(socket_path, o.timeout, BenchKeys(o.prefix), o.key_space); !s.ok()) {
      err << "kvctl bench: could not delete the bench keys: " << s.message() << "\n";
    }
  }};

  InterruptScope interrupts;
  ProgressLine progress(o.progress && ::isatty(STDERR_FILENO));

  if (o.prefill) {
    LoadSpec pre = spec;
    pre.prefill = true;
    pre.pipeline = std::max<uint32_t>(spec.pipeline, 16);
    pre.durable_flag = false;
    auto r = RunLoad(load_endpoint, pre, &g_stop, [&](const LoadProgress& p) { progress.Update("prefill", p); });
    progress.Clear();
    if (!r.has_value()) return server_error(r.error());
    if (r->errors > 0) {
      return server_error(kvd::Status::IOError("prefill: " + std::to_string(r->errors) + " errors; first: " +
                                               r->first_error));
    }
    if (auto flushed = ctl->FlushWal(); !flushed.has_value()) return server_error(flushed.error());
    char line[128];
    std::snprintf(line, sizeof(line), "kvctl bench: prefilled %llu keys in %.2f s\n",
                  static_cast<unsigned long long>(r->requests), r->seconds);
    err << line;
    if (g_stop.load()) return server_error(kvd::Status::ShuttingDown("interrupted during prefill"));
  }
  rusage before{};
  ::getrusage(RUSAGE_SELF, &before);
  auto load = RunLoad(load_endpoint, spec, &g_stop, [&](const LoadProgress& p) { progress.Update("bench", p); });
  rusage after{};
  ::getrusage(RUSAGE_SELF, &after);
  progress.Clear();
  if (!load.has_value()) return server_error(load.error());

  BenchReport report;
  report.options = o;
  report.durability = run_mode;
  report.load = std::move(*load);
  report.cpu_user_s = Seconds(after.ru_utime) - Seconds(before.ru_utime);
  report.cpu_sys_s = Seconds(after.ru_stime) - Seconds(before.ru_stime);
  out << (o.json ? FormatBenchJson(report) + "\n" : FormatBenchText(report)) << std::flush;
  if (!o.ack_log.empty()) {
    if (kvd::Status s = WriteAckLog(o.ack_log, std::move(report.load.acks), report.load.acks_dropped); !s.ok()) {
      err << "kvctl bench: " << s.message() << "\n";
      return kExitUsage;
    }
  }
  if (report.load.errors > 0) {
    err << "kvctl bench: " << report.load.errors << " requests failed; first: " << report.load.first_error << "\n";
    return kExitServer;
  }
  return kExitOk;
}

}  // namespace kvctl
