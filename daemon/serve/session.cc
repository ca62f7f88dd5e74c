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
// Range deletes tracked the same way (rare: past this every GET waits).
constexpr size_t kMaxTrackedWriteRanges = 16;

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

void Session::NoteWriteRange(const KeyRange& r) {
  if (write_ranges_.size() >= kMaxTrackedWriteRanges) {
    write_keys_overflow_ = true;
    return;
  }
  write_ranges_.push_back({r.prefix, std::string(r.a), std::string(r.b)});
}

bool Session::MayHavePendingWrite(std::string_view key) const {
  if (KVD_MUTANT(get_ahead_of_pending_write)) return false;
  if (write_keys_overflow_) return true;
  for (const OwnedRange& r : write_ranges_) {
    if (KeyRangeContains(KeyRange{r.prefix, r.a, r.b}, key)) return true;
  }
  const uint64_t h = KeyHash(key);
  for (uint64_t k : write_keys_) {
    if (k == h) return true;
  }
  return false;
}

void Session::DrainReplies() { Encoded(replies_.Drain(*codec_, &out_)); }

void Session::Process() {
  DrainReplies();
  ForgetWriteKeysIfDrained();
  blocked_ = false;
  Command& cmd = cmd_;
  while (!close_after_flush_) {
    UpdateOutputPause();
    if (output_paused_) break;
    if (input_.size() == incomplete_size_) break;  // nothing new since "need more"
    const DecodeResult d = codec_->Decode(input_.data(), consumed_requests_, &cmd);
    if (d.kind == DecodeResult::kNeedMore) {
      incomplete_size_ = input_.size();
      break;
    }
    if (d.kind == DecodeResult::kBroken) {
      FailStream(d.error, d.ref);
      break;
    }
    if (d.kind == DecodeResult::kClose) {
      // Answered in order like any request; not a protocol failure.
      replies_.Complete(replies_.Push(d.ref), Code::kOk, 0, 0);
      replies_.Drain(*codec_, &out_);
      close_after_flush_ = true;
      break;
    }
    const Op op = cmd.ref.op;
    TimeRequest(op, true);
    if (IsSubmittedAtOnce(op)) {
      if (!handler_->ReadyToSubmit(*this, cmd)) {
        if (limits_.latency != nullptr) timings_.pop_back();  // decoded again when it may go on
        blocked_ = true;
        break;
      }
      ForgetWriteKeysIfDrained();  // before this write's slot and keys go in
      uint64_t seq = replies_.Push(cmd.ref);
      Status st = handler_->Submit(*this, seq, cmd);
      if (!st.ok()) {
        // The slot is ours: answer it with the error, then close.
        replies_.Complete(seq, st.code(), 0, 0, st.message());
        if (bad_frames_ == 0) stream_error_ = st.ToString();
        ++bad_frames_;
        close_after_flush_ = true;
      }
    } else {
      DrainReplies();
      ForgetWriteKeysIfDrained();
      if (replies_.empty()) {
        Reply reply;
        auto done = handler_->Evaluate(*this, cmd, &reply);
        if (done.has_value() && *done == RequestHandler::Evaluated::kParked) {
          if (limits_.latency != nullptr) timings_.pop_back();  // decoded again when it may go on
          blocked_ = true;
          break;
        }
        if (!done.has_value()) {
          FailStream(done.error(), cmd.ref, /*timed=*/true);
        } else if (*done == RequestHandler::Evaluated::kReplied && !handler_->HoldReply(*this, reply)) {
          codec_->EncodeReply(reply, &out_);
          Encoded(1);
        }
      } else if (op != Op::kGet || !CanAnswerAhead() || !handler_->EvaluateAhead(*this, cmd)) {
        if (limits_.latency != nullptr) timings_.pop_back();  // decoded again once unblocked
        blocked_ = true;  // leave the request in the buffer; resume on completion
        break;
      }
    }
    input_.Consume(d.consumed);
    incomplete_size_ = kNotKnown;
    ++consumed_requests_;
    DrainReplies();
  }
  UpdateOutputPause();
  input_.ShrinkIfIdle(1 << 20);
}

void Session::FailStream(const Status& error, const RequestRef& ref, bool timed) {
  if (bad_frames_ == 0) stream_error_ = error.ToString();
  ++bad_frames_;
  if (!timed) TimeRequest(ref.op, false);
  uint64_t seq = replies_.Push(ref);
  replies_.Complete(seq, error.code(), 0, 0, error.message());
  DrainReplies();
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
  sending_count_ = encoded_;
  return sending_;
}

void Session::SendDoneAt(std::chrono::steady_clock::time_point at) {
  if (limits_.latency != nullptr) {
    for (size_t i = timings_head_; i < timings_head_ + sending_count_; ++i) {
      const Timing& t = timings_[i];
      if (!t.counted) continue;
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(at - t.read_at).count();
      limits_.latency->by_op[static_cast<size_t>(t.op) % kOpCount].Add(us > 0 ? static_cast<uint64_t>(us) : 0);
    }
  }
  SendDone();
}

void Session::SendDone() {
  if (limits_.latency != nullptr) {
    timings_head_ += sending_count_;
    if (timings_head_ == timings_.size()) {
      timings_.clear();  // the usual case: everything answered was sent
      timings_head_ = 0;
    } else if (timings_head_ >= 64 && timings_head_ * 2 >= timings_.size()) {
      timings_.erase(timings_.begin(), timings_.begin() + static_cast<std::ptrdiff_t>(timings_head_));
      timings_head_ = 0;
    }
    encoded_ -= sending_count_;
    sending_count_ = 0;
  }
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
  if (input_.size() == incomplete_size_) return true;
  return !codec_->HasRequest(input_.data());
}

}  // namespace kvd::daemon
