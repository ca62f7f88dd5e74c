#include "serve/reply_queue.h"

#include <algorithm>

namespace kvd::daemon {

uint64_t ReplyQueue::Push(uint64_t request_id, proto::Opcode opcode) {
  Slot& s = slots_.emplace_back();
  s.request_id = request_id;
  s.opcode = opcode;
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
  s.message.assign(message);
  held_bytes_ += s.message.size();
  return true;
}

size_t ReplyQueue::Drain(std::string* out) {
  size_t n = 0;
  while (!slots_.empty() && slots_.front().done) {
    const Slot& s = slots_.front();
    proto::ReplyHeader h;
    h.opcode = s.opcode;
    h.status = s.status;
    h.request_id = s.request_id;
    sent_durable_ = std::max(sent_durable_, s.durable_lsn);
    h.durable_lsn = sent_durable_;
    h.lsn = s.lsn;
    if (s.message.empty()) {
      proto::EncodeReply(out, h);
    } else {
      proto::EncodeReply(out, h, {s.message});
    }
    held_bytes_ -= s.message.size();
    slots_.pop_front();
    ++base_seq_;
    ++n;
  }
  return n;
}

}  // namespace kvd::daemon
