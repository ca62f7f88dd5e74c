// The blocking client. The socket stays in blocking mode; when a timeout is
// set, SO_SNDTIMEO/SO_RCVTIMEO bound every send, recv and the connect itself
// (a Unix-socket connect that waits for backlog room honours SO_SNDTIMEO).
#include "kvd/client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

namespace kvd {
namespace {

// Replies are bounded only to reject garbage: a server may be configured with
// a max_frame_bytes above the default, and bytes are buffered as they arrive,
// never allocated up front from a length field.
constexpr uint32_t kMaxReplyFrameBytes = 1u << 30;
constexpr size_t kReadChunk = 64 * 1024;

std::span<const std::byte> AsBytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

Status SocketError(const std::string& path, std::string_view what, int err,
                   std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
  if (err == EAGAIN || err == EWOULDBLOCK || err == EINPROGRESS || err == ETIMEDOUT) {
    return Status::IOError("kvd socket " + path + ": " + std::string(what) + ": timed out after " +
                           std::to_string(timeout.count()) + " ms");
  }
  return Status::IOError("kvd socket " + path + ": " + std::string(what) + ": " + std::strerror(err));
}

Status SetTimeouts(int fd, std::chrono::milliseconds timeout) {
  if (timeout.count() <= 0) return Status();
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
    return Status::FromErrno(errno, "setsockopt(SO_RCVTIMEO/SO_SNDTIMEO)");
  }
  return Status();
}

// A connect interrupted by a signal goes on in the background: wait for it.
int FinishInterruptedConnect(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLOUT, 0};
  const int wait_ms = timeout.count() > 0 ? static_cast<int>(timeout.count()) : -1;
  int r;
  do {
    r = ::poll(&p, 1, wait_ms);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return ETIMEDOUT;
  if (r < 0) return errno;
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

}  // namespace

Status Reply::status() const {
  if (ok()) return Status();
  return Status(header.status, payload);
}

Result<std::unique_ptr<Client>> Client::Connect(const std::string& socket_path,
                                                std::chrono::milliseconds timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.empty() || socket_path.size() >= sizeof(addr.sun_path)) {
    return Status::InvalidArgument("kvd socket path '" + socket_path + "' is empty or longer than " +
                                   std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return SocketError(socket_path, "socket", errno);
  KVD_RETURN_IF_ERROR(SetTimeouts(fd.get(), timeout).Annotate("kvd socket " + socket_path));
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    if (err == EINTR) err = FinishInterruptedConnect(fd.get(), timeout);
    if (err != 0) return SocketError(socket_path, "connect", err, timeout);
  }
  std::unique_ptr<Client> c(new Client(std::move(fd), timeout));
  c->path_ = socket_path;
  return c;
}

uint64_t Client::Queue(proto::Opcode op, uint16_t flags,
                       std::initializer_list<std::string_view> payload_parts) {
  const uint64_t id = next_id_++;
  proto::EncodeRequest(&out_, proto::RequestHeader{op, flags, id}, payload_parts);
  return id;
}

Status Client::Flush() {
  size_t sent = 0;
  while (sent < out_.size()) {
    ssize_t n = ::send(fd_.get(), out_.data() + sent, out_.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      out_.clear();  // the stream is broken: a partial frame cannot be resumed
      return SocketError(path_, "send", err, timeout_);
    }
    sent += static_cast<size_t>(n);
  }
  out_.clear();
  return Status();
}

Status Client::ReadSome() {
  if (in_pos_ == in_.size()) {
    in_.clear();
    in_pos_ = 0;
  } else if (in_pos_ >= kReadChunk && in_pos_ * 2 >= in_.size()) {
    in_.erase(0, in_pos_);
    in_pos_ = 0;
  }
  char buf[kReadChunk];
  for (;;) {
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n > 0) {
      in_.append(buf, static_cast<size_t>(n));
      return Status();
    }
    if (n == 0) {
      return Status::IOError("kvd socket " + path_ + ": connection closed by the server" +
                             (in_pos_ < in_.size() ? " in the middle of a reply" : ""));
    }
    if (errno != EINTR) return SocketError(path_, "recv", errno, timeout_);
  }
}

