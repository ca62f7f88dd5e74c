// InputBuffer: the bytes read from one client and not yet consumed.
//
// libuv reads straight into Space() (no copy); whole frames are consumed
// from the front. Grows geometrically as data actually arrives (a declared
// frame length alone never allocates), and compacts instead of growing when
// the consumed prefix is large.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <span>

namespace kvd::daemon {

class InputBuffer {
 public:
  // Writable space at the end, at least min_free bytes.
  std::span<char> Space(size_t min_free) {
    if (start_ == end_) start_ = end_ = 0;
    if (cap_ - end_ < min_free && start_ > 0) {
      std::memmove(buf_.get(), buf_.get() + start_, end_ - start_);
      end_ -= start_;
      start_ = 0;
    }
    if (cap_ - end_ < min_free) {
      size_t cap = cap_ == 0 ? min_free : cap_ * 2;
      while (cap - end_ < min_free) cap *= 2;
      auto bigger = std::make_unique_for_overwrite<char[]>(cap);
      if (end_ > start_) std::memcpy(bigger.get(), buf_.get() + start_, end_ - start_);
      end_ -= start_;
      start_ = 0;
      buf_ = std::move(bigger);
      cap_ = cap;
    }
    return {buf_.get() + end_, cap_ - end_};
  }
  // n bytes were written into Space().
  void Commit(size_t n) { end_ += n; }
  void Consume(size_t n) { start_ += n; }
  std::span<const std::byte> data() const {
    return {reinterpret_cast<const std::byte*>(buf_.get() + start_), end_ - start_};
  }
  size_t size() const { return end_ - start_; }
  size_t capacity() const { return cap_; }
  // Returns memory to the allocator when empty and large (after a big frame).
  void ShrinkIfIdle(size_t keep) {
    if (start_ == end_ && cap_ > keep) {
      buf_.reset();
      cap_ = start_ = end_ = 0;
    }
  }

 private:
  std::unique_ptr<char[]> buf_;
  size_t cap_ = 0, start_ = 0, end_ = 0;
};

}  // namespace kvd::daemon
