// Status and Result<T>: errors as values.
//
// g++ 12's <expected> lacks the monadic members and clang 14 (the fuzzers'
// compiler) cannot compile it, so kvd carries this small equivalent with
// std::expected-like names. Nothing in the data path throws.
#pragma once

#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace kvd {

// Error codes shared by the engine, the wire protocol and kvctl.
// The numeric values are part of the wire protocol (docs/wire_protocol.md):
// never renumber, only append.
enum class Code : uint16_t {
  kOk = 0,
  kNotFound = 1,        // key absent (GET/DEL) - not an error for the server
  kInvalidArgument = 2, // malformed request, bad config value, bad usage
  kTooLarge = 3,        // key, value or frame over its limit
  kWritesRefused = 4,   // sticky: an fdatasync failed; restart to recover
  kNoSpace = 5,         // ENOSPC: this write did not happen; retry later
  kIOError = 6,         // other I/O failure
  kCorruption = 7,      // bad checksum, torn or inconsistent data on disk
  kBusy = 8,            // too many connections, or a resource is taken
  kShuttingDown = 9,    // the daemon is stopping
  kUnsupported = 10,    // unknown opcode / version / feature
  kInternal = 11,       // a bug: an invariant did not hold
  kNotPrimary = 12,     // writes go to the primary; this node is not it (reversible)
  kFenced = 13,         // a newer epoch fenced this node's writes (reversible)
  kTimedOut = 14,       // a bounded wait ended first (a read's minimum LSN not applied in time)
};

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status TooLarge(std::string m) { return {Code::kTooLarge, std::move(m)}; }
  static Status WritesRefused(std::string m) { return {Code::kWritesRefused, std::move(m)}; }
  static Status NoSpace(std::string m) { return {Code::kNoSpace, std::move(m)}; }
  static Status IOError(std::string m) { return {Code::kIOError, std::move(m)}; }
  static Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status Busy(std::string m) { return {Code::kBusy, std::move(m)}; }
  static Status ShuttingDown(std::string m) { return {Code::kShuttingDown, std::move(m)}; }
  static Status Unsupported(std::string m) { return {Code::kUnsupported, std::move(m)}; }
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }
  static Status NotPrimary(std::string m) { return {Code::kNotPrimary, std::move(m)}; }
  static Status Fenced(std::string m) { return {Code::kFenced, std::move(m)}; }
  static Status TimedOut(std::string m) { return {Code::kTimedOut, std::move(m)}; }
  // Maps an errno to kNoSpace (ENOSPC, EDQUOT) or kIOError, with
  // "<context>: <strerror>" as the message.
  static Status FromErrno(int err, std::string_view context);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "NoSpace: wal-...: No space left on device"
  std::string ToString() const;

  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsNoSpace() const { return code_ == Code::kNoSpace; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }

  // Adds context in front of the message, keeping the code.
  Status Annotate(std::string_view context) const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// Holds a T or a non-OK Status. Named after std::expected.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {}  // NOLINT(google-explicit-constructor)

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  // The error; OK when a value is held.
  Status error() const { return has_value() ? Status() : std::get<1>(v_); }
  T value_or(T other) const { return has_value() ? value() : std::move(other); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace kvd

// Propagates a non-OK Status from an expression returning Status.
#define KVD_RETURN_IF_ERROR(expr)            \
  do {                                       \
    ::kvd::Status kvd_status_ = (expr);      \
    if (!kvd_status_.ok()) return kvd_status_; \
  } while (0)

#define KVD_CONCAT_INNER_(a, b) a##b
#define KVD_CONCAT_(a, b) KVD_CONCAT_INNER_(a, b)
// KVD_ASSIGN_OR_RETURN(auto x, MakeX()); returns the error if MakeX failed.
#define KVD_ASSIGN_OR_RETURN(lhs, expr) \
  KVD_ASSIGN_OR_RETURN_IMPL_(KVD_CONCAT_(kvd_result_, __LINE__), lhs, expr)
#define KVD_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.has_value()) return tmp.error();        \
  lhs = std::move(tmp).value()