Result<Reply> Client::Receive() {
  for (;;) {
    auto avail = AsBytes(std::string_view(in_).substr(in_pos_));
    auto split = proto::SplitFrame(avail, kMaxReplyFrameBytes, proto::kReplyHeaderBytes);
    if (!split) return split.error().Annotate("kvd socket " + path_ + ": bad reply");
    if (!split->has_value()) {
      KVD_RETURN_IF_ERROR(ReadSome());
      continue;
    }
    auto frame = avail.first(**split);
    auto header = proto::DecodeReplyHeader(frame);
    if (!header) return header.error().Annotate("kvd socket " + path_ + ": bad reply");
    auto payload = proto::ReplyPayload(frame);
    Reply reply;
    reply.header = *header;
    reply.payload.assign(reinterpret_cast<const char*>(payload.data()), payload.size());
    in_pos_ += frame.size();
    return reply;
  }
}

Result<Reply> Client::Call(proto::Opcode op, uint16_t flags,
                           std::initializer_list<std::string_view> payload_parts) {
  const uint64_t id = Queue(op, flags, payload_parts);
  KVD_RETURN_IF_ERROR(Flush());
  KVD_ASSIGN_OR_RETURN(Reply reply, Receive());
  if (reply.header.request_id != id && reply.header.request_id == 0 && !reply.ok()) {
    // A connection-level error (e.g. kBusy past max_connections) that the
    // server sent before closing: it answers no request in particular.
    return reply.status();
  }
  if (reply.header.request_id != id) {
    return Status::Internal("kvd socket " + path_ + ": reply to request " +
                            std::to_string(reply.header.request_id) + " while waiting for " +
                            std::to_string(id) + " (unreceived pipelined replies?)");
  }
  return reply;
}

// ---- convenience --------------------------------------------------------------

namespace {
WriteAck AckOf(const Reply& r) {
  WriteAck a;
  a.lsn = r.header.lsn;
  a.durable_lsn = r.header.durable_lsn;
  return a;
}
uint16_t DurableFlag(bool durable) { return durable ? proto::kFlagDurable : 0; }
}  // namespace

Status Client::Ping() {
  KVD_ASSIGN_OR_RETURN(Reply r, Call(proto::Opcode::kPing));
  return r.status();
}

Result<Reply> Client::CallRead(proto::Opcode op, Lsn min_lsn, std::string_view payload) {
  if (min_lsn == 0) return Call(op, 0, {payload});
  const std::string lsn = proto::EncodeU64(min_lsn);
  return Call(op, proto::kFlagMinLsn, {lsn, payload});
}

Result<std::optional<std::string>> Client::Get(std::string_view key, Lsn min_lsn) {
  KVD_ASSIGN_OR_RETURN(Reply r, CallRead(proto::Opcode::kGet, min_lsn, key));
  if (r.header.status == Code::kNotFound) return std::optional<std::string>();
  if (!r.ok()) return r.status();
  return std::optional<std::string>(std::move(r.payload));
}

Result<WriteAck> Client::Put(std::string_view key, std::string_view value, bool durable) {
  // Only the 4-byte key length is built here; key and value go out as they are.
  std::string len = proto::EncodeU64(key.size()).substr(0, 4);
  KVD_ASSIGN_OR_RETURN(Reply r, Call(proto::Opcode::kPut, DurableFlag(durable), {len, key, value}));
  if (!r.ok()) return r.status();
  return AckOf(r);
}

Result<WriteAck> Client::Del(std::string_view key, bool durable) {
  KVD_ASSIGN_OR_RETURN(Reply r, Call(proto::Opcode::kDel, DurableFlag(durable), {key}));
  WriteAck ack = AckOf(r);
  if (r.header.status == Code::kNotFound) {
    ack.existed = false;
    return ack;
  }
  if (!r.ok()) return r.status();
  return ack;
}

Result<WriteAck> Client::Batch(std::span<const BatchOp> ops, bool durable) {
  const std::string payload = proto::EncodeBatchPayload(ops);
  KVD_ASSIGN_OR_RETURN(Reply r, Call(proto::Opcode::kBatch, DurableFlag(durable), {payload}));
  if (!r.ok()) return r.status();
  return AckOf(r);
}

