// NewFdStreamFile: the append-only sink the snapshot writer streams into
// when a forked child sends a snapshot through a pipe.
#include "kvd/snapshot_stream.h"

#include <unistd.h>

#include <cerrno>

namespace kvd {
namespace {

class FdStreamFile final : public WritableFile {
 public:
  FdStreamFile(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}

  Status WriteAt(uint64_t offset, std::span<const std::byte> data) override {
    if (offset != written_) return Status::InvalidArgument(name_ + ": a stream can only append");
    const std::byte* p = data.data();
    size_t left = data.size();
    while (left > 0) {
      const ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::FromErrno(errno, name_ + ": write");
      p += n;
      left -= static_cast<size_t>(n);
      written_ += static_cast<uint64_t>(n);
    }
    return Status::Ok();
  }
  Status Sync() override { return Status::Ok(); }
  Status SyncAll() override { return Status::Ok(); }
  Status Allocate(uint64_t, uint64_t) override { return Status::Unsupported(name_ + ": a stream"); }
  Status Truncate(uint64_t) override { return Status::Unsupported(name_ + ": a stream"); }
  Result<uint64_t> Size() override { return Status::Unsupported(name_ + ": a stream"); }
  Status Close() override { return Status::Ok(); }
  const std::string& path() const override { return name_; }

 private:
  int fd_;
  std::string name_;
  uint64_t written_ = 0;
};

}  // namespace

std::unique_ptr<WritableFile> NewFdStreamFile(int fd, std::string name) {
  return std::make_unique<FdStreamFile>(fd, std::move(name));
}

}  // namespace kvd
