// MemEnv: an Env whose files live in a std::map, for fuzz targets and their
// regression tests (no real I/O, deterministic, fast). Only what recovery and
// the snapshot reader touch is meaningful; directories are implicit (a file's
// directory is DirName(path)), locks always succeed.
// Thread safety: none (one fuzz input at a time).
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kvd/env.h"

namespace kvd::fuzz {

class MemEnv final : public Env {
 public:
  std::map<std::string, std::string>& files() { return files_; }

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path, OpenMode mode) override {
    const bool exists = files_.count(path) != 0;
    if (mode == OpenMode::kCreateExclusive && exists) return Status::Busy(path + " exists");
    if (mode == OpenMode::kExisting && !exists) return Status::NotFound(path);
    if (mode != OpenMode::kExisting) files_[path].clear();
    return std::unique_ptr<WritableFile>(std::make_unique<File>(this, path));
  }
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override {
    if (files_.count(path) == 0) return Status::NotFound(path);
    return std::unique_ptr<RandomAccessFile>(std::make_unique<Reader>(this, path));
  }
  bool FileExists(const std::string& path) override { return files_.count(path) != 0; }
  Result<uint64_t> FileSize(const std::string& path) override {
    auto it = files_.find(path);
    if (it == files_.end()) return Status::NotFound(path);
    return uint64_t{it->second.size()};
  }
  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    std::vector<std::string> out;
    for (const auto& [path, data] : files_) {
      if (DirName(path) == dir) out.push_back(path.substr(path.rfind('/') + 1));
    }
    return out;
  }
  Status CreateDirs(const std::string&) override { return Status::Ok(); }
  Status RemoveFile(const std::string& path) override {
    return files_.erase(path) != 0 ? Status::Ok() : Status::NotFound(path);
  }
  Status RenameFile(const std::string& from, const std::string& to) override {
    auto it = files_.find(from);
    if (it == files_.end()) return Status::NotFound(from);
    std::string data = std::move(it->second);
    files_.erase(it);
    files_[to] = std::move(data);
    return Status::Ok();
  }
  Status SyncDir(const std::string&) override { return Status::Ok(); }
  Result<std::unique_ptr<FileLock>> LockFile(const std::string&) override {
    return std::unique_ptr<FileLock>(std::make_unique<FileLock>());
  }

 private:
  class File final : public WritableFile {
   public:
    File(MemEnv* env, std::string path) : env_(env), path_(std::move(path)) {}
    Status WriteAt(uint64_t offset, std::span<const std::byte> data) override {
      std::string& f = Data();
      if (f.size() < offset + data.size()) f.resize(offset + data.size());
      std::copy(data.begin(), data.end(), reinterpret_cast<std::byte*>(f.data()) + offset);
      return Status::Ok();
    }
    Status Sync() override { return Status::Ok(); }
    Status SyncAll() override { return Status::Ok(); }
    Status Allocate(uint64_t offset, uint64_t len) override {
      if (Data().size() < offset + len) Data().resize(offset + len);
      return Status::Ok();
    }
    Status Truncate(uint64_t size) override {
      Data().resize(size);
      return Status::Ok();
    }
    Result<uint64_t> Size() override { return uint64_t{Data().size()}; }
    Status Close() override { return Status::Ok(); }
    const std::string& path() const override { return path_; }

   private:
    std::string& Data() { return env_->files_[path_]; }
    MemEnv* env_;
    std::string path_;
  };

  class Reader final : public RandomAccessFile {
   public:
    Reader(MemEnv* env, std::string path) : env_(env), path_(std::move(path)) {}
    Result<size_t> ReadAt(uint64_t offset, std::span<std::byte> out) override {
      const std::string& f = env_->files_[path_];
      if (offset >= f.size()) return size_t{0};
      const size_t n = std::min<uint64_t>(out.size(), f.size() - offset);
      std::copy_n(reinterpret_cast<const std::byte*>(f.data()) + offset, n, out.data());
      return n;
    }
    Result<uint64_t> Size() override { return uint64_t{env_->files_[path_].size()}; }
    const std::string& path() const override { return path_; }

   private:
    MemEnv* env_;
    std::string path_;
  };

  std::map<std::string, std::string> files_;
};

}  // namespace kvd::fuzz
