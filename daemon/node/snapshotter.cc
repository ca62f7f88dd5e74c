#include "node/snapshotter.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "node/snapshot_child.h"

namespace kvd::daemon {
namespace {
using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::steady_clock;
}  // namespace

Snapshotter::Snapshotter(uv_loop_t* loop, Engine* engine, Env* env, std::string dir, DoneFn on_done)
    : loop_(loop), engine_(engine), env_(env), dir_(std::move(dir)), on_done_(std::move(on_done)) {}

Snapshotter::~Snapshotter() { Abort(); }

Status Snapshotter::Start(std::string reason) {
  if (running()) return Status::Ok();
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    Status st = Status::FromErrno(errno, "snapshot: pipe");
    SnapshotOutcome o;
    o.status = st;
    o.reason = reason;
    on_done_(o);
    return st;
  }
  Fd read_end(fds[0]), write_end(fds[1]);
  lsn_ = engine_->SnapshotLsn();
  started_ = steady_clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    read_end.reset();
    RunSnapshotChild(env_, dir_, engine_->state(), lsn_, write_end.get());
  }
  fork_time_ = duration_cast<microseconds>(steady_clock::now() - started_);
  if (pid < 0) {
    Status st = Status::FromErrno(errno, "snapshot: fork");
    SnapshotOutcome o;
    o.status = st;
    o.lsn = lsn_;
    o.reason = reason;
    on_done_(o);
    return st;
  }
  write_end.reset();  // EOF on read_end once the child is gone
  ::fcntl(read_end.get(), F_SETFL, ::fcntl(read_end.get(), F_GETFL) | O_NONBLOCK);
  pid_ = pid;
  reason_ = std::move(reason);
  result_.clear();
  eof_ = false;
  result_fd_ = std::move(read_end);
  if (uv_poll_init(loop_, poll_.Allocate(), result_fd_.get()) == 0) {
    poll_.MarkInitialised();
    poll_->data = this;
    uv_poll_start(poll_.get(), UV_READABLE | UV_DISCONNECT, &Snapshotter::OnReadable);
  } else {
    poll_.reset();
    eof_ = true;  // fall back to reaping by timer; the result is read then
  }
  if (InitTimer(loop_, &reap_timer_, this)) {
    // Safety net: poll for the child's exit even if the pipe never signals.
    uv_timer_start(reap_timer_.get(), &Snapshotter::OnReapTimer, 200, 200);
  }
  return Status::Ok();
}

void Snapshotter::OnReadable(uv_poll_t* h, int /*status*/, int /*events*/) {
  auto* self = static_cast<Snapshotter*>(h->data);
  self->ReadResult();
  if (self->eof_) self->TryReap();
}

void Snapshotter::ReadResult() {
  if (!result_fd_.valid()) return;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(result_fd_.get(), buf, sizeof buf);
    if (n > 0) {
      if (result_.size() < 4096) result_.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    eof_ = true;  // EOF or a hard error: nothing more will come
    poll_.reset();
    result_fd_.reset();
    if (reap_timer_) uv_timer_start(reap_timer_.get(), &Snapshotter::OnReapTimer, 1, 2);
    return;
  }
}

void Snapshotter::OnReapTimer(uv_timer_t* t) {
  auto* self = static_cast<Snapshotter*>(t->data);
  self->ReadResult();
  self->TryReap();
}

void Snapshotter::TryReap() {
  if (pid_ <= 0) return;
  int wstatus = 0;
  ::rusage ru;
  std::memset(&ru, 0, sizeof ru);
  pid_t r = ::wait4(pid_, &wstatus, WNOHANG, &ru);
  if (r == 0) return;  // still running; the timer retries
  if (r < 0 && errno == EINTR) return;
  if (r < 0) wstatus = -1;
  Finish(wstatus, ru);
}

void Snapshotter::Finish(int wstatus, const ::rusage& ru) {
  ReadResult();  // anything written just before exit
  SnapshotOutcome o;
  o.reason = reason_;
  o.lsn = lsn_;
  o.fork_time = fork_time_;
  o.duration = duration_cast<microseconds>(steady_clock::now() - started_);
  o.child_peak_rss_bytes = static_cast<uint64_t>(ru.ru_maxrss) * 1024;  // KiB on Linux
  auto parsed = ParseChildResult(std::as_bytes(std::span(result_.data(), result_.size())));
  if (parsed.has_value() && parsed->ok) {
    o.lsn = parsed->lsn;
    o.entries = parsed->entries;
    o.bytes = parsed->bytes;
    o.child_write = parsed->duration;
  } else if (parsed.has_value()) {
    o.status = Status::IOError("snapshot child failed: " + parsed->error);
  } else if (wstatus != -1 && WIFSIGNALED(wstatus)) {
    o.status = Status::IOError("snapshot child killed by signal " + std::to_string(WTERMSIG(wstatus)));
  } else {
    o.status = Status::IOError("snapshot child exited (status " +
                               std::to_string(wstatus != -1 && WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1) +
                               ") without a result: " + parsed.error().message());
  }
  pid_ = -1;
  poll_.reset();
  reap_timer_.reset();
  result_fd_.reset();
  on_done_(o);  // may Start() the next snapshot
}

void Snapshotter::Abort() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int wstatus = 0;
  while (::waitpid(pid_, &wstatus, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  poll_.reset();
  reap_timer_.reset();
  result_fd_.reset();
}

}  // namespace kvd::daemon
