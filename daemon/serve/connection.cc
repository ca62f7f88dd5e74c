#include "serve/connection.h"

#include <spdlog/spdlog.h>

#include <string>

namespace kvd::daemon {
namespace {
// Each read asks for at least this much room (Redis reads 16 KiB at a time).
constexpr size_t kReadChunk = 16 * 1024;
// Synchronous sends per Flush before yielding to other connections.
constexpr int kMaxSyncSends = 4;
}  // namespace

Connection::Connection(uint64_t id, RequestHandler* handler, Session::Limits limits,
                       std::unique_ptr<Codec> codec, ConnectionHost* host, ServerCounters* counters,
                       StreamFilter* filter)
    : session_(id, handler, limits, std::move(codec)),
      host_(host),
      counters_(counters),
      filter_(filter != nullptr ? filter : PassThroughFilter::Shared()),
      last_activity_(std::chrono::steady_clock::now()) {}

bool Connection::Accept(uv_loop_t* loop, uv_stream_t* server) {
  const int r = socket_.Accept(loop, server);
  // Set even on failure: the close callback finds the object through it.
  if (socket_.initialised()) socket_.handle()->data = this;
  write_req_.data = this;
  if (r != 0) return false;
  session_.set_peer(PeerOf(stream()));
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("connection {} opened by {}", id(), session_.peer().Describe());
  }
  UpdateReading();
  return true;
}

void Connection::OnAlloc(uv_handle_t* h, size_t /*suggested*/, uv_buf_t* buf) {
  auto* self = static_cast<Connection*>(h->data);
  self->read_space_ = self->session_.input().Space(kReadChunk);
  auto target = self->filter_->ReadTarget(self->read_space_);
  *buf = uv_buf_init(target.data(), static_cast<unsigned>(std::min<size_t>(target.size(), 1u << 30)));
}

void Connection::OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* /*buf*/) {
  auto* self = static_cast<Connection*>(s->data);
  if (nread == 0) return;  // EAGAIN
  if (nread < 0) {
    if (nread == UV_EOF) {
      self->peer_eof_ = true;  // half-close: still answer what was sent
    } else {
      self->failed_ = true;  // reset: nobody to answer
    }
    self->UpdateReading();
    self->host_->MarkDirty(self);
    return;
  }
  self->counters_->bytes_in += static_cast<uint64_t>(nread);
  auto plain = self->filter_->OnRead(self->read_space_, static_cast<size_t>(nread));
  if (!plain.has_value()) {
    self->failed_ = true;
    self->UpdateReading();
    self->host_->MarkDirty(self);
    return;
  }
  self->session_.input().Commit(*plain);
  self->last_activity_ = std::chrono::steady_clock::now();
  self->session_.NoteRead(self->last_activity_);
  self->session_.Process();
  self->host_->MarkDirty(self);
}

void Connection::Flush() {
  if (!socket_.initialised()) return;
  // The output is tried on the socket at once first: a reply nearly always
  // fits in the socket buffer, while a uv_write that completes at once still
  // costs a deferred callback (one more loop round with a zero timeout) and an
  // epoll_ctl to drop POLLOUT again (libuv 1.44 uv__drain) - measured with
  // strace -c as one epoll_ctl per request. Only what does not fit goes
  // through uv_write (OnWrite then counts the whole buffer). The rounds are
  // bounded so one pipelining client cannot hold the loop (it stays dirty).
  for (int round = 0; !failed_; ++round) {
    session_.Process();
    if (session_.sending() || !session_.HasOutput()) break;
    if (round == kMaxSyncSends) {
      host_->MarkDirty(this);
      break;
    }
    std::string_view out = filter_->OnWrite(session_.BeginSend());
    uv_buf_t b = uv_buf_init(const_cast<char*>(out.data()), static_cast<unsigned>(out.size()));
    const int n = uv_try_write(stream(), &b, 1);
    if (n >= 0 && static_cast<size_t>(n) == out.size()) {
      counters_->bytes_out += out.size();
      last_activity_ = std::chrono::steady_clock::now();
      session_.SendDoneAt(last_activity_);
      continue;
    }
    if (n < 0 && n != UV_EAGAIN) {
      session_.SendDone();
      failed_ = true;
      break;
    }
    const size_t done = n > 0 ? static_cast<size_t>(n) : 0;
    b = uv_buf_init(const_cast<char*>(out.data() + done), static_cast<unsigned>(out.size() - done));
    if (uv_write(&write_req_, stream(), &b, 1, &Connection::OnWrite) != 0) {
      session_.SendDone();
      failed_ = true;
    }
    break;
  }
  UpdateReading();
  const bool finished = session_.close_requested() || peer_eof_;
  if (failed_ || (finished && session_.Quiescent() && (session_.close_requested() || session_.Idle()))) {
    if (session_.bad_frames() > 0) {
      ++counters_->bad_frames;
      spdlog::warn("connection {} ({}): protocol error: {}; closed", id(), session_.peer().Describe(),
                   session_.stream_error());
    } else if (spdlog::should_log(spdlog::level::debug)) {
      spdlog::debug("connection {} ({}) closed{}", id(), session_.peer().Describe(),
                    failed_ ? " after a socket error" : "");
    }
    host_->RequestClose(this);
  }
}

void Connection::OnWrite(uv_write_t* req, int status) {
  auto* self = static_cast<Connection*>(req->data);
  self->last_activity_ = std::chrono::steady_clock::now();
  if (status == 0) {
    self->counters_->bytes_out += self->session_.sending_bytes();  // plain bytes
    self->session_.SendDoneAt(self->last_activity_);
  } else {
    self->session_.SendDone();
  }
  if (status == UV_ECANCELED) return;  // closing; the object dies in the close callback
  if (status < 0) self->failed_ = true;
  self->host_->MarkDirty(self);
}

void Connection::UpdateReading() {
  const bool want = socket_.initialised() && !failed_ && !peer_eof_ && !stop_reading_ && session_.WantsRead();
  if (want == reading_) return;
  if (want) {
    reading_ = uv_read_start(stream(), &Connection::OnAlloc, &Connection::OnRead) == 0;
  } else {
    uv_read_stop(stream());
    reading_ = false;
  }
}

void Connection::StopReading() {
  stop_reading_ = true;
  UpdateReading();
}

void Connection::StartClose() {
  if (!socket_.initialised() || uv_is_closing(socket_.handle())) {
    if (!socket_.initialised()) delete this;
    return;
  }
  uv_close(socket_.handle(), [](uv_handle_t* h) { delete static_cast<Connection*>(h->data); });
}

void RefuseConnection(uv_loop_t* loop, uv_stream_t* server, const Protocol& protocol, Code code,
                      std::string_view message) {
  auto* socket = new StreamSocket;
  const int r = socket->Accept(loop, server);
  if (!socket->initialised()) {
    delete socket;
    return;
  }
  socket->handle()->data = socket;
  if (r == 0) {
    std::string frame;
    protocol.EncodeRefusal(code, message, &frame);
    uv_buf_t b = uv_buf_init(frame.data(), static_cast<unsigned>(frame.size()));
    (void)uv_try_write(socket->stream(), &b, 1);
  }
  uv_close(socket->handle(), [](uv_handle_t* h) { delete static_cast<StreamSocket*>(h->data); });
}

}  // namespace kvd::daemon
