// SnapshotStreamer: the primary's side of one snapshot transfer
// (docs/replication.md §4.6). It forks a child that writes a snapshot of its
// copy-on-write image of the State into a pipe (RunSnapshotStreamChild, the
// same writer as local snapshots), reads the pipe on the loop without
// blocking, and hands the bytes on in chunks of at most kSnapshotChunkBytes,
// counting them and their CRC32C. The consumer pauses it while its link is
// above the high-water mark and resumes it below the low-water mark: the pipe
// then fills and the child blocks, so memory stays bounded.
//
// Once the pipe reaches EOF the child is reaped (waitpid by pid, polled on a
// timer): only a child that exited 0 makes a complete transfer. Abort (or
// the destructor) kills and reaps a running child; it writes no files.
//
// Threading: loop thread only. Callbacks run on the loop; the streamer may
// be Aborted from inside on_chunk, but not destroyed there.
#pragma once

#include <uv.h>

#include <functional>
#include <string>
#include <string_view>

#include "kvd/fd.h"
#include "kvd/state.h"
#include "kvd/status.h"
#include "kvd/types.h"
#include "net/uv_handle.h"

namespace kvd::daemon::repl {

class SnapshotStreamer {
 public:
  struct Callbacks {
    std::function<void(std::string_view chunk)> on_chunk;
    // The child finished: OK with the size and CRC32C of every byte handed
    // on, or why not (no chunk follows).
    std::function<void(const Status& status, uint64_t bytes, uint32_t crc)> on_done;
  };

  explicit SnapshotStreamer(uv_loop_t* loop) : loop_(loop) {}
  ~SnapshotStreamer() { Abort(); }
  SnapshotStreamer(const SnapshotStreamer&) = delete;
  SnapshotStreamer& operator=(const SnapshotStreamer&) = delete;

  // Forks the child over state at lsn.
  Status Start(const State& state, Lsn lsn, Callbacks callbacks);
  void Pause();
  void Resume();
  // Kills and reaps a running child; no callback follows.
  void Abort();

  bool running() const { return pid_ > 0; }
  uint64_t bytes() const { return bytes_; }
  pid_t pid() const { return pid_; }

 private:
  static void OnReadable(uv_poll_t* h, int status, int events);
  static void OnReapTimer(uv_timer_t* t);
  void ReadSome();
  void Deliver();
  void TryReap();

  uv_loop_t* loop_;
  Callbacks cb_;
  pid_t pid_ = -1;
  Fd fd_;
  UvHandle<uv_poll_t> poll_;
  UvHandle<uv_timer_t> reap_timer_;
  std::string buf_;  // kSnapshotChunkBytes, the next chunk's bytes in [0, used_)
  size_t used_ = 0;
  uint64_t bytes_ = 0;
  uint32_t crc_ = 0;
  bool paused_ = false;
  bool eof_ = false;
};

}  // namespace kvd::daemon::repl
