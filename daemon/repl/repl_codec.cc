#include "repl/repl_codec.h"

#include <cstring>

#include "kvd/crc32c.h"

namespace kvd::daemon::repl {
namespace {

void PutU16(std::string* s, uint16_t v) {
  for (int i = 0; i < 2; ++i) s->push_back(static_cast<char>(v >> (8 * i)));
}
void PutU32(std::string* s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s->push_back(static_cast<char>(v >> (8 * i)));
}
void PutU64(std::string* s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s->push_back(static_cast<char>(v >> (8 * i)));
}
void PutStr(std::string* s, std::string_view v) {
  PutU16(s, static_cast<uint16_t>(std::min<size_t>(v.size(), 0xffff)));
  s->append(v.substr(0, 0xffff));
}
void PutHistory(std::string* s, const EpochHistory& h) {
  PutU32(s, static_cast<uint32_t>(h.entries().size()));
  for (const EpochStart& e : h.entries()) {
    PutU64(s, e.epoch);
    PutU64(s, e.first_lsn);
  }
}

uint64_t GetLE(const char* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// Reads a body front to back; any read past the end sets a sticky error.
class Reader {
 public:
  Reader(std::string_view body, std::string_view what) : in_(body), what_(what) {}
  uint64_t Int(int n) {
    if (!Need(static_cast<size_t>(n))) return 0;
    const uint64_t v = GetLE(in_.data(), n);
    in_.remove_prefix(static_cast<size_t>(n));
    return v;
  }
  std::string Str() {
    const auto n = static_cast<size_t>(Int(2));
    if (!Need(n)) return {};
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }
  // allow_empty: a HELLO asking for a snapshot transfer (§4.1) has none.
  EpochHistory History(bool allow_empty = false) {
    const uint64_t n = Int(4);
    EpochHistory h;
    if (n == 0 && allow_empty) return h;
    if (n == 0 || n > in_.size() / 16) {
      if (ok_) error_ = "epoch history with " + std::to_string(n) + " entries";
      ok_ = false;
      return h;
    }
    for (uint64_t i = 0; i < n && ok_; ++i) {
      const Epoch e = Int(8);
      const Lsn first = Int(8);
      if (Status st = h.Append(e, first); !st.ok() && ok_) {
        ok_ = false;
        error_ = "epoch history: " + st.message();
      }
    }
    return h;
  }
  std::string_view Rest() { return std::exchange(in_, std::string_view()); }
  Status Finish() {
    if (ok_ && !in_.empty()) {
      ok_ = false;
      error_ = std::to_string(in_.size()) + " bytes after the end";
    }
    return ok_ ? Status::Ok() : Status::InvalidArgument("bad " + std::string(what_) + " message: " + error_);
  }

 private:
  bool Need(size_t n) {
    if (ok_ && in_.size() >= n) return true;
    if (ok_) error_ = "truncated";
    ok_ = false;
    return false;
  }
  std::string_view in_;
  std::string_view what_;
  bool ok_ = true;
  std::string error_;
};

}  // namespace

std::string_view MsgTypeName(MsgType t) {
  switch (t) {
    case MsgType::kHello: return "HELLO";
    case MsgType::kWelcome: return "WELCOME";
    case MsgType::kWal: return "WAL";
    case MsgType::kAck: return "ACK";
    case MsgType::kHeartbeat: return "HEARTBEAT";
    case MsgType::kSnapshotBegin: return "SNAPSHOT_BEGIN";
    case MsgType::kSnapshotChunk: return "SNAPSHOT_CHUNK";
    case MsgType::kSnapshotEnd: return "SNAPSHOT_END";
    case MsgType::kError: return "ERROR";
  }
  return "?";
}

void AppendFrame(std::string* out, MsgType type, Epoch epoch, std::initializer_list<std::string_view> parts) {
  size_t body = 0;
  for (std::string_view p : parts) body += p.size();
  const size_t start = out->size();
  PutU32(out, static_cast<uint32_t>(kMinFrameLength + body));
  out->push_back(static_cast<char>(type));
  PutU64(out, epoch);
  for (std::string_view p : parts) out->append(p);
  const uint32_t crc = Crc32c(out->data() + start + 4, out->size() - start - 4);
  PutU32(out, Crc32cMask(crc));
}

Result<std::optional<Frame>> DecodeFrame(std::string_view buf, size_t* consumed) {
  *consumed = 0;
  if (buf.size() < 4) return std::optional<Frame>();
  const auto length = static_cast<uint32_t>(GetLE(buf.data(), 4));
  if (length < kMinFrameLength || length > kMaxFrameLength) {
    return Status::InvalidArgument("frame length " + std::to_string(length) + " out of range (" +
                                   std::to_string(kMinFrameLength) + " .. " + std::to_string(kMaxFrameLength) + ")");
  }
  // The type is checked as soon as it is there: garbage is refused without
  // waiting for a length's worth of it.
  if (buf.size() >= 5) {
    const auto t = static_cast<uint8_t>(buf[4]);
    if (t < static_cast<uint8_t>(MsgType::kHello) || t > static_cast<uint8_t>(MsgType::kError)) {
      return Status::InvalidArgument("unknown message type " + std::to_string(t));
    }
  }
  if (buf.size() < 4 + static_cast<size_t>(length)) return std::optional<Frame>();
  const char* p = buf.data();
  const uint32_t want = Crc32cUnmask(static_cast<uint32_t>(GetLE(p + length, 4)));
  const uint32_t got = Crc32c(p + 4, length - 4);
  if (want != got) return Status::Corruption("frame CRC mismatch");
  Frame f;
  f.type = static_cast<MsgType>(static_cast<uint8_t>(p[4]));
  f.epoch = GetLE(p + 5, 8);
  f.body = buf.substr(13, length - kMinFrameLength);
  *consumed = 4 + static_cast<size_t>(length);
  return std::optional<Frame>(f);
}

std::string EncodeHello(const Hello& m) {
  std::string s;
  PutU32(&s, m.protocol_version);
  PutStr(&s, m.node_name);
  PutU64(&s, m.last_lsn);
  PutU64(&s, m.durable_lsn);
  PutHistory(&s, m.history);
  return s;
}

std::string EncodeWelcome(const Welcome& m) {
  std::string s;
  PutStr(&s, m.primary_name);
  s.push_back(static_cast<char>(m.start));
  PutU64(&s, m.start_lsn);
  PutU64(&s, m.fork_lsn);
  PutHistory(&s, m.history);
  return s;
}

std::string EncodeWalHeader(const WalHeader& h) {
  std::string s;
  PutU64(&s, h.first_lsn);
  PutU64(&s, h.last_lsn);
  PutU64(&s, h.primary_durable_lsn);
  PutU64(&s, h.sent_at_us);
  return s;
}

std::string EncodeAck(const Ack& m) {
  std::string s;
  PutU64(&s, m.written_lsn);
  PutU64(&s, m.durable_lsn);
  PutU64(&s, m.applied_lsn);
  PutU64(&s, m.echo_sent_at_us);
  return s;
}

std::string EncodeHeartbeat(const Heartbeat& m) {
  std::string s;
  PutU64(&s, m.last_lsn);
  PutU64(&s, m.durable_lsn);
  PutU64(&s, m.sent_at_us);
  return s;
}

std::string EncodeError(const ErrorMessage& m) {
  std::string s;
  PutU16(&s, static_cast<uint16_t>(m.code));
  PutStr(&s, m.reason);
  return s;
}

Result<Hello> DecodeHello(std::string_view body) {
  Reader r(body, "HELLO");
  Hello m;
  m.protocol_version = static_cast<uint32_t>(r.Int(4));
  m.node_name = r.Str();
  m.last_lsn = r.Int(8);
  m.durable_lsn = r.Int(8);
  m.history = r.History(/*allow_empty=*/true);
  KVD_RETURN_IF_ERROR(r.Finish());
  if (m.durable_lsn > m.last_lsn) return Status::InvalidArgument("bad HELLO message: durable LSN after last LSN");
  if (m.history.empty() && m.last_lsn != 0) {
    return Status::InvalidArgument("bad HELLO message: no epoch history but last LSN " + std::to_string(m.last_lsn));
  }
  return m;
}

Result<Welcome> DecodeWelcome(std::string_view body) {
  Reader r(body, "WELCOME");
  Welcome m;
  m.primary_name = r.Str();
  const auto start = static_cast<uint8_t>(r.Int(1));
  m.start_lsn = r.Int(8);
  m.fork_lsn = r.Int(8);
  m.history = r.History();
  KVD_RETURN_IF_ERROR(r.Finish());
  if (start < 1 || start > 3) return Status::InvalidArgument("bad WELCOME message: start mode " + std::to_string(start));
  m.start = static_cast<StartMode>(start);
  return m;
}

Result<WalMessage> DecodeWal(std::string_view body) {
  Reader r(body, "WAL");
  WalMessage m;
  m.header.first_lsn = r.Int(8);
  m.header.last_lsn = r.Int(8);
  m.header.primary_durable_lsn = r.Int(8);
  m.header.sent_at_us = r.Int(8);
  m.records = r.Rest();
  KVD_RETURN_IF_ERROR(r.Finish());
  if (m.header.first_lsn == 0 || m.header.last_lsn < m.header.first_lsn || m.records.empty()) {
    return Status::InvalidArgument("bad WAL message: LSNs " + std::to_string(m.header.first_lsn) + ".." +
                                   std::to_string(m.header.last_lsn) + " with " + std::to_string(m.records.size()) +
                                   " record bytes");
  }
  return m;
}

Result<Ack> DecodeAck(std::string_view body) {
  Reader r(body, "ACK");
  Ack m;
  m.written_lsn = r.Int(8);
  m.durable_lsn = r.Int(8);
  m.applied_lsn = r.Int(8);
  m.echo_sent_at_us = r.Int(8);
  KVD_RETURN_IF_ERROR(r.Finish());
  if (m.durable_lsn > m.written_lsn || m.applied_lsn > m.written_lsn) {
    return Status::InvalidArgument("bad ACK message: durable or applied LSN after the written LSN");
  }
  return m;
}

Result<Heartbeat> DecodeHeartbeat(std::string_view body) {
  Reader r(body, "HEARTBEAT");
  Heartbeat m;
  m.last_lsn = r.Int(8);
  m.durable_lsn = r.Int(8);
  m.sent_at_us = r.Int(8);
  KVD_RETURN_IF_ERROR(r.Finish());
  return m;
}

Result<ErrorMessage> DecodeError(std::string_view body) {
  Reader r(body, "ERROR");
  ErrorMessage m;
  m.code = static_cast<Code>(r.Int(2));
  m.reason = r.Str();
  KVD_RETURN_IF_ERROR(r.Finish());
  return m;
}

}  // namespace kvd::daemon::repl
