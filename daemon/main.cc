// kvd's command line. Exit codes: 0 ok; 1 start-up failed or --check-data
// found data that recovery would drop; 2 usage or configuration error;
// 3 fatal runtime error (RunDaemon).
//
// Exceptions from CLI11, toml11 and spdlog are caught here and nowhere else
// in the daemon (config.cc turns toml11's into a Status itself).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sys/check_data.h"
#include "sys/restore.h"
#include "config/config.h"
#include "daemon.h"
#include "cluster/etcd_tls.h"
#include "repl/repl_tls.h"
#include "sys/log.h"
#ifdef KVD_FAULT_INJECTION
#include <cerrno>
#include <cstdint>
#include <random>

#include "cluster/cluster_faults.h"
#include "kvd/fault_env.h"
#endif

namespace {

constexpr int kUsageError = 2;
constexpr int kFatal = 3;
// Set once RunDaemon runs: an exception after that is a fatal runtime error.
bool g_serving = false;

#ifdef KVD_FAULT_INJECTION
// --fault-env SPEC[,SPEC...] (tests/integration/test_disk_faults.py, tests/crash):
// power-loss, writeback (with power-loss), fail-sync-after=N, space-limit=BYTES,
// stall-sync-file=PATH (tests/integration/test_sync_replication.py).
struct FaultSpec {
  bool power_loss = false;
  bool writeback = false;
  std::optional<int> fail_sync_after;
  uint64_t space_limit = 0;
  std::string stall_sync_file;
};

// The digits after `prefix` in item, or nullopt.
std::optional<uint64_t> NumberAfter(std::string_view item, std::string_view prefix) {
  if (!item.starts_with(prefix) || item.size() == prefix.size() || item.size() > prefix.size() + 15) return {};
  uint64_t n = 0;
  for (char c : item.substr(prefix.size())) {
    if (c < '0' || c > '9') return {};
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

std::optional<FaultSpec> ParseFaultSpec(std::string_view spec) {
  FaultSpec out;
  while (!spec.empty()) {
    const size_t comma = spec.find(',');
    const std::string_view item = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    if (item == "power-loss") {
      out.power_loss = true;
    } else if (item == "writeback") {
      out.writeback = true;
    } else if (auto n = NumberAfter(item, "fail-sync-after="); n && *n < 1000000000) {
      out.fail_sync_after = static_cast<int>(*n);
    } else if (auto b = NumberAfter(item, "space-limit="); b && *b > 0) {
      out.space_limit = *b;
    } else if (item.starts_with("stall-sync-file=") && item.size() > 16) {
      out.stall_sync_file = std::string(item.substr(16));
    } else {
      return {};
    }
  }
  if (out.writeback && !out.power_loss) return {};
  return out;
}
#endif

int Run(int argc, char** argv) {
  CLI::App app{"kvd: a crash-consistent key-value daemon"};
  std::string config_path = "/etc/kvd/kvd.toml";
  bool check_config = false, check_data = false, json = false;
  app.add_option("-c,--config", config_path, "configuration file")->capture_default_str();
  app.add_flag("--check-config", check_config, "validate the configuration, print the effective values, exit");
  auto* check_data_flag =
      app.add_flag("--check-data", check_data,
                   "examine the WAL and snapshots offline (changing nothing) and report what recovery would do; "
                   "exit 0 if nothing would be lost, 1 if data would be dropped or start-up refused");
  app.add_flag("--json", json, "with --check-data: print one JSON object")->needs(check_data_flag);
  std::string restore_file;
  auto* restore_opt = app.add_option("--restore", restore_file,
                                     "load a backup (kvctl backup, kvd --salvage) into the EMPTY data directory the "
                                     "config names, then exit; start kvd normally afterwards (docs/backup.md)");
  std::vector<std::string> salvage_files;
  std::string salvage_out;
  auto* salvage_opt = app.add_option("--salvage", salvage_files,
                                     "offline: read every valid record from set-aside WAL files (*.broken) and "
                                     "write what they hold, in the backup format, to --out (docs/backup.md)");
  auto* out_opt = app.add_option("--out", salvage_out, "with --salvage: the file to write (must not exist)");
  salvage_opt->needs(out_opt);
  out_opt->needs(salvage_opt);
  restore_opt->excludes(salvage_opt)->excludes(check_data_flag);
  app.set_version_flag("--version", std::string("kvd ") + KVD_VERSION);
#ifdef KVD_FAULT_INJECTION
  std::string fault_env;
  app.add_option("--fault-env", fault_env,
                 "TEST BUILDS ONLY: run on the fault-injecting Env; comma-separated. power-loss: file data "
                 "reaches the disk only on fdatasync, directory changes are undone at the next start unless "
                 "the directory was fsynced, so SIGKILL loses exactly what a power cut would; writeback (with "
                 "power-loss): random unsynced pages reach the disk early, in any order; fail-sync-after=N: the "
                 "fdatasync/fsync after N successful ones fails once with EIO; space-limit=BYTES: files written "
                 "may hold BYTES in all, then ENOSPC; stall-sync-file=PATH: while PATH exists every fdatasync waits "
                 "(at most 60 s each)")
      ->check(CLI::Validator(
          [](std::string& m) {
            return ParseFaultSpec(m) ? std::string()
                                     : "not power-loss[,writeback], fail-sync-after=N, space-limit=BYTES or "
                                       "stall-sync-file=PATH";
          },
          ""));
  std::string fault_cluster;
  app.add_option("--fault-cluster", fault_cluster,
                 "TEST BUILDS ONLY: takeover-compare-fails: etcd refuses this node's takeover delete by its "
                 "compare, as when the sync set changed meanwhile; takeover-answer-lost: the same, and the "
                 "answer is lost (tests/cluster/test_cluster_takeover.py)")
      ->check(CLI::IsMember({"takeover-compare-fails", "takeover-answer-lost"}));
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" with exit code 0.
    return app.exit(e) == 0 ? 0 : kUsageError;
  }
  if (salvage_opt->count() > 0) {
    // Needs no configuration: it reads only the files named.
    return kvd::daemon::Salvage(salvage_files, salvage_out, std::cout, std::cerr, kvd::Env::Default());
  }
  if (check_config && check_data) {
    std::cerr << "kvd: --check-config and --check-data are exclusive\n";
    return kUsageError;
  }

  kvd::Result<kvd::daemon::Config> config = kvd::daemon::LoadConfig(config_path);
  if (!config) {
    std::cerr << "kvd: " << config.error().message() << "\n";
    return kUsageError;
  }
  if (check_config) {
    // Also the files the config names that are read at start-up.
    if (auto tls = kvd::daemon::MakeReplicationTls(config->replication); !tls) {
      std::cerr << "kvd: " << config_path << ": " << tls.error().message() << "\n";
      return kUsageError;
    }
    if (kvd::Status st = kvd::daemon::CheckEtcdTlsFiles(config->cluster); !st.ok()) {
      std::cerr << "kvd: " << config_path << ": " << st.message() << "\n";
      return kUsageError;
    }
    std::cout << kvd::daemon::RenderConfig(*config);
    return 0;
  }
  if (check_data) return kvd::daemon::CheckData(*config, json, std::cout);
  if (restore_opt->count() > 0) {
    return kvd::daemon::Restore(*config, restore_file, std::cout, std::cerr, kvd::Env::Default());
  }

  kvd::daemon::InitLogging(*config);
  kvd::Env* env = kvd::Env::Default();
#ifdef KVD_FAULT_INJECTION
  // Outlives RunDaemon: the engine's files belong to it until exit.
  std::unique_ptr<kvd::FaultEnv> faulty;
  if (!fault_env.empty()) {
    const FaultSpec spec = *ParseFaultSpec(fault_env);
    kvd::FaultEnv::Options options;
    options.seed = std::random_device{}();  // which unsynced pages reach the disk early
    options.write_through_on_sync = spec.power_loss;
    options.writeback = spec.writeback;
    faulty = std::make_unique<kvd::FaultEnv>(env, options);
    if (spec.fail_sync_after) faulty->FailAfter(kvd::FaultEnv::Op::kSync, *spec.fail_sync_after, EIO);
    if (spec.space_limit > 0) faulty->SetSpaceLimit(spec.space_limit);
    if (!spec.stall_sync_file.empty()) faulty->StallSyncWhileFileExists(spec.stall_sync_file);
    env = faulty.get();
    spdlog::warn("running on the fault-injecting Env ({}): for tests only", fault_env);
  }
  if (!fault_cluster.empty()) {
    kvd::daemon::TestClusterFaults().takeover_compare_fails = fault_cluster == "takeover-compare-fails";
    kvd::daemon::TestClusterFaults().takeover_answer_lost = fault_cluster == "takeover-answer-lost";
    spdlog::warn("--fault-cluster {}: for tests only", fault_cluster);
  }
#endif
  g_serving = true;
  return kvd::daemon::RunDaemon(*config, env);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    // The serving path reports errors as Status; anything thrown is from
    // start-up (CLI11, spdlog set-up) or a bug.
    std::fprintf(stderr, "kvd: %s\n", e.what());
    return g_serving ? kFatal : kUsageError;
  }
}
