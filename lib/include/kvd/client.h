// A blocking client for kvd's Unix-socket protocol. Used by kvctl, the bench
// tool and the tests. Not thread-safe: one Client per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvd/fd.h"
#include "kvd/protocol.h"
#include "kvd/status.h"

namespace kvd {

struct Reply {
  proto::ReplyHeader header;
  std::string payload;
  bool ok() const { return header.status == Code::kOk; }
  // The reply as a Status: OK, or the code with the payload as message.
  Status status() const;
};

struct WriteAck {
  Lsn lsn = 0;          // the write's LSN
  Lsn durable_lsn = 0;  // durable LSN at reply time
  bool existed = true;  // DEL: whether the key was present
};

struct RangeDeleteAck {
  Lsn lsn = 0;
  Lsn durable_lsn = 0;
  uint64_t removed = 0;  // keys the range delete removed
};

struct BackupHandle {
  uint64_t id = 0;
  Lsn lsn = 0;  // the backup covers every write up to this LSN
  uint64_t size = 0;
  uint64_t entries = 0;
};

class Client {
 public:
  // Connects to a Unix socket. timeout bounds connect and every later call
  // (0 = no timeout). Errors: kIOError naming the path and errno.
  static Result<std::unique_ptr<Client>> Connect(const std::string& socket_path,
                                                 std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

  // --- raw, pipelined use ---------------------------------------------------
  // Queues one request (not sent until Flush or a blocking call). Returns its id.
  uint64_t Queue(proto::Opcode op, uint16_t flags, std::initializer_list<std::string_view> payload_parts = {});
  // Sends everything queued.
  Status Flush();
  // Reads the next reply (blocks).
  Result<Reply> Receive();
  // Queue + Flush + Receive; checks that the reply id matches.
  Result<Reply> Call(proto::Opcode op, uint16_t flags = 0,
                     std::initializer_list<std::string_view> payload_parts = {});

  // --- convenience ------------------------------------------------------------
  // Reads (Get, Scan, Count) take a minimum LSN (read-your-writes): not 0,
  // the server answers once it has applied that LSN, or fails with
  // kTimedOut after its [replication] min_lsn_wait (kFlagMinLsn).
  Status Ping();
  // nullopt when the key is absent.
  Result<std::optional<std::string>> Get(std::string_view key, Lsn min_lsn = 0);
  Result<WriteAck> Put(std::string_view key, std::string_view value, bool durable = false);
  Result<WriteAck> Del(std::string_view key, bool durable = false);
  Result<WriteAck> Batch(std::span<const BatchOp> ops, bool durable = false);
  // One atomic DEL_RANGE (a prefix, or [a, b)).
  Result<RangeDeleteAck> DeleteRange(const KeyRange& range, bool durable = false);
  Result<proto::ScanReply> Scan(const proto::ScanArgs& args, Lsn min_lsn = 0);
  // A backup (docs/backup.md): Begin waits for its snapshot, Read pulls
  // chunks (empty at the end), End lets the server drop its hold.
  Result<BackupHandle> BackupBegin();
  Result<std::string> BackupRead(uint64_t id, uint64_t offset, uint32_t max_bytes);
  Status BackupEnd(uint64_t id);
  Result<uint64_t> Count(std::string_view prefix = {}, Lsn min_lsn = 0);
  // Returns the durable LSN.
  Result<Lsn> FlushWal();
  // Returns the snapshot's LSN.
  Result<Lsn> Snapshot();
  // The STATUS JSON text.
  Result<std::string> StatusJson();
  // PROMOTE: this node becomes the primary in a new epoch (the one returned).
  // epoch 0: the node picks one. Refused unless force when it may lack
  // acknowledged writes; the error says why.
  Result<uint64_t> Promote(bool force, uint64_t epoch = 0);
  // REPLICATE: this node follows the primary at host_port ("HOST:PORT").
  Status Replicate(std::string_view host_port);
  Result<std::string> ConfigGet(std::string_view name = {});
  Status ConfigSet(std::string_view name, std::string_view value);

  int fd() const { return fd_.get(); }

 private:
  explicit Client(Fd fd, std::chrono::milliseconds timeout) : fd_(std::move(fd)), timeout_(timeout) {}
  Status ReadSome();
  // Call for a read, with kFlagMinLsn and the LSN in front when min_lsn != 0.
  Result<Reply> CallRead(proto::Opcode op, Lsn min_lsn, std::string_view payload);

  Fd fd_;
  std::chrono::milliseconds timeout_;
  uint64_t next_id_ = 1;
  std::string out_;
  std::string in_;
  size_t in_pos_ = 0;
  std::string path_;  // the socket path, for error messages
};

}  // namespace kvd
