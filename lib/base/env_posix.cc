// The POSIX Env: thin wrappers over open/pwrite/fdatasync/fallocate/rename.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "kvd/env.h"
#include "kvd/fd.h"
#include "kvd/mutation.h"

namespace kvd {
namespace {

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, Fd fd) : path_(std::move(path)), fd_(std::move(fd)) {}

  Status WriteAt(uint64_t offset, std::span<const std::byte> data) override {
    while (!data.empty()) {
      ssize_t n = ::pwrite(fd_.get(), data.data(), data.size(), static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno(errno, "write " + path_);
      }
      data = data.subspan(static_cast<size_t>(n));
      offset += static_cast<uint64_t>(n);
    }
    return Status::Ok();
  }
  Status Sync() override {
    if (KVD_MUTANT(skip_fdatasync_syscall)) return Status::Ok();
    if (::fdatasync(fd_.get()) != 0) return Status::FromErrno(errno, "fdatasync " + path_);
    return Status::Ok();
  }
  Status SyncAll() override {
    if (::fsync(fd_.get()) != 0) return Status::FromErrno(errno, "fsync " + path_);
    return Status::Ok();
  }
  Status Allocate(uint64_t offset, uint64_t len) override {
    int rc;
    do {
      rc = ::fallocate(fd_.get(), 0, static_cast<off_t>(offset), static_cast<off_t>(len));
    } while (rc != 0 && errno == EINTR);
    if (rc == 0) return Status::Ok();
    if (errno == EOPNOTSUPP || errno == ENOSYS) {
      return Status::Unsupported("fallocate " + path_ + ": not supported by the file system");
    }
    return Status::FromErrno(errno, "fallocate " + path_);
  }
  Status Truncate(uint64_t size) override {
    if (::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0) {
      return Status::FromErrno(errno, "ftruncate " + path_);
    }
    return Status::Ok();
  }
  Result<uint64_t> Size() override {
    struct stat st;
    if (::fstat(fd_.get(), &st) != 0) return Status::FromErrno(errno, "fstat " + path_);
    return static_cast<uint64_t>(st.st_size);
  }
  Status Close() override {
    if (!fd_.valid()) return Status::Ok();
    int fd = fd_.release();
    if (::close(fd) != 0) return Status::FromErrno(errno, "close " + path_);
    return Status::Ok();
  }
  const std::string& path() const override { return path_; }

 private:
  std::string path_;
  Fd fd_;
};

class PosixRandomAccessFile final : public RandomAccessFile {
 public:
  PosixRandomAccessFile(std::string path, Fd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  Result<size_t> ReadAt(uint64_t offset, std::span<std::byte> out) override {
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n = ::pread(fd_.get(), out.data() + done, out.size() - done,
                          static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno(errno, "read " + path_);
      }
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
    return done;
  }
  Result<uint64_t> Size() override {
    struct stat st;
    if (::fstat(fd_.get(), &st) != 0) return Status::FromErrno(errno, "fstat " + path_);
    return static_cast<uint64_t>(st.st_size);
  }
  const std::string& path() const override { return path_; }
  Result<std::vector<ByteRange>> DataRanges() override;

 private:
  std::string path_;
  Fd fd_;
};

Result<std::vector<ByteRange>> PosixRandomAccessFile::DataRanges() {
  KVD_ASSIGN_OR_RETURN(uint64_t size, Size());
  std::vector<ByteRange> out;
  off_t pos = 0;
  while (static_cast<uint64_t>(pos) < size) {
    off_t data = ::lseek(fd_.get(), pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // only a hole from pos to the end
      if (errno == EINVAL || errno == EOPNOTSUPP) return RandomAccessFile::DataRanges();  // cannot tell
      return Status::FromErrno(errno, "lseek SEEK_DATA " + path_);
    }
    off_t hole = ::lseek(fd_.get(), data, SEEK_HOLE);
    if (hole < 0) return Status::FromErrno(errno, "lseek SEEK_HOLE " + path_);
    out.push_back({static_cast<uint64_t>(data), std::min(size, static_cast<uint64_t>(hole))});
    pos = hole;
  }
  return out;
}

class PosixFileLock final : public FileLock {
 public:
  explicit PosixFileLock(Fd fd) : fd_(std::move(fd)) {}
  ~PosixFileLock() override { ::flock(fd_.get(), LOCK_UN); }
  int fd() const override { return fd_.get(); }

