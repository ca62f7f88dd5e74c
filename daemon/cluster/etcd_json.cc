#include "cluster/etcd_json.h"

#include <charconv>
#include <nlohmann/json.hpp>

namespace kvd::daemon {

std::string EtcdPrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    auto last = static_cast<unsigned char>(prefix.back());
    if (last < 0xff) {
      prefix.back() = static_cast<char>(last + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');  // etcd: "\0" as range_end means "every key >= key"
}

namespace etcd_json {
namespace {

using json = nlohmann::json;

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int Sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

// int64 fields arrive as strings ("12"); accept numbers too.
Result<int64_t> Int(const json& obj, const char* field) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return int64_t{0};  // zero values are omitted
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && p == s.data() + s.size()) return v;
    uint64_t u = 0;  // member ids are uint64 and may exceed int64
    auto [p2, ec2] = std::from_chars(s.data(), s.data() + s.size(), u);
    if (ec2 == std::errc() && p2 == s.data() + s.size()) return static_cast<int64_t>(u);
  }
  return Status::Corruption(std::string("etcd reply: field '") + field + "' is not an integer");
}

Result<std::string> Bytes(const json& obj, const char* field) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) return Status::Corruption(std::string("etcd reply: field '") + field + "' is not a string");
  auto decoded = Base64Decode(it->get_ref<const std::string&>());
  if (!decoded) return decoded.error().Annotate(std::string("etcd reply: field '") + field + "'");
  return decoded;
}

Result<json> Parse(std::string_view body) {
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Corruption("etcd reply is not a JSON object: " + std::string(body.substr(0, 200)));
  }
  return j;
}

const json& Member(const json& obj, const char* field) {
  static const json kEmpty = json::object();
  auto it = obj.find(field);
  return it != obj.end() && it->is_object() ? *it : kEmpty;
}

const json& Array(const json& obj, const char* field) {
  static const json kEmpty = json::array();
  auto it = obj.find(field);
  return it != obj.end() && it->is_array() ? *it : kEmpty;
}

Result<int64_t> HeaderRevision(const json& obj) { return Int(Member(obj, "header"), "revision"); }

Result<EtcdKeyValue> ParseKv(const json& kv) {
  EtcdKeyValue out;
  KVD_ASSIGN_OR_RETURN(out.key, Bytes(kv, "key"));
  KVD_ASSIGN_OR_RETURN(out.value, Bytes(kv, "value"));
  KVD_ASSIGN_OR_RETURN(out.create_revision, Int(kv, "create_revision"));
  KVD_ASSIGN_OR_RETURN(out.mod_revision, Int(kv, "mod_revision"));
  KVD_ASSIGN_OR_RETURN(out.version, Int(kv, "version"));
  KVD_ASSIGN_OR_RETURN(out.lease, Int(kv, "lease"));
  return out;
}

Result<EtcdRange> RangeFrom(const json& obj) {
  EtcdRange out;
  KVD_ASSIGN_OR_RETURN(out.revision, HeaderRevision(obj));
  KVD_ASSIGN_OR_RETURN(out.count, Int(obj, "count"));
  for (const json& kv : Array(obj, "kvs")) {
    if (!kv.is_object()) return Status::Corruption("etcd reply: a kvs entry is not an object");
    KVD_ASSIGN_OR_RETURN(auto parsed, ParseKv(kv));
    out.kvs.push_back(std::move(parsed));
  }
  return out;
}

json OpJson(const EtcdOp& op) {
  switch (op.kind) {
    case EtcdOp::Kind::kPut: {
      json put = {{"key", Base64Encode(op.key)}, {"value", Base64Encode(op.value)}};
      if (op.lease != 0) put["lease"] = std::to_string(op.lease);
      return {{"request_put", put}};
    }
    case EtcdOp::Kind::kRange: {
      json r = {{"key", Base64Encode(op.key)}};
      if (!op.range_end.empty()) r["range_end"] = Base64Encode(op.range_end);
      return {{"request_range", r}};
    }
    case EtcdOp::Kind::kDelete: {
      json d = {{"key", Base64Encode(op.key)}};
      if (!op.range_end.empty()) d["range_end"] = Base64Encode(op.range_end);
      return {{"request_delete_range", d}};
    }
  }
  return json::object();
}

