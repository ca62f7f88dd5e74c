// RAII ownership of libuv handles, after Kitware/CMake's cmUVHandlePtr.
//
// A handle may only be freed after its close callback ran, so the deleter
// calls uv_close and frees the memory in the callback. The loop must be run
// (uv_run) after the last handle is released so the callbacks fire; the
// daemon does that once more before uv_loop_close.
#pragma once

#include <uv.h>

#include <memory>
#include <utility>

namespace kvd::daemon {

template <typename T>
class UvHandle {
 public:
  UvHandle() = default;
  ~UvHandle() { reset(); }
  UvHandle(UvHandle&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  UvHandle& operator=(UvHandle&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, nullptr);
    }
    return *this;
  }
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;

  // Allocates an (uninitialised) handle; the caller runs uv_xxx_init on it.
  // Until init succeeded, reset() frees without uv_close.
  T* Allocate() {
    reset();
    h_ = new T{};
    h_->data = nullptr;
    return h_;
  }
  // Call after a successful uv_xxx_init so that reset() closes the handle.
  void MarkInitialised() { initialised_ = true; }

  T* get() const { return h_; }
  T* operator->() const { return h_; }
  explicit operator bool() const { return h_ != nullptr; }
  uv_handle_t* handle() const { return reinterpret_cast<uv_handle_t*>(h_); }

  void reset() {
    if (h_ == nullptr) return;
    T* h = std::exchange(h_, nullptr);
    if (!initialised_) {
      delete h;
      return;
    }
    initialised_ = false;
    auto* base = reinterpret_cast<uv_handle_t*>(h);
    if (uv_is_closing(base)) return;  // someone else closes it (and frees it)
    uv_close(base, [](uv_handle_t* closed) { delete reinterpret_cast<T*>(closed); });
  }

 private:
  T* h_ = nullptr;
  bool initialised_ = false;
};

// Helpers that allocate + init in one go. Each returns false on failure.
inline bool InitTimer(uv_loop_t* loop, UvHandle<uv_timer_t>* t, void* data) {
  if (uv_timer_init(loop, t->Allocate()) != 0) return false;
  t->MarkInitialised();
  t->get()->data = data;
  return true;
}
inline bool InitSignal(uv_loop_t* loop, UvHandle<uv_signal_t>* s, void* data) {
  if (uv_signal_init(loop, s->Allocate()) != 0) return false;
  s->MarkInitialised();
  s->get()->data = data;
  return true;
}
inline bool InitPrepare(uv_loop_t* loop, UvHandle<uv_prepare_t>* p, void* data) {
  if (uv_prepare_init(loop, p->Allocate()) != 0) return false;
  p->MarkInitialised();
  p->get()->data = data;
  return true;
}
inline bool InitAsync(uv_loop_t* loop, UvHandle<uv_async_t>* a, uv_async_cb cb, void* data) {
  if (uv_async_init(loop, a->Allocate(), cb) != 0) return false;
  a->MarkInitialised();
  a->get()->data = data;
  return true;
}
inline bool InitPipe(uv_loop_t* loop, UvHandle<uv_pipe_t>* p, void* data) {
  if (uv_pipe_init(loop, p->Allocate(), 0) != 0) return false;
  p->MarkInitialised();
  p->get()->data = data;
  return true;
}

inline bool InitTcp(uv_loop_t* loop, UvHandle<uv_tcp_t>* t, void* data) {
  if (uv_tcp_init(loop, t->Allocate()) != 0) return false;
  t->MarkInitialised();
  t->get()->data = data;
  return true;
}

}  // namespace kvd::daemon
