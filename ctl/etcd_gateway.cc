#include "etcd_gateway.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace kvctl {
namespace {

using kvd::Result;
using kvd::Status;

size_t Append(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

Status Readable(const char* option, const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::InvalidArgument(std::string(option) + " " + path + ": " + std::strerror(errno));
  ::close(fd);
  return Status::Ok();
}

}  // namespace

Status EtcdGateway::CheckTls(const std::vector<std::string>& endpoints, const EtcdTls& tls) {
  const bool https = !endpoints.empty() && endpoints.front().starts_with("https://");
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return Status::InvalidArgument("--etcd-cert and --etcd-key: give both (a client certificate) or neither");
  }
  if (https && tls.ca_file.empty()) {
    return Status::InvalidArgument("https:// etcd endpoints need --etcd-cacert (the CA that signed etcd's "
                                   "certificate; the system CA store is not used)");
  }
  if (!https && tls.any()) {
    return Status::InvalidArgument("--etcd-cacert, --etcd-cert, --etcd-key: only with https:// etcd endpoints");
  }
  if (!tls.ca_file.empty()) KVD_RETURN_IF_ERROR(Readable("--etcd-cacert", tls.ca_file));
  if (!tls.cert_file.empty()) KVD_RETURN_IF_ERROR(Readable("--etcd-cert", tls.cert_file));
  if (!tls.key_file.empty()) KVD_RETURN_IF_ERROR(Readable("--etcd-key", tls.key_file));
  return Status::Ok();
}

Result<std::vector<std::string>> EtcdGateway::ParseEndpoints(std::string_view list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string_view::npos) comma = list.size();
    std::string e = Trim(list.substr(start, comma - start));
    start = comma + 1;
    if (e.empty()) continue;
    while (e.size() > 1 && e.back() == '/') e.pop_back();
    const std::string_view scheme = e.starts_with("https://") ? "https://" : e.starts_with("http://") ? "http://" : "";
    const std::string_view rest = std::string_view(e).substr(scheme.size());
    const size_t colon = rest.rfind(':');
    if (scheme.empty() || colon == std::string_view::npos || colon == 0 || colon + 1 == rest.size() ||
        rest.find('/') != std::string_view::npos) {
      return Status::InvalidArgument("etcd endpoint '" + e + "': expected http://IP:PORT or https://IP:PORT");
    }
    if (!out.empty() && !out.front().starts_with(scheme)) {
      return Status::InvalidArgument("etcd endpoints: http:// and https:// mixed (" + e +
                                     "): every endpoint must use the same scheme");
    }
    out.push_back(std::move(e));
  }
  if (out.empty()) return Status::InvalidArgument("no etcd endpoint given (expected http://IP:PORT[,...])");
  return out;
}

EtcdGateway::EtcdGateway(std::vector<std::string> endpoints, std::chrono::milliseconds timeout, EtcdTls tls)
    : endpoints_(std::move(endpoints)),
      timeout_(timeout.count() > 0 ? timeout : std::chrono::seconds(5)),
      tls_(std::move(tls)) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  curl_ = curl_easy_init();
}

EtcdGateway::~EtcdGateway() {
  if (curl_ != nullptr) curl_easy_cleanup(static_cast<CURL*>(curl_));
  curl_global_cleanup();
}

Result<EtcdGateway::Reply> EtcdGateway::PostTo(const std::string& endpoint, std::string_view path,
                                               std::string_view body, bool* nothing_sent) {
  *nothing_sent = true;
  CURL* c = static_cast<CURL*>(curl_);
  if (c == nullptr) return Status::Internal("curl_easy_init failed");
  curl_easy_reset(c);
  const std::string url = endpoint + std::string(path);
  Reply reply;
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  kvd::SetCurlTlsOptions(c, tls_);
  const CURLcode rc = curl_easy_perform(c);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, nullptr);  // `error` goes out of scope
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    // A failed TLS handshake also sent nothing.
    *nothing_sent = rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
                    rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CONNECT_ERROR;
    std::string why = error[0] != '\0' ? error : curl_easy_strerror(rc);
    const std::string hint = kvd::CurlTlsHint(rc, why, {"--etcd-cacert", "--etcd-cert", "--etcd-key"});
    if (!hint.empty()) why += " (" + hint + ")";
    return Status::IOError("etcd " + endpoint + ": " + why);
  }
  *nothing_sent = false;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply.http_status);
  return reply;
}

Result<std::string> EtcdGateway::Post(std::string_view path, std::string_view body, bool idempotent) {
  std::string errors;
  for (const std::string& endpoint : endpoints_) {
    bool nothing_sent = true;
    auto reply = PostTo(endpoint, path, body, &nothing_sent);
    Status failure;
    if (!reply.has_value()) {
      failure = reply.error();
    } else if (Status s = etcd::CheckReply(reply->http_status, reply->body); !s.ok()) {
      // etcd's Unavailable (no leader, member stopping) did not apply it.
      nothing_sent = s.code() == kvd::Code::kBusy;
      failure = Status(s.code(), "etcd " + endpoint + ": " + s.message());
    } else {
      return std::move(reply->body);
    }
    errors += (errors.empty() ? "" : "; ") + failure.message();
    if (!idempotent && !nothing_sent) {
      return Status::IOError(failure.message() + " (outcome unknown: not retried on another endpoint)");
    }
    if (failure.code() != kvd::Code::kIOError && failure.code() != kvd::Code::kBusy) return failure;
  }
  return Status::IOError("no etcd endpoint answered: " + errors);
}

Result<etcd::RangeResult> EtcdGateway::Range(std::string_view key, std::string_view range_end) {
  KVD_ASSIGN_OR_RETURN(std::string body, Post("/v3/kv/range", etcd::RangeRequest(key, range_end), true));
  return etcd::ParseRange(body);
}

Result<etcd::TxnResult> EtcdGateway::Txn(const std::vector<etcd::Compare>& compares,
                                         const std::vector<etcd::TxnOp>& success,
                                         const std::vector<etcd::TxnOp>& failure) {
  bool writes = false;
  for (const auto& op : success) writes |= op.kind == etcd::TxnOp::kPut;
  for (const auto& op : failure) writes |= op.kind == etcd::TxnOp::kPut;
  KVD_ASSIGN_OR_RETURN(std::string body, Post("/v3/kv/txn", etcd::TxnRequest(compares, success, failure), !writes));
  return etcd::ParseTxn(body);
}

Result<int64_t> EtcdGateway::LeaseGrant(int64_t ttl_seconds) {
  // A lease granted twice is harmless (the spare one expires unused).
  KVD_ASSIGN_OR_RETURN(std::string body, Post("/v3/lease/grant", etcd::LeaseGrantRequest(ttl_seconds), true));
  return etcd::ParseLeaseGrant(body);
}

Status EtcdGateway::LeaseRevoke(int64_t id) {
  // 3.4's gateway serves revoke under /v3/kv/lease/revoke (3.5 adds /v3/lease/revoke).
  auto body = Post("/v3/kv/lease/revoke", etcd::LeaseIdRequest(id), true);
  return body.has_value() ? Status::Ok() : body.error();
}

Result<etcd::MemberStatus> EtcdGateway::MemberStatusOf(const std::string& endpoint) {
  bool nothing_sent = true;
  KVD_ASSIGN_OR_RETURN(Reply reply, PostTo(endpoint, "/v3/maintenance/status", "{}", &nothing_sent));
  if (Status s = etcd::CheckReply(reply.http_status, reply.body); !s.ok()) return s;
  return etcd::ParseMemberStatus(reply.body);
}

}  // namespace kvctl
