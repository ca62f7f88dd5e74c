// Decoding a record's payload and applying it to the State. Kept apart from
// the framing so WAL code that never applies does not depend on State.
#include "kvd/wal.h"
#include "storage/wal_coding.h"

namespace kvd {
namespace {

// A cursor over a payload; every read checks bounds (payloads reach here
// only after their CRC verified, but a CRC is not a proof of sanity).
class Decoder {
 public:
  explicit Decoder(std::string_view in) : in_(in) {}
  bool U8(uint8_t* v) {
    if (in_.empty()) return false;
    *v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool U32(uint32_t* v) {
    if (in_.size() < 4) return false;
    *v = wal::GetFixed32(in_.data());
    in_.remove_prefix(4);
    return true;
  }
  bool Bytes(uint32_t n, std::string_view* out) {
    if (in_.size() < n) return false;
    *out = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  std::string_view rest() const { return in_; }

 private:
  std::string_view in_;
};

Status Bad(const WalRecord& rec, std::string_view why) {
  return Status::Corruption("WAL record lsn " + std::to_string(rec.lsn) + ": " + std::string(why));
}

Status CheckBatchOps(const WalRecord& rec, Decoder check, uint32_t count) {
  for (uint32_t i = 0; i < count; ++i) {
    uint8_t op = 0;
    uint32_t n = 0;
    std::string_view s;
    if (!check.U8(&op) || (op != 1 && op != 2) || !check.U32(&n) || !check.Bytes(n, &s)) {
      return Bad(rec, "bad BATCH op");
    }
    if (op == 1 && (!check.U32(&n) || !check.Bytes(n, &s))) return Bad(rec, "bad BATCH value");
  }
  if (!check.rest().empty()) return Bad(rec, "trailing bytes after BATCH ops");
  return Status::Ok();
}

}  // namespace

Result<KeyRange> DecodeDelRangePayload(const WalRecord& rec) {
  Decoder d(rec.payload);
  uint8_t kind = 0;
  uint32_t n = 0;
  KeyRange r;
  if (!d.U8(&kind) || kind > 1 || !d.U32(&n) || !d.Bytes(n, &r.a) || !d.U32(&n) || !d.Bytes(n, &r.b) ||
      !d.rest().empty()) {
    return Bad(rec, "bad DEL_RANGE payload");
  }
  r.prefix = kind == 0;
  if (r.prefix && !r.b.empty()) return Bad(rec, "DEL_RANGE: a prefix with a range end");
  return r;
}

Status CheckRecordPayload(const WalRecord& rec) {
  Decoder d(rec.payload);
  switch (rec.type) {
    case RecordType::kPut: {
      uint32_t key_len = 0;
      std::string_view key;
      if (!d.U32(&key_len) || !d.Bytes(key_len, &key)) return Bad(rec, "bad PUT payload");
      return Status::Ok();
    }
    case RecordType::kDel:
      return Status::Ok();
    case RecordType::kBatch: {
      uint32_t count = 0;
      if (!d.U32(&count)) return Bad(rec, "bad BATCH payload");
      return CheckBatchOps(rec, d, count);
    }
    case RecordType::kDelRange: {
      auto r = DecodeDelRangePayload(rec);
      return r.has_value() ? Status::Ok() : r.error();
    }
    default:
      if (static_cast<uint8_t>(rec.type) >= kFirstSkippableType) return Status::Ok();
      return Bad(rec, "unknown record type " + std::to_string(static_cast<int>(rec.type)));
  }
}

Status ApplyRecord(State* state, const WalRecord& rec, bool* existed, uint64_t* removed) {
  bool ex = false;
  uint64_t gone = 0;
  switch (rec.type) {
    case RecordType::kPut: {
      Decoder d(rec.payload);
      uint32_t key_len = 0;
      std::string_view key;
      if (!d.U32(&key_len) || !d.Bytes(key_len, &key)) return Bad(rec, "bad PUT payload");
      ex = state->Put(key, d.rest());
      break;
    }
    case RecordType::kDel:
      ex = state->Del(rec.payload);
      break;
    case RecordType::kBatch: {
      // Decode fully before applying anything: a batch applies whole or not at all.
      Decoder d(rec.payload);
      uint32_t count = 0;
      if (!d.U32(&count)) return Bad(rec, "bad BATCH payload");
      KVD_RETURN_IF_ERROR(CheckBatchOps(rec, d, count));
      for (uint32_t i = 0; i < count; ++i) {
        uint8_t op = 0;
        uint32_t n = 0;
        std::string_view key, value;
        (void)d.U8(&op);
        (void)d.U32(&n);
        (void)d.Bytes(n, &key);
        bool e;
        if (op == 1) {
          (void)d.U32(&n);
          (void)d.Bytes(n, &value);
          e = state->Put(key, value);
        } else {
          e = state->Del(key);
        }
        if (i == 0) ex = e;
      }
      break;
    }
    case RecordType::kDelRange: {
      auto r = DecodeDelRangePayload(rec);
      if (!r.has_value()) return r.error();
      gone = DeleteRange(state, *r);
      ex = gone > 0;
      break;
    }
    default:
      // Skippable types change no key (docs/wal_format.md §3.2).
      if (static_cast<uint8_t>(rec.type) >= kFirstSkippableType) break;
      return Bad(rec, "unknown record type " + std::to_string(static_cast<int>(rec.type)));
  }
  if (existed != nullptr) *existed = ex;
  if (removed != nullptr) *removed = gone;
  return Status::Ok();
}

}  // namespace kvd
