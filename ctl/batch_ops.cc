#include "batch_ops.h"

#include <cctype>

#include "format.h"
#include "tokenizer.h"

namespace kvctl {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Parses one operation from tokens[*i..], advancing *i past it. where names
// the place for the error message ("argument 3", "line 2").
kvd::Status ParseOne(std::span<const std::string> tokens, size_t* i, const std::string& where,
                     std::vector<BatchEntry>* out) {
  const std::string verb = Lower(tokens[*i]);
  const size_t need = verb == "put" ? 3 : verb == "del" ? 2 : 0;
  if (need == 0) {
    return kvd::Status::InvalidArgument(where + ": expected put or del, got '" + EscapeForLine(tokens[*i]) + "'");
  }
  if (tokens.size() - *i < need) {
    return kvd::Status::InvalidArgument(where + ": " + verb + (need == 3 ? " needs KEY VALUE" : " needs KEY"));
  }
  BatchEntry e;
  e.type = need == 3 ? kvd::OpType::kPut : kvd::OpType::kDel;
  e.key = tokens[*i + 1];
  if (need == 3) e.value = tokens[*i + 2];
  out->push_back(std::move(e));
  *i += need;
  return kvd::Status::Ok();
}

}  // namespace

kvd::Result<std::vector<BatchEntry>> ParseBatchArgs(std::span<const std::string> args) {
  std::vector<BatchEntry> out;
  for (size_t i = 0; i < args.size();) {
    KVD_RETURN_IF_ERROR(ParseOne(args, &i, "argument " + std::to_string(i + 1), &out));
  }
  if (out.empty()) return kvd::Status::InvalidArgument("no operations (put KEY VALUE | del KEY ...)");
  return out;
}

kvd::Result<std::vector<BatchEntry>> ParseBatchLines(std::istream& in) {
  std::vector<BatchEntry> out;
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    const std::string where = "line " + std::to_string(n);
    auto tokens = Tokenize(line);
    if (!tokens.has_value()) return tokens.error().Annotate(where);
    if (tokens->empty() || (*tokens)[0].starts_with('#')) continue;
    size_t i = 0;
    KVD_RETURN_IF_ERROR(ParseOne(*tokens, &i, where, &out));
    if (i != tokens->size()) return kvd::Status::InvalidArgument(where + ": one operation per line");
  }
  if (out.empty()) return kvd::Status::InvalidArgument("no operations on stdin (PUT key value | DEL key per line)");
  return out;
}

std::vector<kvd::BatchOp> BatchOpsOf(const std::vector<BatchEntry>& entries) {
  std::vector<kvd::BatchOp> ops;
  ops.reserve(entries.size());
  for (const auto& e : entries) ops.push_back({e.type, e.key, e.value});
  return ops;
}

}  // namespace kvctl
