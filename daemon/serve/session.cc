#include "serve/session.h"

#include <cstring>
#include <functional>

namespace kvd::daemon {
namespace {

// While a barrier waits, stop reading once this much input is buffered:
// the client cannot make progress faster than the barrier anyway.
constexpr size_t kMaxBufferedWhileBlocked = 256 * 1024;

// Write keys tracked for GETs answered ahead; past this a GET simply waits
// (a linear scan stays cheaper than a hash set at pipeline depths).
constexpr size_t kMaxTrackedWriteKeys = 256;

uint64_t KeyHash(std::string_view key) { return std::hash<std::string_view>{}(key); }

uint64_t LoadU64(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

}  // namespace

bool IsSubmittedAtOnce(proto::Opcode op) {
  return proto::IsWriteOpcode(op) || op == proto::Opcode::kFlush;
}

void Session::NoteWriteKey(std::string_view key) {
  if (write_keys_.size() >= kMaxTrackedWriteKeys) {
    write_keys_overflow_ = true;
    return;
  }
  write_keys_.push_back(KeyHash(key));
}

bool Session::MayHavePendingWrite(std::string_view key) const {
  if (write_keys_overflow_) return true;
  const uint64_t h = KeyHash(key);
  for (uint64_t k : write_keys_) {
    if (k == h) return true;
  }
  return false;
}

void Session::Process() {
  replies_.Drain(&out_);
  ForgetWriteKeysIfDrained();
  blocked_ = false;
  while (!close_after_flush_) {
    UpdateOutputPause();
    if (output_paused_) break;
    auto data = input_.data();
    auto split = proto::SplitFrame(data, limits_.max_frame_bytes);
    if (!split.has_value()) {
      // Too large or too short to hold a header. The id is readable if the
      // header arrived, so the client can tell which request failed.
      uint64_t id = 0;
      auto op = proto::Opcode::kPing;
      if (data.size() >= proto::kLengthBytes + proto::kRequestHeaderBytes) {
        id = LoadU64(data.data() + proto::kLengthBytes + 8);
        uint8_t raw = static_cast<uint8_t>(data[proto::kLengthBytes + 3]);
        if (proto::IsKnownOpcode(raw)) op = static_cast<proto::Opcode>(raw);
      }
      Status err = split.error();
      FailFrame(err.code(), err.message(), id, op);
      break;
    }
    if (!split->has_value()) break;  // need more bytes
    const size_t frame_len = **split;
    auto frame = data.first(frame_len);
    proto::RequestHeader partial;
    auto req = proto::DecodeRequest(frame, &partial);
    if (!req.has_value()) {
      Status err = req.error();
      FailFrame(err.code(), err.message(), partial.request_id, partial.opcode);
      break;
    }
    const proto::Opcode op = req->header.opcode;
    Status st;
    if (IsSubmittedAtOnce(op)) {
      ForgetWriteKeysIfDrained();  // before this write's slot and keys go in
      uint64_t seq = replies_.Push(req->header.request_id, op);
      st = handler_->Submit(*this, seq, *req);
      if (!st.ok()) {
        // The slot is ours: answer it with the error, then close.
        replies_.Complete(seq, st.code(), 0, 0, st.message());
        ++bad_frames_;
        close_after_flush_ = true;
      }
    } else {
      replies_.Drain(&out_);
      ForgetWriteKeysIfDrained();
      if (replies_.empty()) {
        st = handler_->Evaluate(*this, *req, &out_);
        if (!st.ok()) FailFrame(st.code(), st.message(), req->header.request_id, op);
      } else if (op != proto::Opcode::kGet || !CanAnswerAhead() || !handler_->EvaluateAhead(*this, *req)) {
        blocked_ = true;  // leave the frame in the buffer; resume on completion
        break;
      }
    }
    input_.Consume(frame_len);
    replies_.Drain(&out_);
  }
  UpdateOutputPause();
  input_.ShrinkIfIdle(1 << 20);
}

void Session::FailFrame(Code code, std::string_view message, uint64_t request_id,
                        proto::Opcode op) {
  ++bad_frames_;
  uint64_t seq = replies_.Push(request_id, op);
  replies_.Complete(seq, code, 0, 0, message);
  replies_.Drain(&out_);
  close_after_flush_ = true;
}

void Session::UpdateOutputPause() {
  const uint64_t unsent = unsent_bytes();
  if (output_paused_) {
    if (unsent <= limits_.max_pending_reply_bytes / 2) output_paused_ = false;
  } else if (unsent > limits_.max_pending_reply_bytes) {
    output_paused_ = true;
  }
}

std::string_view Session::BeginSend() {
  sending_.swap(out_);
  out_.clear();
  sending_active_ = true;
  return sending_;
}

void Session::SendDone() {
  sending_.clear();
  sending_active_ = false;
  // Do not keep a huge buffer around after one large reply.
  if (sending_.capacity() > (4u << 20)) std::string().swap(sending_);
}

bool Session::WantsRead() const {
  if (close_after_flush_ || output_paused_) return false;
  if (blocked_ && input_.size() >= kMaxBufferedWhileBlocked) return false;
  return true;
}

bool Session::Idle() const {
  if (!replies_.empty()) return false;
  auto split = proto::SplitFrame(input_.data(), limits_.max_frame_bytes);
  return split.has_value() && !split->has_value();
}

}  // namespace kvd::daemon