 private:
  Fd fd_;
};

class PosixEnv final : public Env {
 public:
  Clock::time_point Now() override { return Clock::now(); }
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                        OpenMode mode) override {
    int flags = O_WRONLY | O_CLOEXEC;
    switch (mode) {
      case OpenMode::kCreateTruncate: flags |= O_CREAT | O_TRUNC; break;
      case OpenMode::kCreateExclusive: flags |= O_CREAT | O_EXCL; break;
      case OpenMode::kExisting: break;
    }
    Fd fd(::open(path.c_str(), flags, 0640));
    if (!fd.valid()) {
      if (errno == EEXIST) return Status::Busy(path + " already exists");
      return Status::FromErrno(errno, "open " + path);
    }
    return std::unique_ptr<WritableFile>(new PosixWritableFile(path, std::move(fd)));
  }
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
      if (errno == ENOENT) return Status::NotFound(path + ": no such file");
      return Status::FromErrno(errno, "open " + path);
    }
    return std::unique_ptr<RandomAccessFile>(new PosixRandomAccessFile(path, std::move(fd)));
  }
  bool FileExists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }
  Result<uint64_t> FileSize(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) return Status::NotFound(path + ": no such file");
      return Status::FromErrno(errno, "stat " + path);
    }
    return static_cast<uint64_t>(st.st_size);
  }
  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
      if (errno == ENOENT) return Status::NotFound(dir + ": no such directory");
      return Status::FromErrno(errno, "opendir " + dir);
    }
    std::vector<std::string> out;
    while (struct dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      out.emplace_back(e->d_name);
    }
    ::closedir(d);
    return out;
  }
  Status CreateDirs(const std::string& dir) override {
    if (dir.empty()) return Status::Ok();
    std::string partial;
    size_t pos = 0;
    while (pos != std::string::npos) {
      pos = dir.find('/', pos + 1);
      partial = dir.substr(0, pos);
      if (partial.empty()) continue;
      if (::mkdir(partial.c_str(), 0750) == 0) {
        // A new directory's entry is durable only once its parent is fsynced.
        KVD_RETURN_IF_ERROR(SyncDir(DirName(partial)));
      } else if (errno != EEXIST) {
        return Status::FromErrno(errno, "mkdir " + partial);
      }
    }
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Status::IOError(dir + " is not a directory");
    }
    return Status::Ok();
  }
  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) {
      if (errno == ENOENT) return Status::NotFound(path + ": no such file");
      return Status::FromErrno(errno, "unlink " + path);
    }
    return Status::Ok();
  }
  Status RenameFile(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return Status::FromErrno(errno, "rename " + from + " -> " + to);
    }
    return Status::Ok();
  }
  Status SyncDir(const std::string& dir) override {
    Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) return Status::FromErrno(errno, "open directory " + dir);
    if (::fsync(fd.get()) != 0) return Status::FromErrno(errno, "fsync directory " + dir);
    return Status::Ok();
  }
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640));
    if (!fd.valid()) return Status::FromErrno(errno, "open lock file " + path);
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) {
        return Status::Busy(path + " is locked by another process (is another kvd using this data directory?)");
      }
      return Status::FromErrno(errno, "flock " + path);
    }
    return std::unique_ptr<FileLock>(new PosixFileLock(std::move(fd)));
  }
};

}  // namespace

Env* Env::Default() {
  static PosixEnv env;
  return &env;
}

Clock::time_point Env::Now() { return Clock::now(); }

Result<std::vector<ByteRange>> RandomAccessFile::DataRanges() {
  KVD_ASSIGN_OR_RETURN(uint64_t size, Size());
  if (size == 0) return std::vector<ByteRange>{};
  return std::vector<ByteRange>{{0, size}};
}

Result<std::string> Env::ReadFileToString(const std::string& path, uint64_t max_bytes) {
  KVD_ASSIGN_OR_RETURN(auto file, NewRandomAccessFile(path));
  KVD_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  if (size > max_bytes) return Status::TooLarge(path + " is larger than expected");
  std::string out(size, '\0');
  KVD_ASSIGN_OR_RETURN(size_t n, file->ReadAt(0, {reinterpret_cast<std::byte*>(out.data()), out.size()}));
  out.resize(n);
  return out;
}

std::string JoinPath(std::string_view dir, std::string_view name) {
  std::string p(dir);
  if (!p.empty() && p.back() != '/') p += '/';
  p += name;
  return p;
}

std::string DirName(std::string_view path) {
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

Status WriteFileAtomic(Env* env, const std::string& path, std::span<const std::byte> data) {
  std::string tmp = path + ".tmp";
  KVD_ASSIGN_OR_RETURN(auto file, env->NewWritableFile(tmp, OpenMode::kCreateTruncate));
  Status s = file->WriteAt(0, data);
  if (s.ok()) s = file->SyncAll();
  Status c = file->Close();
  if (s.ok()) s = c;
  if (s.ok()) s = env->RenameFile(tmp, path);
  if (s.ok()) s = env->SyncDir(DirName(path));
  if (!s.ok()) (void)env->RemoveFile(tmp);
  return s;
}

}  // namespace kvd
