// An in-process stand-in for kvd, for kvctl's tests: a thread serving the
// wire protocol on a Unix socket from a std::map. It speaks the codec from
// kvd/protocol.h, so kvctl's client and load generator are exercised over a
// real socket without the daemon. Not durable, not fast, single-threaded.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "kvd/fd.h"
#include "kvd/protocol.h"

namespace kvctl::testing {

inline std::string TempSocketPath(const std::string& tag) {
  static std::atomic<int> n{0};
  return "/tmp/kvctl-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + ".sock";
}

class FakeKvd {
 public:
  explicit FakeKvd(std::string path) : path_(std::move(path)) {
    ::unlink(path_.c_str());
    listen_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    if (::bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(listen_.get(), 512) != 0) {
      throw std::runtime_error("fake kvd: cannot listen on " + path_);
    }
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    wake_read_.reset(p[0]);
    wake_write_.reset(p[1]);
    thread_ = std::thread([this] { Loop(); });
  }
  ~FakeKvd() {
    (void)!::write(wake_write_.get(), "x", 1);
    thread_.join();
    ::unlink(path_.c_str());
  }
  FakeKvd(const FakeKvd&) = delete;
  FakeKvd& operator=(const FakeKvd&) = delete;

  const std::string& path() const { return path_; }

  // Inspection and set-up; safe from the test thread.
  size_t Size() {
    std::lock_guard<std::mutex> l(mu_);
    return data_.size();
  }
  std::optional<std::string> Value(const std::string& key) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = data_.find(key);
    return it == data_.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  std::string Config(const std::string& name) {
    std::lock_guard<std::mutex> l(mu_);
    return config_[name];
  }
  void Put(const std::string& k, const std::string& v) {
    std::lock_guard<std::mutex> l(mu_);
    data_[k] = v;
  }
  // Every PUT fails with this code from now on (kOk: none do).
  void FailPuts(kvd::Code code) { fail_puts_ = code; }
  // Every write (PUT, DEL, BATCH) is refused with this code and message from
  // now on, as a replica refuses them (NotPrimary naming the primary).
  void RefuseWrites(kvd::Code code, std::string message) {
    std::lock_guard<std::mutex> l(mu_);
    refuse_writes_ = code;
    refuse_message_ = std::move(message);
  }
  uint64_t writes_refused() const { return writes_refused_; }
  // At most this many items per SCAN reply, to exercise continuations.
  void set_scan_page(uint32_t n) { scan_page_ = n; }
  // Replies report a durable LSN this far behind the last LSN (batch mode).
  void set_durable_lag(uint64_t n) { durable_lag_ = n; }
  uint64_t config_sets() const { return config_sets_; }
  uint64_t durable_puts() const { return durable_puts_; }  // PUTs with kFlagDurable
  uint64_t batches() const { return batches_; }
  std::string status_json = R"({"version":"0.1.0","pid":1,"uptime_s":3725,"keys":2,)"
                            R"("durability":{"mode":"sync","batch_size":64},)"
                            R"("wal":{"segments":1,"bytes":4096}})";

 private:
  struct Conn {
    kvd::Fd fd;
    std::string in;
  };

  void Loop() {
    std::vector<std::unique_ptr<Conn>> conns;
    while (true) {
      std::vector<pollfd> fds = {{wake_read_.get(), POLLIN, 0}, {listen_.get(), POLLIN, 0}};
      for (auto& c : conns) fds.push_back({c->fd.get(), POLLIN, 0});
      if (::poll(fds.data(), fds.size(), -1) < 0) continue;
      if (fds[0].revents) return;
      if (fds[1].revents & POLLIN) {
        int fd = ::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) conns.push_back(std::make_unique<Conn>(Conn{kvd::Fd(fd), {}}));
      }
      for (size_t i = 2; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        Conn& c = *conns[i - 2];
        char buf[65536];
        ssize_t n = ::recv(c.fd.get(), buf, sizeof(buf), 0);
        if (n <= 0 || !Serve(c, std::string_view(buf, static_cast<size_t>(n)))) c.fd.reset();
      }
      std::erase_if(conns, [](const auto& c) { return !c->fd.valid(); });
    }
  }

  static std::span<const std::byte> Bytes(std::string_view s) {
    return std::as_bytes(std::span<const char>(s.data(), s.size()));
  }
  static std::string_view View(std::span<const std::byte> b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
  }

