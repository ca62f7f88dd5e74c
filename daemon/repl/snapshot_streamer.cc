#include "repl/snapshot_streamer.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "kvd/crc32c.h"
#include "node/snapshot_child.h"
#include "repl/snapshot_messages.h"

namespace kvd::daemon::repl {

Status SnapshotStreamer::Start(const State& state, Lsn lsn, Callbacks callbacks) {
  if (running()) return Status::Busy("a snapshot transfer is already running");
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Status::FromErrno(errno, "snapshot transfer: pipe");
  Fd read_end(fds[0]), write_end(fds[1]);
  const pid_t pid = ::fork();
  if (pid == 0) {
    read_end.reset();
    RunSnapshotStreamChild(state, lsn, write_end.get());
  }
  if (pid < 0) return Status::FromErrno(errno, "snapshot transfer: fork");
  write_end.reset();  // EOF once the child is gone
  ::fcntl(read_end.get(), F_SETFL, ::fcntl(read_end.get(), F_GETFL) | O_NONBLOCK);
  (void)::fcntl(read_end.get(), F_SETPIPE_SZ, static_cast<int>(kSnapshotChunkBytes));  // fewer wake-ups; best effort
  pid_ = pid;
  fd_ = std::move(read_end);
  cb_ = std::move(callbacks);
  buf_.resize(kSnapshotChunkBytes);
  used_ = 0;
  bytes_ = 0;
  crc_ = 0;
  paused_ = false;
  eof_ = false;
  if (uv_poll_init(loop_, poll_.Allocate(), fd_.get()) != 0) {
    poll_.reset();
    Abort();
    return Status::Internal("snapshot transfer: uv_poll_init failed");
  }
  poll_.MarkInitialised();
  poll_->data = this;
  uv_poll_start(poll_.get(), UV_READABLE | UV_DISCONNECT, &SnapshotStreamer::OnReadable);
  return Status::Ok();
}

void SnapshotStreamer::Pause() {
  paused_ = true;
  if (poll_) uv_poll_stop(poll_.get());
}

void SnapshotStreamer::Resume() {
  if (!paused_ || !running()) return;
  paused_ = false;
  if (poll_) uv_poll_start(poll_.get(), UV_READABLE | UV_DISCONNECT, &SnapshotStreamer::OnReadable);
  ReadSome();  // the pipe may hold bytes already
}

void SnapshotStreamer::OnReadable(uv_poll_t* h, int, int) { static_cast<SnapshotStreamer*>(h->data)->ReadSome(); }

void SnapshotStreamer::Deliver() {
  if (used_ == 0) return;
  crc_ = Crc32cExtend(crc_, buf_.data(), used_);
  bytes_ += used_;
  const std::string_view chunk(buf_.data(), used_);
  used_ = 0;
  cb_.on_chunk(chunk);  // consumed (copied into a frame) before the buffer is reused
}

void SnapshotStreamer::ReadSome() {
  while (running() && !paused_ && !eof_) {
    const ssize_t n = ::read(fd_.get(), buf_.data() + used_, kSnapshotChunkBytes - used_);
    if (n > 0) used_ += static_cast<size_t>(n);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {  // EOF (or a hard error: the child's status decides)
      eof_ = true;
      poll_.reset();
      fd_.reset();
      Deliver();
      if (!running()) return;  // aborted from on_chunk
      if (InitTimer(loop_, &reap_timer_, this)) uv_timer_start(reap_timer_.get(), &SnapshotStreamer::OnReapTimer, 0, 5);
      return;
    }
    if (used_ == kSnapshotChunkBytes) Deliver();
  }
}

void SnapshotStreamer::OnReapTimer(uv_timer_t* t) { static_cast<SnapshotStreamer*>(t->data)->TryReap(); }

void SnapshotStreamer::TryReap() {
  int wstatus = 0;
  const pid_t r = ::waitpid(pid_, &wstatus, WNOHANG);
  if (r == 0 || (r < 0 && errno == EINTR)) return;  // not yet: the timer retries
  pid_ = -1;
  reap_timer_.reset();
  Status st;
  if (r < 0) {
    st = Status::FromErrno(errno, "snapshot transfer: waitpid");
  } else if (WIFSIGNALED(wstatus)) {
    st = Status::IOError("snapshot transfer child killed by signal " + std::to_string(WTERMSIG(wstatus)));
  } else if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    st = Status::IOError("snapshot transfer child failed (exit status " +
                         std::to_string(WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1) + ")");
  }
  cb_.on_done(st, bytes_, crc_);
}

void SnapshotStreamer::Abort() {
  poll_.reset();
  reap_timer_.reset();
  fd_.reset();
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int wstatus = 0;
  while (::waitpid(pid_, &wstatus, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

}  // namespace kvd::daemon::repl
