// Helpers for the WAL tests: temp dirs, raw segment files, a failing Env.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kvd/env.h"
#include "kvd/wal.h"
#include "storage/wal_coding.h"
#include "util/temp_dir.h"

namespace kvd::test {


inline std::string ReadAll(const std::string& path) {
  auto r = Env::Default()->ReadFileToString(path);
  REQUIRE(r.has_value());
  return *r;
}

inline void WriteAll(const std::string& path, std::string_view data) {
  std::filesystem::remove(path);
  auto f = Env::Default()->NewWritableFile(path, OpenMode::kCreateTruncate);
  REQUIRE(f.has_value());
  REQUIRE((*f)->WriteAt(0, AsBytes(data)).ok());
  REQUIRE((*f)->Close().ok());
}

// name -> content of every file in dir.
inline std::map<std::string, std::string> DirContents(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out[e.path().filename()] = ReadAll(e.path());
  return out;
}

inline std::vector<std::string> SegmentNames(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& [name, content] : DirContents(dir)) {
    if (ParseSegmentFileName(name)) out.push_back(name);
  }
  return out;
}

inline std::string Key(Lsn lsn) { return "key-" + std::to_string(lsn); }
inline std::string Value(Lsn lsn) { return "value-" + std::to_string(lsn * 7919) + std::string(lsn % 50, 'v'); }

// Records from..to (inclusive) as PUT Key(lsn) = Value(lsn).
inline std::string Records(Lsn from, Lsn to) {
  std::string buf;
  for (Lsn l = from; l <= to; ++l) AppendPutRecord(&buf, l, kFirstEpoch, Key(l), Value(l));
  return buf;
}

// A segment file written directly: header + body, no preallocation.
inline void MakeSegment(const std::string& dir, Lsn first_lsn, std::string_view body) {
  WriteAll(JoinPath(dir, SegmentFileName(first_lsn)), wal::EncodeSegmentHeader(first_lsn) + std::string(body));
}

struct Replayed {
  Status status;
  WalRecoveryReport report;
  std::vector<WalRecord> records;  // payloads copied into `store`
  std::vector<std::string> store;
  // True when every replayed record is PUT Key(lsn) = Value(lsn) with
  // consecutive LSNs from first.
  bool ExactPrefix(Lsn first) const {
    for (size_t i = 0; i < records.size(); ++i) {
      std::string want;
      Lsn l = first + i;
      AppendPutRecord(&want, l, kFirstEpoch, Key(l), Value(l));
      if (records[i].lsn != l || records[i].type != RecordType::kPut ||
          records[i].payload != std::string_view(want).substr(kRecordHeaderBytes)) {
        return false;
      }
    }
    return true;
  }
};

inline Replayed Replay(Env* env, const std::string& dir, RecoveryMode mode = RecoveryMode::kTolerateTail,
                       bool dry_run = false, Lsn start_lsn = 0) {
  Replayed out;
  out.store.reserve(1 << 16);
  WalRecoveryOptions o;
  o.dir = dir;
  o.mode = mode;
  o.dry_run = dry_run;
  o.start_lsn = start_lsn;
  o.apply = [&](const WalRecord& r) {
    out.store.emplace_back(r.payload);
    out.records.push_back({r.type, r.lsn, {}});
    return Status::Ok();
  };
  out.status = RecoverWal(env, o, &out.report);
  for (size_t i = 0; i < out.records.size(); ++i) out.records[i].payload = out.store[i];
  return out;
}

// An Env over the default one whose operations fail on command.
class FailingEnv : public EnvWrapper {
 public:
  FailingEnv() : EnvWrapper(Env::Default()) {}

  int allocate_errno = 0;      // Allocate fails with it (EOPNOTSUPP -> kUnsupported)
  int create_errno = 0;        // NewWritableFile fails with it
  int write_errno = 0;         // the next WriteAt writes half, then fails with it (once)
  int sync_errno = 0;          // Sync / SyncAll fail with it
  std::string path_contains;   // only for paths containing this

  bool Matches(const std::string& p) const { return path_contains.empty() || p.find(path_contains) != std::string::npos; }

  class File : public WritableFile {
   public:
    File(FailingEnv* env, std::unique_ptr<WritableFile> base) : env_(env), base_(std::move(base)) {}
    Status WriteAt(uint64_t offset, std::span<const std::byte> data) override {
      if (env_->write_errno != 0 && env_->Matches(path())) {
        (void)base_->WriteAt(offset, data.first(data.size() / 2));
        int err = std::exchange(env_->write_errno, 0);
        return Status::FromErrno(err, "write " + path());
      }
      return base_->WriteAt(offset, data);
    }
    Status Sync() override {
      if (env_->sync_errno != 0 && env_->Matches(path())) return Status::FromErrno(env_->sync_errno, "fdatasync");
      return base_->Sync();
    }
    Status SyncAll() override {
      if (env_->sync_errno != 0 && env_->Matches(path())) return Status::FromErrno(env_->sync_errno, "fsync");
      return base_->SyncAll();
    }
    Status Allocate(uint64_t offset, uint64_t len) override {
      if (env_->allocate_errno != 0 && env_->Matches(path())) {
        if (env_->allocate_errno == EOPNOTSUPP) return Status::Unsupported("fallocate: not supported");
        return Status::FromErrno(env_->allocate_errno, "fallocate " + path());
      }
      ++env_->allocations;
      return base_->Allocate(offset, len);
    }
    Status Truncate(uint64_t size) override { return base_->Truncate(size); }
    Result<uint64_t> Size() override { return base_->Size(); }
    Status Close() override { return base_->Close(); }
    const std::string& path() const override { return base_->path(); }

   private:
    FailingEnv* env_;
    std::unique_ptr<WritableFile> base_;
  };

  int allocations = 0;

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path, OpenMode mode) override {
    if (create_errno != 0 && Matches(path)) return Status::FromErrno(create_errno, "open " + path);
    KVD_ASSIGN_OR_RETURN(auto f, target()->NewWritableFile(path, mode));
    return std::unique_ptr<WritableFile>(new File(this, std::move(f)));
  }
};

}  // namespace kvd::test
