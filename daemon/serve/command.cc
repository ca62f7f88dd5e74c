#include "serve/command.h"

namespace kvd::daemon {

std::string_view OpName(Op op) {
  switch (op) {
    case Op::kPing: return "ping";
    case Op::kGet: return "get";
    case Op::kPut: return "put";
    case Op::kDel: return "del";
    case Op::kBatch: return "batch";
    case Op::kScan: return "scan";
    case Op::kCount: return "count";
    case Op::kFlush: return "flush";
    case Op::kSnapshot: return "snapshot";
    case Op::kStatus: return "status";
    case Op::kConfigGet: return "config_get";
    case Op::kConfigSet: return "config_set";
    case Op::kDelRange: return "del_range";
    case Op::kBackupBegin: return "backup_begin";
    case Op::kBackupRead: return "backup_read";
    case Op::kBackupEnd: return "backup_end";
    case Op::kPromote: return "promote";
    case Op::kReplicate: return "replicate";
  }
  return "unknown";
}

}  // namespace kvd::daemon