Result<RangeDeleteAck> Client::DeleteRange(const KeyRange& range, bool durable) {
  const std::string payload = proto::EncodeDelRangePayload(range);
  KVD_ASSIGN_OR_RETURN(Reply r, Call(proto::Opcode::kDelRange, DurableFlag(durable), {payload}));
  if (!r.ok()) return r.status();
  KVD_ASSIGN_OR_RETURN(uint64_t removed, proto::DecodeU64(AsBytes(r.payload)));
  return RangeDeleteAck{r.header.lsn, r.header.durable_lsn, removed};
}

Result<BackupHandle> Client::BackupBegin() {
  KVD_ASSIGN_OR_RETURN(Reply r, Call(proto::Opcode::kBackupBegin));
  if (!r.ok()) return r.status();
  KVD_ASSIGN_OR_RETURN(proto::BackupBeginReply b, proto::DecodeBackupBeginReply(AsBytes(r.payload)));
  return BackupHandle{b.backup_id, r.header.lsn, b.size, b.entries};
}

Result<std::string> Client::BackupRead(uint64_t id, uint64_t offset, uint32_t max_bytes) {
  const std::string payload = proto::EncodeBackupReadPayload({id, offset, max_bytes});
  KVD_ASSIGN_OR_RETURN(Reply r, Call(proto::Opcode::kBackupRead, 0, {payload}));
  if (!r.ok()) return r.status();
  return std::move(r.payload);
}

Status Client::BackupEnd(uint64_t id) {
  const std::string payload = proto::EncodeU64(id);
  KVD_ASSIGN_OR_RETURN(Reply r, Call(proto::Opcode::kBackupEnd, 0, {payload}));
  return r.status();
}

Result<proto::ScanReply> Client::Scan(const proto::ScanArgs& args, Lsn min_lsn) {
  const std::string payload = proto::EncodeScanPayload(args);
  KVD_ASSIGN_OR_RETURN(Reply r, CallRead(proto::Opcode::kScan, min_lsn, payload));
  if (!r.ok()) return r.status();
  return proto::DecodeScanReply(AsBytes(r.payload));
}

Result<uint64_t> Client::Count(std::string_view prefix, Lsn min_lsn) {
  KVD_ASSIGN_OR_RETURN(Reply r, CallRead(proto::Opcode::kCount, min_lsn, prefix));
  if (!r.ok()) return r.status();
  return proto::DecodeU64(AsBytes(r.payload));
}

Result<Lsn> Client::FlushWal() {
  KVD_ASSIGN_OR_RETURN(Reply r, Call(proto::Opcode::kFlush));
  if (!r.ok()) return r.status();
  return r.header.lsn;
}

Result<Lsn> Client::Snapshot() {
  KVD_ASSIGN_OR_RETURN(Reply r, Call(proto::Opcode::kSnapshot));
  if (!r.ok()) return r.status();
  return r.header.lsn;
}

Result<std::string> Client::StatusJson() {
  KVD_ASSIGN_OR_RETURN(Reply r, Call(proto::Opcode::kStatus));
  if (!r.ok()) return r.status();
  return std::move(r.payload);
}

Result<uint64_t> Client::Promote(bool force, uint64_t epoch) {
  const std::string payload = proto::EncodePromotePayload({force, epoch});
  KVD_ASSIGN_OR_RETURN(Reply r, Call(proto::Opcode::kPromote, 0, {payload}));
  if (!r.ok()) return r.status();
  return proto::DecodeU64(AsBytes(r.payload));
}

Status Client::Replicate(std::string_view host_port) {
  KVD_ASSIGN_OR_RETURN(Reply r, Call(proto::Opcode::kReplicate, 0, {host_port}));
  return r.status();
}

Result<std::string> Client::ConfigGet(std::string_view name) {
  KVD_ASSIGN_OR_RETURN(Reply r, Call(proto::Opcode::kConfigGet, 0, {name}));
  if (!r.ok()) return r.status();
  return std::move(r.payload);
}

Status Client::ConfigSet(std::string_view name, std::string_view value) {
  const std::string payload = proto::EncodeConfigSetPayload(name, value);
  KVD_ASSIGN_OR_RETURN(Reply r, Call(proto::Opcode::kConfigSet, 0, {payload}));
  return r.status();
}

}  // namespace kvd
