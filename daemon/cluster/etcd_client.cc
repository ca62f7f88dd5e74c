#include "cluster/etcd_client.h"

#include <spdlog/spdlog.h>

#include <utility>

#include "cluster/etcd_json.h"
#include "cluster/etcd_watch.h"

namespace kvd::daemon {

namespace {

// A lasting failure (etcd down, a wrong CA) is logged again this often.
constexpr auto kHealthLogRepeat = std::chrono::seconds(30);

// The retry loops ask several times a second: a transfer that failed before
// anything was sent can go to the next member at once.
bool NothingSent(CURLcode result) {
  return result == CURLE_COULDNT_CONNECT || result == CURLE_PEER_FAILED_VERIFICATION ||
         result == CURLE_SSL_CONNECT_ERROR;
}

}  // namespace

// One request: its easy handle, the buffers curl points into, and where it
// has been tried. Owned by EtcdClient::calls_ until it finishes.
struct EtcdClient::Call {
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::string path;
  std::string body;
  std::string response;
  std::string url;
  std::chrono::milliseconds timeout{0};
  RawDone done;
  size_t endpoint = 0;
  size_t attempts = 0;
  int pinned = -1;
  char error[CURL_ERROR_SIZE] = {};

  ~Call() {
    if (easy != nullptr) curl_easy_cleanup(easy);
    if (headers != nullptr) curl_slist_free_all(headers);
  }
};

namespace {

size_t AppendBody(char* data, size_t size, size_t n, void* userp) {
  static_cast<std::string*>(userp)->append(data, size * n);
  return size * n;
}

template <typename T>
EtcdClient::Callback<std::string> Parsed(Result<T> (*parse)(std::string_view), EtcdClient::Callback<T> done) {
  return [parse, done = std::move(done)](Result<std::string> body) {
    if (!body) {
      done(body.error());
      return;
    }
    done(parse(*body));
  };
}

}  // namespace

EtcdClient::EtcdClient(uv_loop_t* loop, EtcdClientOptions options) : loop_(loop), options_(std::move(options)) {}

Result<std::unique_ptr<EtcdClient>> EtcdClient::Create(uv_loop_t* loop, EtcdClientOptions options) {
  if (options.endpoints.empty()) return Status::InvalidArgument("etcd: no endpoints");
  std::unique_ptr<EtcdClient> c(new EtcdClient(loop, std::move(options)));
  c->health_.resize(c->options_.endpoints.size());
  KVD_ASSIGN_OR_RETURN(c->multi_, CurlMulti::Create(loop));
  if (!InitTimer(loop, &c->defer_timer_, c.get())) return Status::Internal("uv_timer_init failed");
  return c;
}

EtcdClient::~EtcdClient() {
  for (auto& [raw, call] : calls_) multi_->Cancel(call->easy);
  calls_.clear();
}

Status EtcdClient::SetEndpoints(std::vector<std::string> endpoints) {
  if (endpoints.empty()) return Status::InvalidArgument("etcd: no endpoints");
  options_.endpoints = std::move(endpoints);
  current_ = 0;
  health_.assign(options_.endpoints.size(), Health{});
  return Status::Ok();
}

void EtcdClient::Defer(std::function<void()> fn) {
  deferred_.push_back(std::move(fn));
  uv_timer_start(defer_timer_.get(), [](uv_timer_t* t) {
    auto* self = static_cast<EtcdClient*>(t->data);
    auto fns = std::move(self->deferred_);
    self->deferred_.clear();
    for (auto& f : fns) f();
  }, 0, 0);
}

void EtcdClient::EndpointFailed(size_t index) {
  if (current_ == index) current_ = (index + 1) % options_.endpoints.size();
}

void EtcdClient::Issue(std::string path, std::string body, std::chrono::milliseconds timeout, RawDone done,
                       int pinned) {
  auto call = std::make_unique<Call>();
  call->path = std::move(path);
  call->body = std::move(body);
  call->timeout = timeout.count() > 0 ? timeout : options_.request_timeout;
  call->done = std::move(done);
  call->pinned = pinned;
  call->endpoint = pinned >= 0 ? static_cast<size_t>(pinned) % options_.endpoints.size() : current_;
  call->easy = curl_easy_init();
  if (call->easy == nullptr) {
    Defer([d = std::move(call->done)] { d(Status::Internal("curl_easy_init failed")); });
    return;
  }
  call->headers = curl_slist_append(nullptr, "Content-Type: application/json");
  call->headers = curl_slist_append(call->headers, "Expect:");  // no 100-continue round trip
  CURL* e = call->easy;
  CurlMulti::SetCommonOptions(e);
  SetCurlTlsOptions(e, options_.tls);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, call->headers);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body.c_str());
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(call->body.size()));
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &AppendBody);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &call->response);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->error);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(call->timeout.count()));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::min(call->timeout, options_.connect_timeout).count()));
  Call* raw = call.get();
  calls_.emplace(raw, std::move(call));
  Send(raw);
}

void EtcdClient::Send(Call* call) {
  call->endpoint %= options_.endpoints.size();
  call->url = options_.endpoints[call->endpoint] + call->path;
  call->response.clear();
  call->error[0] = '\0';
  curl_easy_setopt(call->easy, CURLOPT_URL, call->url.c_str());
  Status st = multi_->Start(call->easy, [this, call](CURLcode result) { Finish(call, result); });
  if (!st.ok()) {
    auto node = calls_.extract(call);
    Defer([d = std::move(node.mapped()->done), st] { d(st); });
  }
}

