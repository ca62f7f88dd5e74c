#include "kvd/types.h"

namespace kvd {

bool KeyRangeContains(const KeyRange& r, std::string_view key) {
  if (r.prefix) return key.starts_with(r.a);
  return key >= r.a && (r.b.empty() || key < r.b);
}

std::string_view ToString(DurabilityMode m) {
  switch (m) {
    case DurabilityMode::kSync: return "sync";
    case DurabilityMode::kBatch: return "batch";
    case DurabilityMode::kNone: return "none";
  }
  return "?";
}

std::string_view ToString(RecoveryMode m) {
  switch (m) {
    case RecoveryMode::kTolerateTail: return "tolerate_tail";
    case RecoveryMode::kAbsolute: return "absolute";
    case RecoveryMode::kPointInTime: return "point_in_time";
  }
  return "?";
}

std::optional<DurabilityMode> ParseDurabilityMode(std::string_view s) {
  if (s == "sync") return DurabilityMode::kSync;
  if (s == "batch") return DurabilityMode::kBatch;
  if (s == "none") return DurabilityMode::kNone;
  return std::nullopt;
}

std::optional<RecoveryMode> ParseRecoveryMode(std::string_view s) {
  if (s == "tolerate_tail") return RecoveryMode::kTolerateTail;
  if (s == "absolute") return RecoveryMode::kAbsolute;
  if (s == "point_in_time") return RecoveryMode::kPointInTime;
  return std::nullopt;
}

}  // namespace kvd