json CompareJson(const EtcdCompare& c) {
  static constexpr const char* kOps[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};
  json out = {{"key", Base64Encode(c.key)}, {"result", kOps[static_cast<int>(c.op)]}};
  switch (c.target) {
    case EtcdCompare::Target::kVersion:
      out["target"] = "VERSION", out["version"] = std::to_string(c.number);
      break;
    case EtcdCompare::Target::kCreate:
      out["target"] = "CREATE", out["create_revision"] = std::to_string(c.number);
      break;
    case EtcdCompare::Target::kMod:
      out["target"] = "MOD", out["mod_revision"] = std::to_string(c.number);
      break;
    case EtcdCompare::Target::kValue:
      out["target"] = "VALUE", out["value"] = Base64Encode(c.value);
      break;
    case EtcdCompare::Target::kLease:
      out["target"] = "LEASE", out["lease"] = std::to_string(c.number);
      break;
  }
  return out;
}

json KeyRange(std::string_view key, std::string_view range_end) {
  json r = {{"key", Base64Encode(key)}};
  if (!range_end.empty()) r["range_end"] = Base64Encode(range_end);
  return r;
}

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t n = (uint32_t{static_cast<unsigned char>(bytes[i])} << 16) |
                 (uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8) | static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(n >> 18) & 63], out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63], out += kAlphabet[n & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t n = uint32_t{static_cast<unsigned char>(bytes[i])} << 16;
    if (rest == 2) n |= uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8;
    out += kAlphabet[(n >> 18) & 63], out += kAlphabet[(n >> 12) & 63];
    out += rest == 2 ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return Status::Corruption("base64: bad length");
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = Sextet(c);
    if (v < 0) return Status::Corruption("base64: invalid character");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

std::string RangeRequest(std::string_view key, std::string_view range_end) { return KeyRange(key, range_end).dump(); }

std::string PutRequest(std::string_view key, std::string_view value, int64_t lease) {
  json r = {{"key", Base64Encode(key)}, {"value", Base64Encode(value)}};
  if (lease != 0) r["lease"] = std::to_string(lease);
  return r.dump();
}

std::string DeleteRequest(std::string_view key, std::string_view range_end) {
  return KeyRange(key, range_end).dump();
}

std::string TxnRequest(const EtcdTxnRequest& txn) {
  json r = {{"compare", json::array()}, {"success", json::array()}, {"failure", json::array()}};
  for (const auto& c : txn.compare) r["compare"].push_back(CompareJson(c));
  for (const auto& op : txn.success) r["success"].push_back(OpJson(op));
  for (const auto& op : txn.failure) r["failure"].push_back(OpJson(op));
  return r.dump();
}

std::string LeaseGrantRequest(int64_t ttl_seconds) { return json{{"TTL", std::to_string(ttl_seconds)}}.dump(); }
std::string LeaseIdRequest(int64_t id) { return json{{"ID", std::to_string(id)}}.dump(); }

std::string WatchCreateRequest(std::string_view key, std::string_view range_end, int64_t start_revision) {
  json c = KeyRange(key, range_end);
  if (start_revision > 0) c["start_revision"] = std::to_string(start_revision);
  return json{{"create_request", c}}.dump();
}

Status CheckReply(long http_status, std::string_view body) {
  if (http_status == 200) return Status::Ok();
  std::string message = "HTTP " + std::to_string(http_status);
  int64_t grpc_code = 0;
  json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (!j.is_discarded() && j.is_object()) {
    auto m = j.find("message");
    if (m == j.end()) m = j.find("error");
    if (m != j.end() && m->is_string()) message += ": " + m->get<std::string>();
    grpc_code = Int(j, "code").value_or(0);
  } else if (!body.empty()) {
    message += ": " + std::string(body.substr(0, 200));
  }
  message = "etcd: " + message;
  // gRPC codes: 3 InvalidArgument, 5 NotFound (lease not found), 9 FailedPrecondition,
  // 11 OutOfRange (compacted), 14 Unavailable (no leader, stopping), 4 DeadlineExceeded.
  switch (grpc_code) {
    case 3:
    case 11:
      return Status::InvalidArgument(std::move(message));
    case 5:
      return Status::NotFound(std::move(message));
    case 14:
    case 4:
      return Status::Busy(std::move(message));
    default:
      return http_status >= 500 ? Status::Busy(std::move(message)) : Status::IOError(std::move(message));
  }
}

Result<EtcdRange> ParseRange(std::string_view body) {
  KVD_ASSIGN_OR_RETURN(json j, Parse(body));
  return RangeFrom(j);
}

Result<int64_t> ParseRevision(std::string_view body) {
  KVD_ASSIGN_OR_RETURN(json j, Parse(body));
  return HeaderRevision(j);
}

Result<EtcdTxnResult> ParseTxn(std::string_view body) {
  KVD_ASSIGN_OR_RETURN(json j, Parse(body));
  EtcdTxnResult out;
  auto s = j.find("succeeded");
  out.succeeded = s != j.end() && s->is_boolean() && s->get<bool>();
  KVD_ASSIGN_OR_RETURN(out.revision, HeaderRevision(j));
  for (const json& r : Array(j, "responses")) {
    if (!r.is_object()) return Status::Corruption("etcd reply: a txn response is not an object");
    auto range = r.find("response_range");
    if (range == r.end()) continue;
    if (!range->is_object()) return Status::Corruption("etcd reply: response_range is not an object");
    KVD_ASSIGN_OR_RETURN(auto parsed, RangeFrom(*range));
    out.ranges.push_back(std::move(parsed));
  }
  return out;
}

Result<EtcdLease> ParseLease(std::string_view body) {
  KVD_ASSIGN_OR_RETURN(json j, Parse(body));
  // Keepalive is a stream in gRPC: the gateway wraps its reply in "result".
  const json& r = j.contains("result") ? Member(j, "result") : j;
  if (r.contains("error") && r["error"].is_string() && !r["error"].get<std::string>().empty()) {
    return Status::IOError("etcd: " + r["error"].get<std::string>());
  }
  EtcdLease out;
  KVD_ASSIGN_OR_RETURN(out.id, Int(r, "ID"));
  KVD_ASSIGN_OR_RETURN(out.ttl_seconds, Int(r, "TTL"));
  return out;
}

Result<EtcdMemberStatus> ParseMemberStatus(std::string_view body) {
  KVD_ASSIGN_OR_RETURN(json j, Parse(body));
  EtcdMemberStatus out;
  const json& h = Member(j, "header");
  KVD_ASSIGN_OR_RETURN(int64_t member, Int(h, "member_id"));
  KVD_ASSIGN_OR_RETURN(int64_t term, Int(h, "raft_term"));
  KVD_ASSIGN_OR_RETURN(out.revision, Int(h, "revision"));
  KVD_ASSIGN_OR_RETURN(int64_t leader, Int(j, "leader"));
  out.member_id = static_cast<uint64_t>(member);
  out.raft_term = static_cast<uint64_t>(term);
  out.leader = static_cast<uint64_t>(leader);
  return out;
}

Result<WatchLine> ParseWatchLine(std::string_view line) {
  KVD_ASSIGN_OR_RETURN(json j, Parse(line));
  if (j.contains("error")) {
    const json& e = j["error"];
    std::string message = e.is_object() && e.contains("message") && e["message"].is_string()
                              ? e["message"].get<std::string>()
                              : e.dump();
    return Status::IOError("etcd watch: " + message);
  }
  const json& r = Member(j, "result");
  WatchLine out;
  KVD_ASSIGN_OR_RETURN(out.batch.revision, HeaderRevision(r));
  KVD_ASSIGN_OR_RETURN(out.compact_revision, Int(r, "compact_revision"));
  auto c = r.find("canceled");
  out.canceled = c != r.end() && c->is_boolean() && c->get<bool>();
  for (const json& ev : Array(r, "events")) {
    if (!ev.is_object()) return Status::Corruption("etcd watch: an event is not an object");
    EtcdWatchEvent e;
    auto t = ev.find("type");
    e.type = t != ev.end() && t->is_string() && t->get<std::string>() == "DELETE" ? EtcdWatchEvent::Type::kDelete
                                                                                  : EtcdWatchEvent::Type::kPut;
    KVD_ASSIGN_OR_RETURN(e.kv, ParseKv(Member(ev, "kv")));
    out.batch.events.push_back(std::move(e));
  }
  return out;
}

}  // namespace etcd_json
}  // namespace kvd::daemon
