#include "resp/resp_docs.h"

#include <strings.h>

#include <vector>

#include "resp/resp_commands.h"

namespace kvd::daemon {
namespace {

bool Is(std::string_view arg, std::string_view word) {
  return arg.size() == word.size() && strncasecmp(arg.data(), word.data(), word.size()) == 0;
}

// COMMAND INFO's entry: name, arity, flags, first key, last key, step,
// ACL categories, tips, key specs, subcommands.
void WriteInfo(resp::ReplyWriter& w, const RespCommandDef& d) {
  const bool has_key = d.kind != RespKind::kLocal && d.id != RespCmd::kDbSize && d.id != RespCmd::kScan &&
                       d.id != RespCmd::kKeys && d.id != RespCmd::kInfo && d.id != RespCmd::kConfig &&
                       d.id != RespCmd::kSave && d.id != RespCmd::kBgSave && d.id != RespCmd::kLastSave;
  const bool many = d.arity < 0 && has_key && d.id != RespCmd::kSet;
  w.Array(10);
  w.Bulk(d.name);
  w.Integer(d.arity);
  w.Set(1);
  w.Simple(d.write ? "write" : "readonly");
  w.Integer(has_key ? 1 : 0);
  w.Integer(has_key ? (many ? -1 : 1) : 0);
  w.Integer(has_key ? ((d.id == RespCmd::kMSet || d.id == RespCmd::kMSetNx) ? 2 : 1) : 0);
  w.Set(0);
  w.Array(0);
  w.Array(0);
  w.Array(0);
}

// The words of a syntax string, as COMMAND DOCS arguments: "key value
// [NX|XX]" -> key (key), value (string), NX|XX (optional oneof).
void WriteArguments(resp::ReplyWriter& w, std::string_view syntax) {
  std::vector<std::string_view> words;
  size_t depth = 0, start = 0;
  for (size_t i = 0; i <= syntax.size(); ++i) {
    const char c = i < syntax.size() ? syntax[i] : ' ';
    if (c == '[') ++depth;
    if (c == ']' && depth > 0) --depth;
    if (c == ' ' && depth == 0) {
      if (i > start) words.push_back(syntax.substr(start, i - start));
      start = i + 1;
    }
  }
  w.Array(words.size());
  for (std::string_view word : words) {
    const bool optional = word.starts_with('[');
    if (optional) word = word.substr(1, word.size() - 2);
    const bool key = word == "key" || word.starts_with("key ");
    w.Map(optional ? 3 : 2);
    w.Bulk("name");
    w.Bulk(word);
    w.Bulk("type");
    w.Bulk(key ? "key" : "string");
    if (optional) {
      w.Bulk("flags");
      w.Array(1);
      w.Simple("optional");
    }
  }
}

void WriteDocs(resp::ReplyWriter& w, const RespCommandDef& d) {
  w.Bulk(d.name);
  w.Map(4);
  w.Bulk("summary");
  w.Bulk(d.summary);
  w.Bulk("since");
  w.Bulk("1.0.0");
  w.Bulk("group");
  w.Bulk(d.group);
  w.Bulk("arguments");
  WriteArguments(w, d.syntax);
}

}  // namespace

void WriteCommandReply(resp::ReplyWriter& w, std::span<const std::string_view> args) {
  const auto all = RespCommands();
  if (args.empty()) {
    w.Array(all.size());
    for (const RespCommandDef& d : all) WriteInfo(w, d);
    return;
  }
  const std::string_view sub = args[0];
  const auto names = args.subspan(1);
  if (Is(sub, "count")) return w.Integer(static_cast<int64_t>(all.size()));
  if (Is(sub, "list")) {
    w.Array(all.size());
    for (const RespCommandDef& d : all) w.Bulk(d.name);
    return;
  }
  if (Is(sub, "info")) {
    w.Array(names.size());
    for (std::string_view n : names) {
      const RespCommandDef* d = FindRespCommand(n);
      if (d == nullptr) {
        w.NullArray();
      } else {
        WriteInfo(w, *d);
      }
    }
    return;
  }
  // DOCS [name ...]: every command, or the named ones kvd knows.
  std::vector<const RespCommandDef*> picked;
  if (names.empty()) {
    for (const RespCommandDef& d : all) picked.push_back(&d);
  } else {
    for (std::string_view n : names) {
      if (const RespCommandDef* d = FindRespCommand(n)) picked.push_back(d);
    }
  }
  w.Map(picked.size());
  for (const RespCommandDef* d : picked) WriteDocs(w, *d);
}

}  // namespace kvd::daemon
