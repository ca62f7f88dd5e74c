#include "cluster/curl_uv.h"

#include <sys/socket.h>

#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace kvd::daemon {

// One watched socket: curl's per-socket pointer (curl_multi_assign) points here.
struct CurlMulti::SocketWatch {
  CurlMulti* owner;
  curl_socket_t fd;
  int events = 0;  // what curl asked for (UV_READABLE | UV_WRITABLE)
  uv_poll_t poll;
};

namespace {

std::once_flag g_curl_init_once;
CURLcode g_curl_init = CURLE_OK;

curl_socket_t OpenCloexecSocket(void*, curlsocktype, struct curl_sockaddr* addr) {
  return ::socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

}  // namespace

Result<std::unique_ptr<CurlMulti>> CurlMulti::Create(uv_loop_t* loop) {
  // curl_global_init is thread-safe since 7.84; once per process is enough.
  std::call_once(g_curl_init_once, [] { g_curl_init = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (g_curl_init != CURLE_OK) {
    return Status::Internal(std::string("curl_global_init: ") + curl_easy_strerror(g_curl_init));
  }
  std::unique_ptr<CurlMulti> m(new CurlMulti(loop));
  if (!InitTimer(loop, &m->timer_, m.get())) return Status::Internal("uv_timer_init failed");
  m->multi_ = curl_multi_init();
  if (m->multi_ == nullptr) return Status::Internal("curl_multi_init failed");
  curl_multi_setopt(m->multi_, CURLMOPT_SOCKETFUNCTION, &CurlMulti::OnSocket);
  curl_multi_setopt(m->multi_, CURLMOPT_SOCKETDATA, m.get());
  curl_multi_setopt(m->multi_, CURLMOPT_TIMERFUNCTION, &CurlMulti::OnTimer);
  curl_multi_setopt(m->multi_, CURLMOPT_TIMERDATA, m.get());
  return m;
}

CurlMulti::~CurlMulti() {
  if (multi_ != nullptr) {
    for (auto& [easy, done] : transfers_) curl_multi_remove_handle(multi_, easy);
    transfers_.clear();
    curl_multi_cleanup(multi_);  // may still call OnSocket(REMOVE) for cached connections
    multi_ = nullptr;
  }
  // Whatever curl did not remove (it need not, on cleanup) is closed here.
  while (!watches_.empty()) CloseWatch(*watches_.begin());
}

void CurlMulti::SetCommonOptions(CURL* easy) {
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, &OpenCloexecSocket);
  curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
  // HTTP/1.1 on https too (curl would offer h2 through ALPN): one request
  // per connection as on http, so a stalled watch stream never holds up a
  // lease renewal multiplexed behind it.
  curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
}

std::string CurlMulti::TlsHint(CURLcode result, std::string_view error) {
  return CurlTlsHint(result, error, {"cluster.etcd_ca_file", "cluster.etcd_cert_file", "cluster.etcd_key_file"});
}

Status CurlMulti::Start(CURL* easy, Done done) {
  transfers_[easy] = std::move(done);
  CURLMcode rc = curl_multi_add_handle(multi_, easy);
  if (rc != CURLM_OK) {
    transfers_.erase(easy);
    return Status::Internal(std::string("curl_multi_add_handle: ") + curl_multi_strerror(rc));
  }
  return Status::Ok();  // curl asked for a timer (OnTimer) and starts from there
}

void CurlMulti::Cancel(CURL* easy) {
  if (transfers_.erase(easy) == 0) return;
  curl_multi_remove_handle(multi_, easy);
}

int CurlMulti::OnSocket(CURL*, curl_socket_t s, int action, void* userp, void* socketp) {
  auto* self = static_cast<CurlMulti*>(userp);
  auto* w = static_cast<SocketWatch*>(socketp);
  if (action == CURL_POLL_REMOVE) {
    if (w != nullptr) {
      self->CloseWatch(w);
      curl_multi_assign(self->multi_, s, nullptr);
    }
    return 0;
  }
  if (w == nullptr) {
    auto owned = std::make_unique<SocketWatch>();
    owned->owner = self;
    owned->fd = s;
    if (uv_poll_init_socket(self->loop_, &owned->poll, s) != 0) return -1;
    owned->poll.data = owned.get();
    w = owned.release();  // freed in CloseWatch's close callback
    self->watches_.insert(w);
    curl_multi_assign(self->multi_, s, w);
  }
  int events = 0;
  if (action != CURL_POLL_IN) events |= UV_WRITABLE;
  if (action != CURL_POLL_OUT) events |= UV_READABLE;
  w->events = events;
  uv_poll_start(&w->poll, events, &CurlMulti::OnPoll);
  return 0;
}

void CurlMulti::CloseWatch(SocketWatch* w) {
  watches_.erase(w);
  uv_poll_stop(&w->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->poll),
           [](uv_handle_t* h) { delete static_cast<SocketWatch*>(h->data); });
}

int CurlMulti::OnTimer(CURLM*, long timeout_ms, void* userp) {
  auto* self = static_cast<CurlMulti*>(userp);
  if (timeout_ms < 0) {
    uv_timer_stop(self->timer_.get());
  } else {
    // 0 means "now", but socket_action must not be called from inside a
    // curl callback: let the loop call it on the next turn.
    uv_timer_start(self->timer_.get(), &CurlMulti::OnTimeout, timeout_ms == 0 ? 1 : timeout_ms, 0);
  }
  return 0;
}

void CurlMulti::OnTimeout(uv_timer_t* timer) {
  static_cast<CurlMulti*>(timer->data)->Drive(CURL_SOCKET_TIMEOUT, 0);
}

void CurlMulti::OnPoll(uv_poll_t* poll, int status, int events) {
  auto* w = static_cast<SocketWatch*>(poll->data);
  CurlMulti* self = w->owner;
  if (status < 0) {
    // POLLERR (a refused connect, a reset): libuv has stopped this poll.
    // Let curl find the error itself (getsockopt SO_ERROR on the next read
    // or write) so it reports "Connection refused" as CURLE_COULDNT_CONNECT,
    // which EtcdClient retries on the next member; CURL_CSELECT_ERR would
    // turn it into an opaque "select/poll returned error".
    self->Drive(w->fd, CURL_CSELECT_IN | CURL_CSELECT_OUT);
    if (self->watches_.count(w) != 0) uv_poll_start(&w->poll, w->events, &CurlMulti::OnPoll);  // still wanted
    return;
  }
  int flags = 0;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  self->Drive(w->fd, flags);
}

void CurlMulti::Drive(curl_socket_t s, int flags) {
  int running = 0;
  curl_multi_socket_action(multi_, s, flags, &running);
  CompleteFinished();
}

void CurlMulti::CompleteFinished() {
  // Collect first: a callback may start or cancel transfers.
  std::vector<std::pair<CURL*, CURLcode>> finished;
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
    if (msg->msg == CURLMSG_DONE) finished.emplace_back(msg->easy_handle, msg->data.result);
  }
  for (auto [easy, result] : finished) {
    auto it = transfers_.find(easy);
    if (it == transfers_.end()) continue;  // cancelled by an earlier callback
    Done done = std::move(it->second);
    transfers_.erase(it);
    curl_multi_remove_handle(multi_, easy);
    done(result);
  }
}

}  // namespace kvd::daemon
