#include "bench.h"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <functional>
#include <ostream>

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
  if (o.value_size > kvd::kMaxValueBytes) return usage(kvd::Status::InvalidArgument("--value-size too large"));
  o.threads = std::min(o.threads, o.clients);
  spec.clients = o.clients;
  spec.threads = o.threads;
  spec.pipeline = o.pipeline;
  spec.value_size = o.value_size;
  spec.key_space = o.key_space;
  spec.requests = o.requests;
  spec.seed = o.seed;
  spec.durable_flag = o.durable_flag;

  auto server_error = [&](const kvd::Status& s) {
    err << "kvctl bench: " << s.message() << "\n";
    return kExitServer;
  };
  auto control = ConnectTo(socket_path);
  if (!control.has_value()) return server_error(control.error());
  std::unique_ptr<kvd::Client> ctl = std::move(*control);

  std::string old_mode;
  if (auto cfg = ctl->ConfigGet(kModeKey); cfg.has_value()) {
    if (auto v = ConfigValueText(*cfg, kModeKey); v.has_value()) old_mode = *v;
  }
  if ((!o.durability.empty() || o.prefill) && old_mode.empty()) {
    return server_error(kvd::Status::Unsupported("cannot read durability.mode from the server"));
  }
  std::string current_mode = old_mode;
  auto set_mode = [&](const std::string& mode) -> kvd::Status {
    if (mode == current_mode) return kvd::Status::Ok();
    kvd::Status s = ctl->ConfigSet(kModeKey, mode);
    if (s.code() == kvd::Code::kIOError) {  // e.g. the control connection hit the idle timeout
      auto again = ConnectTo(socket_path);
      if (!again.has_value()) return again.error();
      ctl = std::move(*again);
      s = ctl->ConfigSet(kModeKey, mode);
    }
    KVD_RETURN_IF_ERROR(s.Annotate("CONFIG SET durability.mode " + mode));
    current_mode = mode;
    return kvd::Status::Ok();
  };
  // Whatever happens from here on, the server gets its mode back.
  struct Restore {
    std::function<void()> fn;
    ~Restore() { fn(); }
  } restore{[&] {
    if (!old_mode.empty() && current_mode != old_mode) {
      if (kvd::Status s = set_mode(old_mode); !s.ok()) err << "kvctl bench: could not restore mode: " << s.message() << "\n";
    }
  }};

  InterruptScope interrupts;
  ProgressLine progress(o.progress && ::isatty(STDERR_FILENO));

  if (o.prefill) {
    if (kvd::Status s = set_mode("none"); !s.ok()) return server_error(s);
    LoadSpec pre = spec;
    pre.prefill = true;
    pre.pipeline = std::max<uint32_t>(spec.pipeline, 16);
    pre.durable_flag = false;
    auto r = RunLoad(socket_path, pre, &g_stop, [&](const LoadProgress& p) { progress.Update("prefill", p); });
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
  const std::string run_mode = o.durability.empty() ? old_mode : o.durability;
  if (!run_mode.empty()) {
    if (kvd::Status s = set_mode(run_mode); !s.ok()) return server_error(s);
  }

  rusage before{};
  ::getrusage(RUSAGE_SELF, &before);
  auto load = RunLoad(socket_path, spec, &g_stop, [&](const LoadProgress& p) { progress.Update("bench", p); });
  rusage after{};
  ::getrusage(RUSAGE_SELF, &after);
  progress.Clear();
  if (!load.has_value()) return server_error(load.error());

  BenchReport report;
  report.options = o;
  report.durability = run_mode.empty() ? "unknown" : run_mode;
  report.load = std::move(*load);
  report.cpu_user_s = Seconds(after.ru_utime) - Seconds(before.ru_utime);
  report.cpu_sys_s = Seconds(after.ru_stime) - Seconds(before.ru_stime);
  out << (o.json ? FormatBenchJson(report) + "\n" : FormatBenchText(report)) << std::flush;
  if (report.load.errors > 0) {
    err << "kvctl bench: " << report.load.errors << " requests failed; first: " << report.load.first_error << "\n";
    return kExitServer;
  }
  return kExitOk;
}

}  // namespace kvctl
