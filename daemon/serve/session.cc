#include "serve/session.h"

#include <cstring>
#include <functional>

#include "kvd/mutation.h"
#include "serve/native_codec.h"

namespace kvd::daemon {
namespace {

// While a barrier waits, stop reading once this much input is buffered:
// the client cannot make progress faster than the barrier anyway.
constexpr size_t kMaxBufferedWhileBlocked = 256 * 1024;

// Write keys tracked for GETs answered ahead; past this a GET simply waits
// (a linear scan stays cheaper than a hash set at pipeline depths).
constexpr size_t kMaxTrackedWriteKeys = 256;

uint64_t KeyHash(std::string_view key) { return std::hash<std::string_view>{}(key); }

}  // namespace

Session::Session(uint64_t id, RequestHandler* handler, Limits limits, std::unique_ptr<Codec> codec)
    : id_(id),
      handler_(handler),
      limits_(limits),
      codec_(codec != nullptr ? std::move(codec) : std::make_unique<NativeCodec>(NativeCodec::Limits{})) {}

void Session::NoteWriteKey(std::string_view key) {
  if (write_keys_.size() >= kMaxTrackedWriteKeys) {
    write_keys_overflow_ = true;
    return;
  }
  write_keys_.push_back(KeyHash(key));
}

bool Session::MayHavePendingWrite(std::string_view key) const {
  if (KVD_MUTANT(get_ahead_of_pending_write)) return false;
  if (write_keys_overflow_) return true;
  const uint64_t h = KeyHash(key);
  for (uint64_t k : write_keys_) {
    if (k == h) return true;
  }
  return false;
}

void Session::Process() {
  replies_.Drain(*codec_, &out_);
  ForgetWriteKeysIfDrained();
  blocked_ = false;
  Command cmd;
  while (!close_after_flush_) {
    UpdateOutputPause();
    if (output_paused_) break;
    const DecodeResult d = codec_->Decode(input_.data(), consumed_requests_, &cmd);
    if (d.kind == DecodeResult::kNeedMore) break;
    if (d.kind == DecodeResult::kBroken) {
      FailStream(d.error, d.ref);
      break;
    }
    const Op op = cmd.ref.op;
    if (IsSubmittedAtOnce(op)) {
      ForgetWriteKeysIfDrained();  // before this write's slot and keys go in
      uint64_t seq = replies_.Push(cmd.ref);
      Status st = handler_->Submit(*this, seq, cmd);
      if (!st.ok()) {
        // The slot is ours: answer it with the error, then close.
        replies_.Complete(seq, st.code(), 0, 0, st.message());
        ++bad_frames_;
        close_after_flush_ = true;
      }
    } else {
      replies_.Drain(*codec_, &out_);
      ForgetWriteKeysIfDrained();
      if (replies_.empty()) {
        Reply reply;
        auto done = handler_->Evaluate(*this, cmd, &reply);
        if (!done.has_value()) {
          FailStream(done.error(), cmd.ref);
        } else if (*done == RequestHandler::Evaluated::kReplied) {
          codec_->EncodeReply(reply, &out_);
        }
      } else if (op != Op::kGet || !CanAnswerAhead() || !handler_->EvaluateAhead(*this, cmd)) {
        blocked_ = true;  // leave the request in the buffer; resume on completion
        break;
      }
    }
    input_.Consume(d.consumed);
    ++consumed_requests_;
    replies_.Drain(*codec_, &out_);
  }
  UpdateOutputPause();
  input_.ShrinkIfIdle(1 << 20);
}

void Session::FailStream(const Status& error, const RequestRef& ref) {
  ++bad_frames_;
  uint64_t seq = replies_.Push(ref);
  replies_.Complete(seq, error.code(), 0, 0, error.message());
  replies_.Drain(*codec_, &out_);
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
  return !codec_->HasRequest(input_.data());
}

}  // namespace kvd::daemon
