// Helpers shared by the engine tests: a temp directory, a recording sink, a
// notify counter, a model of the expected map.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kvd/engine.h"
#include "util/temp_dir.h"

namespace kvd::testing {

// A fresh directory, removed on destruction. On tmpfs when available: the
// fault-injecting Env models durability, real fsyncs would only cost time.
// A temp dir named kvd-engine-*, on /dev/shm when present (these tests fsync a lot).
class TempDir : public test::TempDir {
 public:
  TempDir() : test::TempDir("engine", test::TempDirBase::kShmIfPresent) {}
};

struct RecordingSink : CompletionSink {
  struct Done {
    Lsn lsn;
    Status status;
    bool existed;
  };
  std::vector<Done> writes;
  std::vector<std::pair<uint64_t, Status>> flushes;
  Lsn last_flush_durable = 0;

  void OnWriteDone(Lsn lsn, const Status& status, bool existed) override {
    // LSN order; an LSN whose write failed with ENOSPC is handed out again.
    if (!writes.empty()) CHECK((lsn > writes.back().lsn || writes.back().status.IsNoSpace()));
    writes.push_back({lsn, status, existed});
  }
  void OnFlushDone(uint64_t token, const Status& status, Lsn durable_lsn) override {
    flushes.emplace_back(token, status);
    last_flush_durable = durable_lsn;
  }
  const Done* Find(Lsn lsn) const {
    for (const Done& d : writes) {
      if (d.lsn == lsn) return &d;
    }
    return nullptr;
  }
};

// Counts options.notify calls so a test can wait for the committer.
class NotifyCounter {
 public:
  std::function<void()> Hook() {
    return [this] {
      std::lock_guard<std::mutex> l(mu_);
      n_++;
      cv_.notify_all();
    };
  }
  uint64_t count() {
    std::lock_guard<std::mutex> l(mu_);
    return n_;
  }
  // Waits until more than `seen` notifications happened.
  void WaitPast(uint64_t seen) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return n_ > seen; });
  }
  // As WaitPast, but gives up after `limit` (false): for a test whose
  // failure would otherwise be a commit that never starts, hence a hang.
  bool WaitPastFor(uint64_t seen, std::chrono::seconds limit) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, limit, [&] { return n_ > seen; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t n_ = 0;
};

// A fake replication consumer: keeps what the commit observer is shown.
// Called on the committer thread; the test reads it from its own.
class RecordingObserver : public CommitObserver {
 public:
  struct Written {
    Lsn first, last;
    std::string bytes;
    std::thread::id thread;
  };
  void OnRecordsWritten(Lsn first, Lsn last, std::string_view records) override {
    std::lock_guard<std::mutex> l(mu_);
    written_.push_back({first, last, std::string(records), std::this_thread::get_id()});
  }
  void OnDurable(Lsn durable_lsn) override {
    std::lock_guard<std::mutex> l(mu_);
    durable_.push_back(durable_lsn);
  }
  std::vector<Written> written() {
    std::lock_guard<std::mutex> l(mu_);
    return written_;
  }
  std::vector<Lsn> durable() {
    std::lock_guard<std::mutex> l(mu_);
    return durable_;
  }
  // Every byte shown so far, in order.
  std::string AllBytes() {
    std::lock_guard<std::mutex> l(mu_);
    std::string out;
    for (const Written& w : written_) out += w.bytes;
    return out;
  }
  Lsn last_shown() {
    std::lock_guard<std::mutex> l(mu_);
    return written_.empty() ? 0 : written_.back().last;
  }

 private:
  std::mutex mu_;
  std::vector<Written> written_;
  std::vector<Lsn> durable_;
};

inline std::map<std::string, std::string> Contents(const State& s) {
  std::map<std::string, std::string> m;
  for (State::Cursor c = s.Begin(); c.Valid(); c.Next()) m.emplace(std::string(c.key()), std::string(c.value()));
  return m;
}

inline EngineOptions BasicOptions(Env* env, const TempDir& dir, DurabilityMode mode) {
  EngineOptions o;
  o.env = env;
  o.wal_dir = dir.Sub("wal");
  o.snapshot_dir = dir.Sub("snap");
  o.durability.mode = mode;
  o.segment_size = 1 << 20;  // small preallocation: the fault env saves what it overwrites
  return o;
}

inline std::unique_ptr<Engine> MustOpen(const EngineOptions& o, RecoveryReport* report = nullptr) {
  auto r = Engine::Open(o, report);
  REQUIRE_MESSAGE(r.has_value(), r.error().ToString());
  return std::move(r).value();
}

}  // namespace kvd::testing
