#include "kvd/status.h"

#include <cstring>

namespace kvd {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "OK";
    case Code::kNotFound: return "NotFound";
    case Code::kInvalidArgument: return "InvalidArgument";
    case Code::kTooLarge: return "TooLarge";
    case Code::kWritesRefused: return "WritesRefused";
    case Code::kNoSpace: return "NoSpace";
    case Code::kIOError: return "IOError";
    case Code::kCorruption: return "Corruption";
    case Code::kBusy: return "Busy";
    case Code::kShuttingDown: return "ShuttingDown";
    case Code::kUnsupported: return "Unsupported";
    case Code::kInternal: return "Internal";
    case Code::kNotPrimary: return "NotPrimary";
    case Code::kFenced: return "Fenced";
    case Code::kTimedOut: return "TimedOut";
  }
  return "Unknown";
}

Status Status::FromErrno(int err, std::string_view context) {
  std::string msg(context);
  msg += ": ";
  msg += std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) return NoSpace(std::move(msg));
  return IOError(std::move(msg));
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s(CodeName(code_));
  if (!message_.empty()) {
    s += ": ";
    s += message_;
  }
  return s;
}

Status Status::Annotate(std::string_view context) const {
  if (ok()) return *this;
  std::string m(context);
  m += ": ";
  m += message_;
  return Status(code_, std::move(m));
}

}  // namespace kvd
