#include "page_cache.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace lazyfs {

FileCache::FileCache(int fd, uint64_t backing_size)
    : fd_(fd), backing_size_(backing_size), size_(backing_size), floor_(backing_size) {}

FileCache::~FileCache() { ::close(fd_); }

int FileCache::LoadPage(uint64_t index, Page* page) const {
  page->fill(0);
  const uint64_t start = index * kPageSize;
  if (start >= floor_) return 0;
  const size_t want = static_cast<size_t>(std::min(kPageSize, floor_ - start));
  size_t done = 0;
  while (done < want) {
    ssize_t n = ::pread(fd_, page->data() + done, want - done, static_cast<off_t>(start + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) break;  // the backing file is shorter: the rest reads as zeros
    done += static_cast<size_t>(n);
  }
  return 0;
}

ssize_t FileCache::Read(char* buf, size_t len, uint64_t off) const {
  if (off >= size_) return 0;
  const size_t total = static_cast<size_t>(std::min<uint64_t>(len, size_ - off));
  size_t done = 0;
  Page scratch;
  while (done < total) {
    const uint64_t pos = off + done;
    const uint64_t index = pos / kPageSize;
    const size_t in_page = static_cast<size_t>(pos % kPageSize);
    const size_t n = std::min(total - done, static_cast<size_t>(kPageSize) - in_page);
    const Page* page;
    if (auto it = dirty_.find(index); it != dirty_.end()) {
      page = it->second.get();
    } else {
      if (int rc = LoadPage(index, &scratch); rc < 0) return rc;
      page = &scratch;
    }
    std::memcpy(buf + done, page->data() + in_page, n);
    done += n;
  }
  return static_cast<ssize_t>(total);
}

ssize_t FileCache::Write(const char* buf, size_t len, uint64_t off) {
  size_t done = 0;
  while (done < len) {
    const uint64_t pos = off + done;
    const uint64_t index = pos / kPageSize;
    const size_t in_page = static_cast<size_t>(pos % kPageSize);
    const size_t n = std::min(len - done, static_cast<size_t>(kPageSize) - in_page);
    auto& slot = dirty_[index];
    if (!slot) {
      slot = std::make_unique<Page>();
      // A partly written page keeps the rest of its current content.
      if (n < kPageSize) {
        if (int rc = LoadPage(index, slot.get()); rc < 0) {
          dirty_.erase(index);
          return rc;
        }
      }
    }
    std::memcpy(slot->data() + in_page, buf + done, n);
    done += n;
  }
  size_ = std::max<uint64_t>(size_, off + len);
  return static_cast<ssize_t>(len);
}

void FileCache::Truncate(uint64_t size) {
  if (size < size_) {
    dirty_.erase(dirty_.lower_bound((size + kPageSize - 1) / kPageSize), dirty_.end());
    // The page holding the new end keeps zeros past it, for a later growth.
    if (size % kPageSize != 0) {
      if (auto it = dirty_.find(size / kPageSize); it != dirty_.end()) {
        std::fill(it->second->begin() + static_cast<ptrdiff_t>(size % kPageSize), it->second->end(), 0);
      }
    }
    floor_ = std::min(floor_, size);
  }
  size_ = size;
}

void FileCache::Allocate(uint64_t off, uint64_t len) { size_ = std::max(size_, off + len); }

int FileCache::Sync() {
  // Bytes cut off since the last sync go first, so a growth reads as zeros.
  if (floor_ < backing_size_) {
    if (::ftruncate(fd_, static_cast<off_t>(floor_)) != 0) return -errno;
    backing_size_ = floor_;
  }
  for (const auto& [index, page] : dirty_) {
    const uint64_t start = index * kPageSize;
    const size_t want = static_cast<size_t>(std::min(kPageSize, size_ - start));
    size_t done = 0;
    while (done < want) {
      ssize_t n = ::pwrite(fd_, page->data() + done, want - done, static_cast<off_t>(start + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return -errno;
      }
      done += static_cast<size_t>(n);
    }
  }
  if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) return -errno;
  // The backing file stands for the disk; the host is never power-cut, so it
  // needs no fsync of its own.
  dirty_.clear();
  backing_size_ = floor_ = size_;
  return 0;
}

}  // namespace lazyfs
