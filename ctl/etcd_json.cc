#include "etcd_json.h"

#include <charconv>
#include <nlohmann/json.hpp>

namespace kvctl::etcd {
namespace {

using json = nlohmann::json;
using kvd::Result;
using kvd::Status;

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

Status Malformed(std::string_view what) {
  return Status::Corruption("etcd reply: " + std::string(what));
}

// int64 fields come as strings ("42"); a missing field is 0 (proto3 leaves
// zero values out). Plain numbers are accepted too.
Result<int64_t> Int64Field(const json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return int64_t{0};
  if (it->is_number_integer()) return it->get<int64_t>();
  if (!it->is_string()) return Malformed(std::string(name) + " is not an integer");
  const std::string& s = it->get_ref<const std::string&>();
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return Malformed(std::string(name) + " = '" + s + "'");
  return v;
}

std::string TextField(const json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number()) return it->dump();
  return "";
}

Result<json> Parse(std::string_view body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Malformed("not a JSON object");
  return j;
}

Result<std::string> BytesField(const json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end()) return std::string();
  if (!it->is_string()) return Malformed(std::string(name) + " is not base64 text");
  return Base64Decode(it->get_ref<const std::string&>());
}

Result<RangeResult> RangeOf(const json& r) {
  RangeResult out;
  if (auto h = r.find("header"); h != r.end() && h->is_object()) {
    KVD_ASSIGN_OR_RETURN(out.revision, Int64Field(*h, "revision"));
  }
  auto kvs = r.find("kvs");
  if (kvs == r.end()) return out;
  if (!kvs->is_array()) return Malformed("kvs is not an array");
  for (const json& kv : *kvs) {
    if (!kv.is_object()) return Malformed("a kv is not an object");
    KeyValue e;
    KVD_ASSIGN_OR_RETURN(e.key, BytesField(kv, "key"));
    KVD_ASSIGN_OR_RETURN(e.value, BytesField(kv, "value"));
    KVD_ASSIGN_OR_RETURN(e.create_revision, Int64Field(kv, "create_revision"));
    KVD_ASSIGN_OR_RETURN(e.mod_revision, Int64Field(kv, "mod_revision"));
    KVD_ASSIGN_OR_RETURN(e.lease, Int64Field(kv, "lease"));
    out.kvs.push_back(std::move(e));
  }
  return out;
}

json OpJson(const TxnOp& op) {
  if (op.kind == TxnOp::kPut) {
    json put = {{"key", Base64Encode(op.key)}, {"value", Base64Encode(op.value)}};
    if (op.lease != 0) put["lease"] = std::to_string(op.lease);
    return {{"request_put", put}};
  }
  return {{"request_range", {{"key", Base64Encode(op.key)}}}};
}

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (uint32_t{static_cast<uint8_t>(bytes[i])} << 16) |
                       (uint32_t{static_cast<uint8_t>(bytes[i + 1])} << 8) | static_cast<uint8_t>(bytes[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) out.push_back(kAlphabet[(v >> shift) & 63]);
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = uint32_t{static_cast<uint8_t>(bytes[i])} << 16;
    if (rest == 2) v |= uint32_t{static_cast<uint8_t>(bytes[i + 1])} << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return Malformed("base64 length " + std::to_string(text.size()) + " is not a multiple of 4");
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (size_t j = 0; j < 4; ++j) {
      const char ch = text[i + j];
      uint32_t d = 0;
      if (ch == '=' && i + 4 == text.size() && j >= 2) {
        ++pad;
      } else {
        const size_t pos = kAlphabet.find(ch);
        if (pos == std::string_view::npos || pad > 0) return Malformed("bad base64");
        d = static_cast<uint32_t>(pos);
      }
      v = (v << 6) | d;
    }
    out.push_back(static_cast<char>((v >> 16) & 0xff));
    if (pad < 2) out.push_back(static_cast<char>((v >> 8) & 0xff));
    if (pad < 1) out.push_back(static_cast<char>(v & 0xff));
  }
  return out;
}

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // etcd: "\0" as range_end means every key >= key
}

