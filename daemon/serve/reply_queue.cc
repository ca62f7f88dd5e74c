#include "serve/reply_queue.h"

#include <algorithm>

namespace kvd::daemon {

uint64_t ReplyQueue::Push(const RequestRef& ref) {
  Slot& s = slots_.emplace_back();
  s.ref = ref;
  return base_seq_ + slots_.size() - 1;
}

bool ReplyQueue::Complete(uint64_t seq, Code status, Lsn durable_lsn, Lsn lsn,
                          std::string_view message) {
  if (seq < base_seq_ || seq - base_seq_ >= slots_.size()) return false;
  Slot& s = slots_[seq - base_seq_];
  if (s.done) return false;
  s.done = true;
  s.status = status;
  s.durable_lsn = durable_lsn;
  s.lsn = lsn;
  // A success without a message of its own keeps the payload set earlier.
  if (message.empty() && (status == Code::kOk || status == Code::kNotFound)) return true;
  held_bytes_ -= s.message.size();
  s.message.assign(message);
  s.encoded = false;
  held_bytes_ += s.message.size();
  return true;
}

void ReplyQueue::SetEncoded(uint64_t seq, std::string bytes) {
  if (seq < base_seq_ || seq - base_seq_ >= slots_.size()) return;
  Slot& s = slots_[seq - base_seq_];
  if (s.done) return;
  held_bytes_ -= s.message.size();
  s.message = std::move(bytes);
  s.encoded = true;
  held_bytes_ += s.message.size();
}

void ReplyQueue::SetPayload(uint64_t seq, std::string_view payload) {
  if (seq < base_seq_ || seq - base_seq_ >= slots_.size()) return;
  Slot& s = slots_[seq - base_seq_];
  if (s.done) return;
  held_bytes_ -= s.message.size();
  s.message.assign(payload);
  held_bytes_ += s.message.size();
}

size_t ReplyQueue::Drain(Codec& codec, std::string* out) {
  size_t n = 0;
  while (!slots_.empty() && slots_.front().done) {
    const Slot& s = slots_.front();
    if (s.encoded) {
      out->append(s.message);
      held_bytes_ -= s.message.size();
      slots_.pop_front();
      ++base_seq_;
      ++n;
      continue;
    }
    Reply r;
    r.ref = s.ref;
    r.code = s.status;
    sent_durable_ = std::max(sent_durable_, s.durable_lsn);
    r.durable_lsn = sent_durable_;
    r.lsn = s.lsn;
    r.text = s.message;
    codec.EncodeReply(r, out);
    held_bytes_ -= s.message.size();
    slots_.pop_front();
    ++base_seq_;
    ++n;
  }
  return n;
}

}  // namespace kvd::daemon
