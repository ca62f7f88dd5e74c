// One file's page cache in kvd_lazyfs: what was written since the last
// fsync/fdatasync, kept in memory over the backing file (the "disk").
//
// The backing file holds exactly what the last Sync() made durable. The
// current content is: dirty pages where there are some; elsewhere the backing
// file's bytes below floor_, and zeros from floor_ up to size_. floor_ is the
// smallest size the file had since the last Sync(): backing bytes at or past
// it were cut off by a truncation (or lie beyond the durable size) and must
// read as zeros if the file grows again.
//
// Invariants: floor_ <= size_; every dirty page lies below size_ and its bytes
// past size_ are zero. Not thread-safe: the file system serialises all calls.
// Errors are negative errno values (the FUSE convention).
#pragma once

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>

namespace lazyfs {

inline constexpr uint64_t kPageSize = 4096;

class FileCache {
 public:
  // Takes ownership of fd (the backing file, opened read-write).
  FileCache(int fd, uint64_t backing_size);
  ~FileCache();
  FileCache(const FileCache&) = delete;
  FileCache& operator=(const FileCache&) = delete;

  uint64_t size() const { return size_; }
  int fd() const { return fd_; }
  // Bytes held in dirty pages (what a power cut would drop), and whether
  // anything, the size included, differs from the backing file.
  uint64_t dirty_bytes() const { return dirty_.size() * kPageSize; }
  bool clean() const { return dirty_.empty() && size_ == backing_size_ && floor_ == backing_size_; }

  // Reads up to len bytes at off of the current content; returns the count.
  ssize_t Read(char* buf, size_t len, uint64_t off) const;
  // Writes into dirty pages; the file grows if the write ends past its size.
  ssize_t Write(const char* buf, size_t len, uint64_t off);
  // ftruncate: a shrink forgets the cut pages, a growth reads as zeros.
  void Truncate(uint64_t size);
  // fallocate mode 0: the file grows to at least off + len (zeros).
  void Allocate(uint64_t off, uint64_t len);
  // fsync/fdatasync: the backing file gets the current content and size.
  int Sync();

 private:
  using Page = std::array<char, kPageSize>;
  // The current content of a page that is not dirty.
  int LoadPage(uint64_t index, Page* page) const;

  int fd_;
  uint64_t backing_size_;
  uint64_t size_;
  uint64_t floor_;
  std::map<uint64_t, std::unique_ptr<Page>> dirty_;  // page index -> content
};

}  // namespace lazyfs