void EtcdClient::Finish(Call* call, CURLcode result) {
  const size_t n = options_.endpoints.size();
  std::string why;  // of a transport failure, "" if there was none
  if (result != CURLE_OK) {
    why = call->error[0] != '\0' ? call->error : curl_easy_strerror(result);
    if (std::string hint = CurlMulti::TlsHint(result, why); !hint.empty()) why += " (" + hint + ")";
  }
  NoteHealth(call->endpoint, result, why);
  if (NothingSent(result) && call->pinned < 0 && call->attempts + 1 < n) {
    // Nothing was sent: trying the next member cannot apply anything twice.
    EndpointFailed(call->endpoint);
    call->attempts++;
    call->endpoint = (call->endpoint + 1) % n;
    Send(call);
    return;
  }
  Result<std::string> out = std::string();
  if (result != CURLE_OK) {
    if (call->pinned < 0) EndpointFailed(call->endpoint);
    if (result == CURLE_OPERATION_TIMEDOUT) {
      why += " (limit " + std::to_string(call->timeout.count()) + " ms; a write's outcome is unknown)";
    }
    out = Status::IOError("etcd " + call->url + ": " + why);
  } else {
    long http = 0;
    curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &http);
    Status st = etcd_json::CheckReply(http, call->response);
    if (st.ok()) {
      out = std::move(call->response);
    } else {
      if (st.code() == Code::kBusy && call->pinned < 0) EndpointFailed(call->endpoint);
      out = st.Annotate(call->url);
    }
  }
  RawDone done = std::move(call->done);
  calls_.erase(call);
  done(std::move(out));
}

void EtcdClient::NoteHealth(size_t endpoint, CURLcode result, const std::string& why) {
  if (endpoint >= health_.size()) return;
  Health& h = health_[endpoint];
  const std::string& url = options_.endpoints[endpoint];
  if (result == CURLE_OK) {
    if (h.failing != CURLE_OK) spdlog::info("etcd {} answers again", url);
    h = Health{};
    return;
  }
  // Compared by code: curl's texts carry changing numbers ("after 2001 ms").
  const auto now = std::chrono::steady_clock::now();
  if (result == h.failing && now - h.logged_at < kHealthLogRepeat) {
    h.repeats++;
    return;
  }
  if (result == h.failing) {
    spdlog::warn("etcd {}: {}; still retrying ({} more failures since the last report)", url, why, h.repeats + 1);
  } else {
    spdlog::warn("etcd {}: {}; retrying", url, why);
  }
  h.failing = result;
  h.logged_at = now;
  h.repeats = 0;
}

void EtcdClient::Range(std::string key, std::string range_end, Callback<EtcdRange> done) {
  Issue("/v3/kv/range", etcd_json::RangeRequest(key, range_end), {}, Parsed(&etcd_json::ParseRange, std::move(done)));
}

void EtcdClient::RangePrefix(std::string prefix, Callback<EtcdRange> done) {
  std::string end = EtcdPrefixEnd(prefix);
  Range(std::move(prefix), std::move(end), std::move(done));
}

void EtcdClient::Put(std::string key, std::string value, int64_t lease, Callback<int64_t> done) {
  Issue("/v3/kv/put", etcd_json::PutRequest(key, value, lease), {},
        Parsed(&etcd_json::ParseRevision, std::move(done)));
}

void EtcdClient::Delete(std::string key, std::string range_end, Callback<int64_t> done) {
  Issue("/v3/kv/deleterange", etcd_json::DeleteRequest(key, range_end), {},
        Parsed(&etcd_json::ParseRevision, std::move(done)));
}

void EtcdClient::Txn(EtcdTxnRequest txn, Callback<EtcdTxnResult> done) {
  Issue("/v3/kv/txn", etcd_json::TxnRequest(txn), {}, Parsed(&etcd_json::ParseTxn, std::move(done)));
}

void EtcdClient::LeaseGrant(int64_t ttl_seconds, Callback<EtcdLease> done) {
  Issue("/v3/lease/grant", etcd_json::LeaseGrantRequest(ttl_seconds), {},
        Parsed(&etcd_json::ParseLease, std::move(done)));
}

void EtcdClient::LeaseKeepAlive(int64_t id, std::chrono::milliseconds timeout, Callback<EtcdLease> done) {
  Issue("/v3/lease/keepalive", etcd_json::LeaseIdRequest(id), timeout,
        Parsed(&etcd_json::ParseLease, std::move(done)));
}

void EtcdClient::LeaseRevoke(int64_t id, Callback<int64_t> done) {
  // 3.4's gateway serves revoke under /v3/kv/lease/revoke (and /v3/lease/revoke from 3.5).
  Issue("/v3/kv/lease/revoke", etcd_json::LeaseIdRequest(id), {},
        Parsed(&etcd_json::ParseRevision, std::move(done)));
}

void EtcdClient::MemberStatus(size_t endpoint_index, Callback<EtcdMemberStatus> done) {
  Issue("/v3/maintenance/status", "{}", {}, Parsed(&etcd_json::ParseMemberStatus, std::move(done)),
        static_cast<int>(endpoint_index));
}

std::unique_ptr<EtcdWatch> EtcdClient::Watch(std::string key, std::string range_end, int64_t start_revision,
                                             WatchCallback on_batch) {
  return std::unique_ptr<EtcdWatch>(
      new EtcdWatch(this, std::move(key), std::move(range_end), start_revision, std::move(on_batch)));
}

}  // namespace kvd::daemon
