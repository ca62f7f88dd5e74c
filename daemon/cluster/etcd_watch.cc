#include "cluster/etcd_watch.h"

#include <utility>

#include "cluster/etcd_json.h"

namespace kvd::daemon {

EtcdWatch::EtcdWatch(EtcdClient* client, std::string key, std::string range_end, int64_t start_revision,
                     EtcdClient::WatchCallback on_batch)
    : client_(client),
      key_(std::move(key)),
      range_end_(std::move(range_end)),
      next_revision_(start_revision),
      on_batch_(std::move(on_batch)) {
  bool ok = InitTimer(client_->loop_, &deliver_timer_, this) && InitTimer(client_->loop_, &retry_timer_, this);
  if (!ok) {  // the watch stays inert; say so on the next loop turn
    std::weak_ptr<int> alive = life_;
    client_->Defer([this, alive] {
      if (!alive.expired()) on_batch_(Status::Internal("etcd watch: uv_timer_init failed"));
    });
    return;
  }
  endpoint_ = client_->current_;
  Connect();
}

EtcdWatch::~EtcdWatch() { Disconnect(); }

void EtcdWatch::Disconnect() {
  if (easy_ != nullptr) {
    client_->multi_->Cancel(easy_);
    curl_easy_cleanup(easy_);
    easy_ = nullptr;
  }
  if (headers_ != nullptr) {
    curl_slist_free_all(headers_);
    headers_ = nullptr;
  }
}

void EtcdWatch::Connect() {
  Disconnect();
  buffer_.clear();
  const auto& eps = client_->options().endpoints;
  endpoint_ = client_->current_ % eps.size();
  url_ = eps[endpoint_] + "/v3/watch";
  body_ = etcd_json::WatchCreateRequest(key_, range_end_, next_revision_);
  easy_ = curl_easy_init();
  if (easy_ == nullptr) {
    Fail(Status::Internal("etcd watch: curl_easy_init failed"));
    return;
  }
  headers_ = curl_slist_append(nullptr, "Content-Type: application/json");
  headers_ = curl_slist_append(headers_, "Expect:");
  CurlMulti::SetCommonOptions(easy_);
  SetCurlTlsOptions(easy_, client_->options().tls);
  curl_easy_setopt(easy_, CURLOPT_URL, url_.c_str());
  curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, headers_);
  curl_easy_setopt(easy_, CURLOPT_POSTFIELDS, body_.c_str());
  curl_easy_setopt(easy_, CURLOPT_POSTFIELDSIZE, static_cast<long>(body_.size()));
  curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &EtcdWatch::OnData);
  curl_easy_setopt(easy_, CURLOPT_WRITEDATA, this);
  curl_easy_setopt(easy_, CURLOPT_ERRORBUFFER, error_);
  curl_easy_setopt(easy_, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(client_->options().connect_timeout.count()));
  // No overall timeout: the stream lives as long as the watch. A silent
  // peer (partition) is found by TCP keepalive (idle 2 s, probes every 1 s).
  curl_easy_setopt(easy_, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(easy_, CURLOPT_TCP_KEEPIDLE, 2L);
  curl_easy_setopt(easy_, CURLOPT_TCP_KEEPINTVL, 1L);
  error_[0] = '\0';
  Status st = client_->multi_->Start(easy_, [this](CURLcode result) { OnDone(result); });
  if (!st.ok()) Fail(st);
}

size_t EtcdWatch::OnData(char* data, size_t size, size_t n, void* userp) {
  auto* self = static_cast<EtcdWatch*>(userp);
  self->buffer_.append(data, size * n);
  // Inside curl: only buffer here; the callback runs on the next loop turn,
  // where it may start requests of its own.
  uv_timer_start(self->deliver_timer_.get(),
                 [](uv_timer_t* t) { (void)static_cast<EtcdWatch*>(t->data)->DeliverLines(); }, 0, 0);
  return size * n;
}

bool EtcdWatch::DeliverLines() {
  size_t start = 0;
  for (size_t nl; (nl = buffer_.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string_view line(buffer_.data() + start, nl - start);
    if (line.empty()) continue;
    auto parsed = etcd_json::ParseWatchLine(line);
    if (!parsed) {
      buffer_.erase(0, nl + 1);
      Fail(parsed.error().Annotate(url_));  // reconnects: this stream is not to be trusted
      return false;
    }
    etcd_json::WatchLine& w = *parsed;
    if (w.canceled || w.compact_revision > 0) {
      buffer_.erase(0, nl + 1);
      int64_t asked = next_revision_;
      next_revision_ = w.compact_revision;
      Fail(Status::InvalidArgument("compacted: etcd watch from revision " + std::to_string(asked) +
                                   " lost the events before revision " + std::to_string(w.compact_revision)));
      return false;
    }
    if (!w.batch.events.empty()) {
      next_revision_ = w.batch.events.back().kv.mod_revision + 1;
    } else if (next_revision_ == 0) {
      next_revision_ = w.batch.revision + 1;  // "from now" began after this revision
    }
    if (!w.batch.events.empty()) {
      std::weak_ptr<int> alive = life_;
      on_batch_(std::move(w.batch));
      if (alive.expired()) return false;  // the callback destroyed the watch
    }
  }
  buffer_.erase(0, start);
  return true;
}

void EtcdWatch::OnDone(CURLcode result) {
  if (!DeliverLines()) return;  // failed (and reconnecting) or destroyed
  long http = 0;
  curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &http);
  Status st;
  if (result != CURLE_OK) {
    std::string why = error_[0] != '\0' ? error_ : curl_easy_strerror(result);
    if (std::string hint = CurlMulti::TlsHint(result, why); !hint.empty()) why += " (" + hint + ")";
    st = Status::IOError("etcd watch " + url_ + ": " + why);
  } else if (http != 200) {
    st = etcd_json::CheckReply(http, buffer_).Annotate(url_);
  } else {
    st = Status::IOError("etcd watch " + url_ + ": the stream ended");
  }
  curl_easy_cleanup(easy_);
  easy_ = nullptr;
  client_->EndpointFailed(endpoint_);
  Fail(st);
}

void EtcdWatch::Fail(Status status) {
  Disconnect();
  buffer_.clear();  // lines after a failure belong to a stream no longer trusted
  reconnects_++;
  uv_timer_start(retry_timer_.get(), [](uv_timer_t* t) { static_cast<EtcdWatch*>(t->data)->Connect(); },
                 static_cast<uint64_t>(client_->options().watch_retry.count()), 0);
  on_batch_(std::move(status));
}

}  // namespace kvd::daemon