  // Returns false to drop the connection.
  bool Serve(Conn& c, std::string_view bytes) {
    c.in.append(bytes);
    std::string out;
    size_t pos = 0;
    while (true) {
      auto split = kvd::proto::SplitFrame(Bytes(c.in).subspan(pos), kvd::proto::kDefaultMaxFrameBytes);
      if (!split.has_value()) return false;
      if (!split->has_value()) break;
      auto req = kvd::proto::DecodeRequest(Bytes(c.in).subspan(pos, **split));
      if (!req.has_value()) return false;
      pos += **split;
      Handle(*req, &out);
    }
    c.in.erase(0, pos);
    size_t sent = 0;
    while (sent < out.size()) {
      ssize_t n = ::send(c.fd.get(), out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  void Handle(const kvd::proto::Request& req, std::string* out) {
    namespace proto = kvd::proto;
    std::lock_guard<std::mutex> l(mu_);
    proto::ReplyHeader h;
    h.opcode = req.header.opcode;
    h.request_id = req.header.request_id;
    std::string payload;
    auto fail = [&](kvd::Code code, std::string msg) {
      h.status = code;
      payload = std::move(msg);
    };
    const bool write = req.header.opcode == proto::Opcode::kPut || req.header.opcode == proto::Opcode::kDel ||
                       req.header.opcode == proto::Opcode::kBatch;
    if (write && refuse_writes_ != kvd::Code::kOk) {
      ++writes_refused_;
      fail(refuse_writes_, refuse_message_);
      proto::EncodeReply(out, h, {payload});
      return;
    }
    switch (req.header.opcode) {
      case proto::Opcode::kPing: break;
      case proto::Opcode::kGet: {
        auto it = data_.find(std::string(View(req.payload)));
        if (it == data_.end()) {
          h.status = kvd::Code::kNotFound;
        } else {
          payload = it->second;
        }
        break;
      }
      case proto::Opcode::kPut: {
        if (fail_puts_ != kvd::Code::kOk) {
          fail(fail_puts_, "injected failure");
          break;
        }
        auto put = proto::DecodePut(req.payload, kvd::kMaxKeyBytes, kvd::kMaxValueBytes);
        if (!put.has_value()) {
          fail(put.error().code(), put.error().message());
          break;
        }
        data_[std::string(put->key)] = std::string(put->value);
        if (req.header.flags & proto::kFlagDurable) ++durable_puts_;
        h.lsn = ++lsn_;
        break;
      }
      case proto::Opcode::kBatch: {
        std::vector<kvd::BatchOp> ops;
        if (kvd::Status s = proto::DecodeBatch(req.payload, kvd::kMaxKeyBytes, kvd::kMaxValueBytes, &ops); !s.ok()) {
          fail(s.code(), s.message());
          break;
        }
        for (const auto& op : ops) {
          if (op.type == kvd::OpType::kPut) {
            data_[std::string(op.key)] = std::string(op.value);
          } else {
            data_.erase(std::string(op.key));
          }
        }
        ++batches_;
        h.lsn = ++lsn_;  // one LSN for the whole batch
        break;
      }
      case proto::Opcode::kDel: {
        h.status = data_.erase(std::string(View(req.payload))) ? kvd::Code::kOk : kvd::Code::kNotFound;
        h.lsn = ++lsn_;
        break;
      }
      case proto::Opcode::kCount: {
        const std::string_view prefix = View(req.payload);
        uint64_t n = 0;
        for (const auto& [k, v] : data_) n += k.starts_with(prefix);
        payload = proto::EncodeU64(n);
        break;
      }
      case proto::Opcode::kScan: {
        auto scan = proto::DecodeScan(req.payload);
        if (!scan.has_value()) {
          fail(scan.error().code(), scan.error().message());
          break;
        }
        uint32_t limit = scan->limit == 0 ? 100 : scan->limit;
        limit = std::min(limit, scan_page_.load());
        proto::ScanReplyBuilder b;
        bool more = false;
        for (const auto& [k, v] : data_) {
          if (!scan->after.empty() && k <= scan->after) continue;
          if (scan->kind == proto::ScanArgs::kPrefix ? !k.starts_with(scan->a)
                                                     : (k < scan->a || (!scan->b.empty() && k >= scan->b))) {
            continue;
          }
          if (b.count() == limit) {
            more = true;
            break;
          }
          b.Add(k, v);
        }
        payload = b.Finish(more);
        break;
      }
      case proto::Opcode::kFlush: h.lsn = lsn_; break;
      case proto::Opcode::kSnapshot: h.lsn = lsn_; break;
      case proto::Opcode::kStatus: payload = status_json; break;
      case proto::Opcode::kConfigGet: {
        const std::string name(View(req.payload));
        std::string json = "{";
        for (const auto& [k, v] : config_) {
          if (!name.empty() && k != name) continue;
          json += (json.size() > 1 ? "," : "") + ("\"" + k + "\":\"" + v + "\"");
        }
        payload = json + "}";
        if (!name.empty() && !config_.count(name)) fail(kvd::Code::kInvalidArgument, "unknown key " + name);
        break;
      }
      case proto::Opcode::kConfigSet: {
        auto cs = proto::DecodeConfigSet(req.payload);
        if (!cs.has_value() || !config_.count(std::string(cs->name))) {
          fail(kvd::Code::kInvalidArgument, "cannot set that");
          break;
        }
        config_[std::string(cs->name)] = std::string(cs->value);
        ++config_sets_;
        break;
      }
      default: fail(kvd::Code::kUnsupported, "not in the fake"); break;
    }
    h.durable_lsn = lsn_ > durable_lag_ ? lsn_ - durable_lag_ : 0;
    proto::EncodeReply(out, h, {payload});
  }

  std::string path_;
  kvd::Fd listen_;
  kvd::Fd wake_read_;
  kvd::Fd wake_write_;
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, std::string> data_;
  std::map<std::string, std::string> config_ = {{"durability.mode", "sync"},
                                                {"durability.batch_size", "64"},
                                                {"durability.flush_interval", "10ms"},
                                                {"storage.snapshot_path", "/var/lib/kvd/snapshots"}};
  uint64_t lsn_ = 0;
  std::atomic<kvd::Code> fail_puts_{kvd::Code::kOk};
  kvd::Code refuse_writes_ = kvd::Code::kOk;  // guarded by mu_
  std::string refuse_message_;               // guarded by mu_
  std::atomic<uint64_t> writes_refused_{0};
  std::atomic<uint32_t> scan_page_{1000};
  std::atomic<uint64_t> durable_lag_{0};
  std::atomic<uint64_t> config_sets_{0};
  std::atomic<uint64_t> durable_puts_{0};
  std::atomic<uint64_t> batches_{0};
};

}  // namespace kvctl::testing
