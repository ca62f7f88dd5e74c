// SingleFileEnv: a view of an Env in which a directory listing shows one
// file name only, so RecoverWal can examine one segment on its own (kvd
// --check-data counts the records of segments it would set aside).
// Everything else is forwarded unchanged.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kvd/env.h"

namespace kvd::daemon {

class SingleFileEnv final : public Env {
 public:
  SingleFileEnv(Env* base, std::string name) : base_(base), name_(std::move(name)) {}

  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    KVD_ASSIGN_OR_RETURN(std::vector<std::string> names, base_->ListDir(dir));
    std::vector<std::string> out;
    for (std::string& n : names) {
      if (n == name_) out.push_back(std::move(n));
    }
    return out;
  }
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path, OpenMode mode) override {
    return base_->NewWritableFile(path, mode);
  }
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override {
    return base_->NewRandomAccessFile(path);
  }
  bool FileExists(const std::string& path) override { return base_->FileExists(path); }
  Result<uint64_t> FileSize(const std::string& path) override { return base_->FileSize(path); }
  Status CreateDirs(const std::string& dir) override { return base_->CreateDirs(dir); }
  Status RemoveFile(const std::string& path) override { return base_->RemoveFile(path); }
  Status RenameFile(const std::string& from, const std::string& to) override { return base_->RenameFile(from, to); }
  Status SyncDir(const std::string& dir) override { return base_->SyncDir(dir); }
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override { return base_->LockFile(path); }

 private:
  Env* base_;
  std::string name_;
};

}  // namespace kvd::daemon
