// Link: one replication connection (a connected TCP stream, through the
// transport's StreamFilter): frames in, frames out. The WAL sender and the
// WAL receiver each hold one; neither sees bytes, only decoded frames.
//
// A frame that does not decode (length, CRC, type) closes the link with the
// decoder's reason; so does a filter error (a failed TLS handshake). Closing is deferred-safe: Close() stops reading and
// tells the handler once; the owner destroys the Link later (never inside
// one of the Link's own callbacks).
//
// Threading: loop thread only.
#pragma once

#include <uv.h>

#include <memory>
#include <string>

#include "net/stream_filter.h"
#include "repl/repl_codec.h"

namespace kvd::daemon::repl {

class Link {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    virtual void OnFrame(const Frame& frame) = 0;
    // The link is closed (peer gone, bad frame, or Close()); called once.
    virtual void OnClosed(const Status& why) = 0;
    // Queued output fell below the low-water mark: send more.
    virtual void OnWritable() {}
  };

  // Takes an initialised, connected TCP handle (freed in its close callback).
  Link(uv_tcp_t* tcp, Handler* handler, StreamFilter* filter = PassThroughFilter::Shared());
  // With a filter of its own (TLS: one per connection); nullptr = pass-through.
  Link(uv_tcp_t* tcp, Handler* handler, std::unique_ptr<StreamFilter> filter);
  ~Link();
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  void Start();
  void Send(MsgType type, Epoch epoch, std::initializer_list<std::string_view> body);
  // Sends ERROR, then closes.
  void Fail(Code code, const std::string& reason, Epoch epoch);
  void Close(const Status& why);

  bool closed() const { return closed_; }
  size_t queued_bytes() const { return shared_->queued; }
  const std::string& peer() const { return peer_; }
  uint64_t bytes_in() const { return bytes_in_; }
  uv_loop_t* loop() const { return tcp_->loop; }

  static constexpr size_t kLowWater = 1 << 20;
  static constexpr size_t kHighWater = 4 << 20;

 private:
  struct Shared {
    Link* link = nullptr;  // nullptr once the Link is gone
    size_t queued = 0;
  };
  static void OnAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  void Consume();
  // Queues bytes for the socket (already through the filter).
  void Write(std::string data);
  // Writes what the filter has to say (handshake, records); closes on its error.
  void Flush();

  uv_tcp_t* tcp_;
  Handler* handler_;
  std::unique_ptr<StreamFilter> own_filter_;
  StreamFilter* filter_;
  std::shared_ptr<Shared> shared_;
  std::string in_;
  size_t in_used_ = 0;
  bool closed_ = false;
  std::string peer_;
  uint64_t bytes_in_ = 0;
};

}  // namespace kvd::daemon::repl
