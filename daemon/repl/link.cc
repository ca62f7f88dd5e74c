#include "repl/link.h"

#include <netinet/in.h>

#include <cstring>
#include <span>

#include "net/host_port.h"

namespace kvd::daemon::repl {
namespace {

struct WriteReq {
  uv_write_t req;
  std::string data;
  std::shared_ptr<void> shared;
};

std::string PeerName(uv_tcp_t* tcp) {
  sockaddr_storage a{};
  int len = sizeof a;
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&a), &len) != 0) return "?";
  char ip[64] = {0};
  HostPort hp;
  if (a.ss_family == AF_INET6) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&a);
    uv_ip6_name(a6, ip, sizeof ip);
    hp.port = ntohs(a6->sin6_port);
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&a);
    uv_ip4_name(a4, ip, sizeof ip);
    hp.port = ntohs(a4->sin_port);
  }
  hp.host = ip;
  return hp.ToString();
}

}  // namespace

Link::Link(uv_tcp_t* tcp, Handler* handler, std::unique_ptr<StreamFilter> filter)
    : Link(tcp, handler, filter != nullptr ? filter.get() : PassThroughFilter::Shared()) {
  own_filter_ = std::move(filter);
}

Link::Link(uv_tcp_t* tcp, Handler* handler, StreamFilter* filter)
    : tcp_(tcp), handler_(handler), filter_(filter), shared_(std::make_shared<Shared>()) {
  shared_->link = this;
  tcp_->data = this;
  peer_ = PeerName(tcp_);
  in_.resize(64 * 1024);
}

Link::~Link() {
  shared_->link = nullptr;
  tcp_->data = nullptr;
  auto* h = reinterpret_cast<uv_handle_t*>(tcp_);
  if (!uv_is_closing(h)) uv_close(h, [](uv_handle_t* c) { delete reinterpret_cast<uv_tcp_t*>(c); });
}

void Link::Start() {
  uv_tcp_nodelay(tcp_, 1);
  const int r = uv_read_start(reinterpret_cast<uv_stream_t*>(tcp_), &Link::OnAlloc, &Link::OnRead);
  if (r != 0) return Close(Status::IOError(std::string("read: ") + uv_strerror(r)));
  Flush();  // a TLS client's ClientHello
}

void Link::Send(MsgType type, Epoch epoch, std::initializer_list<std::string_view> body) {
  if (closed_) return;
  std::string frame;
  AppendFrame(&frame, type, epoch, body);
  const std::string_view wire = filter_->OnWrite(frame);
  if (wire.data() == frame.data() && wire.size() == frame.size()) {
    Write(std::move(frame));
  } else if (!wire.empty()) {
    Write(std::string(wire));
  }
  Flush();
}

void Link::Flush() {
  std::string out;
  const Status st = filter_->TakeOutput(&out);
  // Written even after a failure: it may hold the alert telling the peer why.
  if (!out.empty()) Write(std::move(out));
  if (!st.ok()) Close(st);
}

void Link::Write(std::string data) {
  // Straight to the socket when nothing is queued (uv_try_write refuses
  // while writes are queued, so the order holds): no request, no callback,
  // and no epoll_ctl that a finished uv_write costs libuv 1.44. Only what
  // the socket did not take is queued.
  if (shared_->queued == 0) {
    uv_buf_t now = uv_buf_init(data.data(), static_cast<unsigned>(data.size()));
    const int n = uv_try_write(reinterpret_cast<uv_stream_t*>(tcp_), &now, 1);
    if (n > 0) {
      if (static_cast<size_t>(n) == data.size()) return;
      data.erase(0, static_cast<size_t>(n));
    } else if (n != UV_EAGAIN && n != UV_ENOSYS) {
      return Close(Status::IOError(std::string("write: ") + uv_strerror(n)));
    }
  }
  auto* w = new WriteReq;
  w->data = std::move(data);
  w->shared = shared_;
  shared_->queued += w->data.size();
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  const int r = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(tcp_), &buf, 1, [](uv_write_t* req, int status) {
    auto* wr = reinterpret_cast<WriteReq*>(req);
    auto shared = std::static_pointer_cast<Shared>(wr->shared);
    shared->queued -= wr->data.size();
    delete wr;
    Link* link = shared->link;
    if (link == nullptr || link->closed_) return;
    if (status < 0) {
      link->Close(Status::IOError(std::string("write: ") + uv_strerror(status)));
    } else if (shared->queued < kLowWater) {
      link->handler_->OnWritable();
    }
  });
  if (r != 0) {
    shared_->queued -= w->data.size();
    delete w;
    Close(Status::IOError(std::string("write: ") + uv_strerror(r)));
  }
}

void Link::Fail(Code code, const std::string& reason, Epoch epoch) {
  Send(MsgType::kError, epoch, {EncodeError({code, reason})});
  Close(Status(code, reason));
}

void Link::Close(const Status& why) {
  if (closed_) return;
  closed_ = true;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(tcp_));
  // Queued writes still go out (an ERROR frame reaches the peer); the
  // handle is closed when the Link is destroyed.
  handler_->OnClosed(why);
}

void Link::OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<Link*>(h->data);
  if (self == nullptr) {
    *buf = uv_buf_init(nullptr, 0);
    return;
  }
  if (self->in_.size() - self->in_used_ < 16 * 1024) self->in_.resize(self->in_.size() * 2);
  std::span<char> free(self->in_.data() + self->in_used_, self->in_.size() - self->in_used_);
  std::span<char> target = self->filter_->ReadTarget(free);
  *buf = uv_buf_init(target.data(), static_cast<unsigned>(target.size()));
}

void Link::OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t*) {
  auto* self = static_cast<Link*>(s->data);
  if (self == nullptr || self->closed_) return;
  if (n == UV_EOF) return self->Close(Status::IOError("connection closed by the peer"));
  if (n < 0) return self->Close(Status::IOError(std::string("read: ") + uv_strerror(static_cast<int>(n))));
  if (n == 0) return;
  // A filter may decrypt more than fits: Consume makes room, then it goes on
  // with no new bytes (n = 0) until it has nothing more.
  for (size_t fresh = static_cast<size_t>(n);; fresh = 0) {
    std::span<char> free(self->in_.data() + self->in_used_, self->in_.size() - self->in_used_);
    auto plain = self->filter_->OnRead(free, fresh);
    self->Flush();  // a handshake's reply, or the alert of a failed one
    if (self->closed_) return;
    if (!plain) return self->Close(plain.error());
    self->in_used_ += *plain;
    self->bytes_in_ += *plain;
    self->Consume();
    if (self->closed_ || !self->filter_->HasPendingPlain()) return;
  }
}

void Link::Consume() {
  size_t pos = 0;
  while (!closed_) {
    size_t used = 0;
    auto r = DecodeFrame(std::string_view(in_.data() + pos, in_used_ - pos), &used);
    if (!r) {
      Fail(r.error().code(), "bad frame: " + r.error().message(), 0);
      return;
    }
    if (!r->has_value()) break;
    pos += used;
    handler_->OnFrame(**r);
  }
  if (closed_) return;
  // Keep the unread part at the front, with room for the frame it begins.
  std::memmove(in_.data(), in_.data() + pos, in_used_ - pos);
  in_used_ -= pos;
  if (in_used_ >= 4) {
    uint32_t len = 0;
    for (int i = 3; i >= 0; --i) len = (len << 8) | static_cast<uint8_t>(in_[static_cast<size_t>(i)]);
    if (in_.size() < len + 4 + 16 * 1024) in_.resize(len + 4 + 16 * 1024);
  }
}

}  // namespace kvd::daemon::repl
