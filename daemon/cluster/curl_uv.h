// CurlMulti: libcurl's multi interface driven by the libuv loop.
//
// After libcurl's docs/examples/multi-uv.c: curl tells us which sockets to
// watch (CURLMOPT_SOCKETFUNCTION -> one uv_poll_t per socket) and when to
// call it back (CURLMOPT_TIMERFUNCTION -> one uv_timer_t); the loop calls
// curl_multi_socket_action when a socket is ready or the timer fires. No
// thread per request and nothing on the loop blocks (name resolution aside:
// give IP addresses, see docs/cluster.md).
//
// Fork: a forked child (the snapshot writer) must never call into curl or
// this object; it closes the inherited sockets with every other descriptor
// and _exit()s. Sockets are opened with SOCK_CLOEXEC so an exec'd child
// holds none.
//
// Threading: loop thread only. Lifetime: must outlive every transfer it runs;
// must not be destroyed from inside a completion callback. After destruction
// the loop must run once more so the poll/timer handles close.
#pragma once

#include <curl/curl.h>
#include <uv.h>

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

#include "curl_tls.h"
#include "kvd/status.h"
#include "net/uv_handle.h"

namespace kvd::daemon {

// TLS for https:// URLs (docs/cluster.md "TLS to etcd"): the rules kvctl
// shares (common/curl_tls.h). The multi handle caches the CA store.
using kvd::CurlTls;

class CurlMulti {
 public:
  // Called on the loop once the transfer ended (never from inside Start);
  // the easy handle has been removed from the multi and belongs to the
  // caller again.
  using Done = std::function<void(CURLcode result)>;

  static Result<std::unique_ptr<CurlMulti>> Create(uv_loop_t* loop);
  ~CurlMulti();
  CurlMulti(const CurlMulti&) = delete;
  CurlMulti& operator=(const CurlMulti&) = delete;

  // Starts a configured easy handle. The caller keeps ownership of the
  // handle (and of the buffers its options point to) and must not free it
  // before done ran or Cancel returned.
  Status Start(CURL* easy, Done done);
  // Removes a running transfer; its done callback is not called.
  void Cancel(CURL* easy);
  size_t running() const { return transfers_.size(); }

  // Options every kvd transfer wants: no signals (no alarm() for timeouts),
  // no proxy from the environment, SOCK_CLOEXEC sockets.
  static void SetCommonOptions(CURL* easy);
  // For a failed transfer: what a TLS failure most likely means, in the
  // terms of [cluster]'s keys ("" when result is no TLS failure). `error`
  // is curl's error buffer (OpenSSL's alert text tells a refused client
  // certificate from other receive errors).
  static std::string TlsHint(CURLcode result, std::string_view error);

 private:
  struct SocketWatch;
  explicit CurlMulti(uv_loop_t* loop) : loop_(loop) {}

  static int OnSocket(CURL* easy, curl_socket_t s, int action, void* userp, void* socketp);
  static int OnTimer(CURLM* multi, long timeout_ms, void* userp);
  static void OnPoll(uv_poll_t* poll, int status, int events);
  static void OnTimeout(uv_timer_t* timer);
  void Drive(curl_socket_t s, int flags);
  void CompleteFinished();
  void CloseWatch(SocketWatch* w);

  uv_loop_t* loop_;
  CURLM* multi_ = nullptr;
  UvHandle<uv_timer_t> timer_;
  std::unordered_map<CURL*, Done> transfers_;
  std::set<SocketWatch*> watches_;
};

}  // namespace kvd::daemon
