#include "node/status_report.h"

#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>


namespace kvd::daemon {
namespace {

using nlohmann::json;
using std::chrono::duration_cast;

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}
double Millis(std::chrono::microseconds d) { return static_cast<double>(d.count()) / 1000.0; }

json RecoveryJson(const RecoveryReport& r) {
  json j;
  j["snapshot_path"] = r.snapshot_path;
  j["snapshot_lsn"] = r.snapshot_lsn;
  j["snapshot_entries"] = r.snapshot_entries;
  j["snapshot_failures"] = r.snapshot_failures;
  j["records_replayed"] = r.wal.records_replayed;
  j["bytes_replayed"] = r.wal.bytes_replayed;
  j["segments"] = r.wal.segments.size();
  j["last_lsn"] = r.last_lsn;
  j["keys"] = r.keys;
  j["digest"] = r.digest;
  j["duration_ms"] = Millis(r.duration);
  j["truncated"] = r.wal.truncated;
  j["truncated_segment"] = r.wal.truncated_segment;
  j["truncated_offset"] = r.wal.truncated_offset;
  j["dropped_bytes"] = r.wal.dropped_bytes;
  j["broken_file"] = r.wal.broken_file;
  j["set_aside"] = r.wal.set_aside;
  return j;
}

}  // namespace

uint64_t ProcessRssBytes() {
  std::ifstream f("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  if (!(f >> size >> resident)) return 0;
  return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

std::string BuildStatusJson(const StatusInputs& in) {
  const auto now = std::chrono::steady_clock::now();
  const Engine& e = *in.engine;
  const EngineStats st = e.stats();
  const DurabilityOptions d = e.durability();
  json j;
  j["version"] = KVD_VERSION;
  j["pid"] = static_cast<int64_t>(::getpid());
  j["uptime_s"] = Seconds(now - in.started);
  j["state"] = in.stopping ? "stopping" : "serving";
  j["role"] = std::string(in.role);
  const Status fence = e.write_fence();
  j["write_fence"] = fence.ok() ? std::string() : fence.ToString();
  j["epoch"] = e.current_epoch();
  j["keys"] = e.state().size();
  // Order-independent hash of every (key, value): equal after two recoveries of the same files.
  j["digest"] = e.state().Digest();
  j["memory"] = {{"state_bytes", e.state().MemoryBytes()},
                 {"data_bytes", e.state().DataBytes()},
                 {"rss_bytes", ProcessRssBytes()}};
  j["durability"] = {{"mode", std::string(ToString(d.mode))},
                     {"batch_size", d.batch_size},
                     {"flush_interval_ms", static_cast<double>(d.flush_interval.count()) / 1000.0}};
  j["last_lsn"] = st.last_lsn;
  j["durable_lsn"] = st.durable_lsn;
  j["applied_lsn"] = st.applied_lsn;
  j["pending_records"] = st.pending_records;
  j["wal"] = {{"segments", st.wal.segments},
              {"bytes", st.wal.bytes},
              {"active_segment", st.wal.active_segment},
              {"retention_floor", st.retention_floor},
              {"retained_segments", st.retained_wal_segments},
              {"retained_bytes", st.retained_wal_bytes}};
  if (st.ack_gate) {
    j["ack_gate"] = {{"watermark", st.ack_watermark}, {"ack_lsn", st.ack_lsn}, {"gated_writes", st.gated_writes}};
  }

  const SnapshotHistory& sh = *in.snapshots;
  json snap;
  snap["succeeded"] = sh.succeeded;
  snap["failed"] = sh.failed;
  if (sh.have_last) {
    snap["last"] = {{"lsn", sh.last.lsn},
                    {"age_s", Seconds(now - sh.last_at)},
                    {"duration_ms", Millis(sh.last.duration)},
                    {"bytes", sh.last.bytes},
                    {"entries", sh.last.entries},
                    {"fork_us", sh.last.fork_time.count()},
                    {"child_peak_rss_bytes", sh.last.child_peak_rss_bytes},
                    {"reason", sh.last.reason}};
  } else {
    snap["last"] = nullptr;
  }
  snap["last_error"] = sh.last_error;
  snap["wal_grown_bytes"] = in.snapshot_wal_grown;
  snap["wal_growth_threshold_bytes"] = in.snapshot_wal_growth_threshold;
  snap["in_progress"] = in.snapshot_running;
  if (in.snapshot_running) {
    snap["in_progress_lsn"] = in.snapshot_running_lsn;
    snap["in_progress_s"] = Seconds(now - in.snapshot_started);
  }
  j["snapshot"] = snap;
  j["recovery"] = RecoveryJson(*in.recovery);

  const double mean = st.groups == 0 ? 0.0 : static_cast<double>(st.grouped_records) / static_cast<double>(st.groups);
  j["group_commit"] = {{"groups", st.groups},
                       {"records", st.grouped_records},
                       {"mean_group_size", mean},
                       {"fdatasync_p50_us", st.sync_p50_us},
                       {"fdatasync_p99_us", st.sync_p99_us},
                       {"fdatasync_max_us", st.sync_max_us},
                       {"last_fdatasync_us", st.last_sync_us},
                       {"acked_not_durable", st.ack_window},
                       {"acked_not_durable_peak", st.ack_window_peak},
                       {"acked_not_durable_age_peak_us", st.ack_window_age_peak_us}};

  const ServerCounters& c = *in.counters;
  j["connections"] = {{"current", c.connections_current},
                      {"total", c.connections_total},
                      {"refused", c.connections_refused},
                      {"idle_closed", c.idle_closed},
                      {"bad_frames", c.bad_frames},
                      {"reply_bytes", in.reply_bytes},
                      {"largest_client_reply_bytes", in.largest_client_reply_bytes},
                      {"max", in.config->max_connections}};
  json ops = json::object();
  for (size_t i = 0; i < c.ops.size(); ++i) ops[std::string(OpName(static_cast<Op>(i)))] = c.ops[i];
  j["ops"] = ops;
  j["errors"] = c.errors;
  // Reads with a minimum LSN (read-your-writes): waited at all, failed at
  // the deadline, and parked right now.
  j["min_lsn_reads"] = {{"waited", c.min_lsn_waits}, {"timed_out", c.min_lsn_timeouts}, {"parked", in.parked_reads}};
  j["bytes_in"] = c.bytes_in;
  j["bytes_out"] = c.bytes_out;
  j["write_refusal"] = st.write_refusal;
  j["writes_refused"] = !st.write_refusal.empty();
  j["no_space"] = st.no_space;
  j["storage_warnings"] = in.storage_warnings != nullptr ? *in.storage_warnings : std::vector<std::string>{};
  if (!in.replication_json.empty()) j["replication"] = json::parse(in.replication_json);
  return j.dump();
}

}  // namespace kvd::daemon