std::string RangeRequest(std::string_view key, std::string_view range_end) {
  json j = {{"key", Base64Encode(key)}};
  if (!range_end.empty()) j["range_end"] = Base64Encode(range_end);
  return j.dump();
}

std::string TxnRequest(const std::vector<Compare>& compares, const std::vector<TxnOp>& success,
                       const std::vector<TxnOp>& failure) {
  json cmp = json::array();
  for (const Compare& c : compares) {
    json e = {{"key", Base64Encode(c.key)}, {"result", "EQUAL"}};
    if (c.target == Compare::kCreateRevision) {
      e["target"] = "CREATE";
      e["create_revision"] = std::to_string(c.create_revision);
    } else {
      e["target"] = "VALUE";
      e["value"] = Base64Encode(c.value);
    }
    cmp.push_back(std::move(e));
  }
  json ok = json::array(), bad = json::array();
  for (const TxnOp& op : success) ok.push_back(OpJson(op));
  for (const TxnOp& op : failure) bad.push_back(OpJson(op));
  return json{{"compare", cmp}, {"success", ok}, {"failure", bad}}.dump();
}

std::string LeaseGrantRequest(int64_t ttl_seconds) { return json{{"TTL", std::to_string(ttl_seconds)}}.dump(); }

std::string LeaseIdRequest(int64_t id) { return json{{"ID", std::to_string(id)}}.dump(); }

Status CheckReply(long http_status, std::string_view body) {
  if (http_status == 200) return Status::Ok();
  std::string message = "HTTP " + std::to_string(http_status);
  int64_t grpc_code = 0;
  json j = json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object()) {
    std::string m = TextField(j, "message");
    if (m.empty()) m = TextField(j, "error");
    if (!m.empty()) message += ": " + m;
    if (auto c = Int64Field(j, "code"); c.has_value()) grpc_code = *c;
  }
  constexpr int64_t kGrpcUnavailable = 14;
  if (grpc_code == kGrpcUnavailable || http_status == 503) return Status::Busy("etcd unavailable: " + message);
  return Status::IOError("etcd refused the request: " + message);
}

Result<RangeResult> ParseRange(std::string_view body) {
  KVD_ASSIGN_OR_RETURN(json j, Parse(body));
  return RangeOf(j);
}

Result<TxnResult> ParseTxn(std::string_view body) {
  KVD_ASSIGN_OR_RETURN(json j, Parse(body));
  TxnResult out;
  if (auto s = j.find("succeeded"); s != j.end()) {
    if (!s->is_boolean()) return Malformed("succeeded is not a boolean");
    out.succeeded = s->get<bool>();
  }
  if (auto rs = j.find("responses"); rs != j.end() && rs->is_array()) {
    for (const json& r : *rs) {
      if (!r.is_object()) return Malformed("a txn response is not an object");
      if (auto rr = r.find("response_range"); rr != r.end() && rr->is_object()) {
        KVD_ASSIGN_OR_RETURN(RangeResult range, RangeOf(*rr));
        out.ranges.push_back(std::move(range));
      }
    }
  }
  return out;
}

Result<int64_t> ParseLeaseGrant(std::string_view body) {
  KVD_ASSIGN_OR_RETURN(json j, Parse(body));
  KVD_ASSIGN_OR_RETURN(int64_t id, Int64Field(j, "ID"));
  if (id == 0) return Malformed("lease grant without an ID");
  return id;
}

Result<MemberStatus> ParseMemberStatus(std::string_view body) {
  KVD_ASSIGN_OR_RETURN(json j, Parse(body));
  MemberStatus st;
  auto h = j.find("header");
  if (h == j.end() || !h->is_object()) return Malformed("status without a header");
  st.member_id = TextField(*h, "member_id");
  st.leader_id = TextField(j, "leader");
  st.version = TextField(j, "version");
  KVD_ASSIGN_OR_RETURN(int64_t term, Int64Field(j, "raftTerm"));
  st.raft_term = static_cast<uint64_t>(term);
  KVD_ASSIGN_OR_RETURN(st.db_size, Int64Field(j, "dbSize"));
  return st;
}

}  // namespace kvctl::etcd
