// Loading kvd.toml: toml11 parses, the key table (config_keys.cc) validates.
//
// Accepted forms (conf/kvd.toml documents them for users):
//   durations  "250ms" "5s" "5m" "1h" "1d", or 0 / "0"; a bare integer other
//              than 0 is refused because its unit would be a guess.
//   sizes      an integer number of bytes, or "4096" "64KiB" "64MiB" "1GiB".
//   modes      "0660" (octal string) or the TOML octal integer 0o660.
// Relative paths stay relative: they are resolved against kvd's current
// directory, as open(2) does.
//
// toml11 reports problems by throwing; the exceptions stop here and become a
// Status "<file>:<line>: <table.key>: <why>".
#include <toml.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <sstream>

#include "config/config.h"
#include "config/config_keys.h"
#include "kvd/fd.h"
#include "resp/resp_config.h"

namespace kvd::daemon {
namespace {

// Config files are small; refusing big ones bounds toml11's work.
constexpr size_t kMaxConfigBytes = 1 << 20;
// toml11 parses nested arrays and inline tables recursively; refuse deep
// nesting before it can exhaust the stack.
constexpr int kMaxNesting = 32;

struct Problem {
  uint32_t line;
  std::string message;
};

// Index just past the string that starts at text[i] (a quote), following
// TOML's four string forms; an unterminated one ends at the end of its line
// (single-line) or of the text, where toml11 stops with a syntax error too.
size_t SkipString(std::string_view text, size_t i) {
  const char q = text[i];
  const bool escapes = q == '"';
  if (text.substr(i, 3) == std::string(3, q)) {
    size_t j = i + 3;
    while (j < text.size()) {
      if (escapes && text[j] == '\\') {
        j += 2;
      } else if (text.substr(j, 3) == std::string(3, q)) {
        j += 3;
        // """a"""" ends with a quote in the content: up to two more belong to it.
        for (int extra = 0; extra < 2 && j < text.size() && text[j] == q; ++extra) ++j;
        return j;
      } else {
        ++j;
      }
    }
    return text.size();
  }
  size_t j = i + 1;
  while (j < text.size() && text[j] != '\n') {
    if (escapes && text[j] == '\\') {
      j += 2;
    } else if (text[j] == q) {
      return j + 1;
    } else {
      ++j;
    }
  }
  return std::min(j, text.size());
}

// The line (1-based) of the first byte that is not valid UTF-8, or 0 when the
// whole text is. TOML files must be UTF-8, and toml11 3.7 reads past the end
// of its buffer on some invalid sequences inside strings (found by the
// config_loader fuzzer), so kvd checks before handing the text over.
size_t FirstInvalidUtf8Line(std::string_view text) {
  size_t line = 1;
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') ++line;
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07;
    } else {
      return line;
    }
    if (i + len > text.size()) return line;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return line;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are invalid too.
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return line;
    i += len;
  }
  return 0;
}

// The deepest [ / { nesting outside strings and comments: toml11 recurses
// once per level and a few thousand levels overflow the stack.
int MaxNesting(std::string_view text) {
  int depth = 0, max_depth = 0;
  size_t i = 0;
  while (i < text.size()) {
    const char ch = text[i];
    if (ch == '"' || ch == '\'') {
      i = SkipString(text, i);
      continue;
    }
    if (ch == '#') {
      while (i < text.size() && text[i] != '\n') ++i;
      continue;
    }
    if (ch == '[' || ch == '{') {
      max_depth = std::max(max_depth, ++depth);
    } else if ((ch == ']' || ch == '}') && depth > 0) {
      --depth;
    }
    ++i;
  }
  return max_depth;
}

// toml11's message is "[error] toml::parse_xxx: what\n --> file\n ...";
// keep "what" and the hint under the caret.
std::string SyntaxMessage(const std::string& what) {
  std::string first = what.substr(0, what.find('\n'));
  const size_t colon = first.find(": ");
  if (colon != std::string::npos) first = first.substr(colon + 2);
  const size_t caret = what.find("^--- ");
  if (caret != std::string::npos) {
    const std::string hint = what.substr(caret + 5, what.find('\n', caret) - caret - 5);
    if (!hint.empty()) first += " (" + hint + ")";
  }
  return first;
}

std::string TypeName(toml::value_t t) {
  switch (t) {
    case toml::value_t::boolean: return "a boolean";
    case toml::value_t::integer: return "an integer";
    case toml::value_t::floating: return "a float";
    case toml::value_t::string: return "a string";
    case toml::value_t::array: return "an array";
    case toml::value_t::table: return "a table";
    case toml::value_t::empty: return "nothing";
    default: return "a date/time";
  }
}

// Converts a TOML value to a key's value; errors say why, without location.
Result<KeyValue> FromToml(const KeyDef& k, const toml::value& v) {
  KeyValue out;
  auto wrong_type = [&](std::string_view expected) {
    return Status::InvalidArgument("expected " + std::string(expected) + ", got " + TypeName(v.type()));
  };
  switch (k.kind) {
    case KeyKind::kString:
    case KeyKind::kEnum:
    case KeyKind::kHostPort:
      if (!v.is_string()) return wrong_type("a string");
      out.text = v.as_string().str;
      break;
    case KeyKind::kBool:
      if (!v.is_boolean()) return wrong_type("true or false");
      out.number = v.as_boolean() ? 1 : 0;
      break;
    case KeyKind::kInt:
      if (!v.is_integer()) return wrong_type("an integer");
      if (v.as_integer() < 0) return Status::InvalidArgument("must not be negative");
      out.number = static_cast<uint64_t>(v.as_integer());
      break;
    case KeyKind::kDuration:
      if (v.is_integer()) {
        if (v.as_integer() != 0) {
          return Status::InvalidArgument("a duration needs a unit, e.g. \"" + std::to_string(v.as_integer()) +
                                         "ms\" or \"" + std::to_string(v.as_integer()) + "s\"");
        }
        break;
      }
      if (!v.is_string()) return wrong_type("a duration string such as \"250ms\" or \"5m\"");
      return ParseValueText(k, v.as_string().str);
    case KeyKind::kSize:
      if (v.is_integer()) {
        if (v.as_integer() < 0) return Status::InvalidArgument("must not be negative");
        out.number = static_cast<uint64_t>(v.as_integer());
        break;
      }
      if (!v.is_string()) return wrong_type("a size such as 4096 or \"64MiB\"");
      return ParseValueText(k, v.as_string().str);
    case KeyKind::kMode:
      if (v.is_integer()) {
        if (v.as_integer() < 0 || v.as_integer() > 0777) {
          return Status::InvalidArgument("must be an octal mode: write \"0660\" or 0o660");
        }
        out.number = static_cast<uint64_t>(v.as_integer());
        break;
      }
      if (!v.is_string()) return wrong_type("an octal mode string such as \"0660\"");
      return ParseValueText(k, v.as_string().str);
  }
  KVD_RETURN_IF_ERROR(CheckValue(k, out));
  return out;
}

std::string KnownTables() {
  std::string out;
  std::string_view last;
  for (const KeyDef& k : ConfigKeys()) {
    if (k.table == last) continue;
    last = k.table;
    out += (out.empty() ? "[" : ", [") + std::string(k.table) + "]";
  }
  return out;
}

bool IsTable(std::string_view name) {
  for (const KeyDef& k : ConfigKeys()) {
    if (k.table == name) return true;
  }
  return false;
}

// A TOML basic string: quotes, backslashes and control characters escaped.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto u = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (u < 0x20 || u == 0x7f) {
      static constexpr char kHex[] = "0123456789ABCDEF";
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

}  // namespace

Result<Config> ParseConfig(const std::string& text, const std::string& name) {
  if (text.size() > kMaxConfigBytes) {
    return Status::InvalidArgument(name + ": larger than " + std::to_string(kMaxConfigBytes) + " bytes");
  }
  if (const size_t bad = FirstInvalidUtf8Line(text); bad != 0) {
    return Status::InvalidArgument(name + ":" + std::to_string(bad) + ": not valid UTF-8 (TOML files are UTF-8)");
  }
  if (MaxNesting(text) > kMaxNesting) {
    return Status::InvalidArgument(name + ": arrays or tables nested deeper than " + std::to_string(kMaxNesting));
  }
  toml::value root;
  try {
    std::istringstream in(text);
    root = toml::parse(in, name);
  } catch (const toml::exception& e) {
    return Status::InvalidArgument(name + ":" + std::to_string(e.location().line()) +
                                   ": syntax error: " + SyntaxMessage(e.what()));
  } catch (const std::exception& e) {
    return Status::InvalidArgument(name + ": " + e.what());
  }

  Config config;
  config.source_path = name;
  std::vector<Problem> problems;
  auto problem = [&](const toml::value& where, const std::string& key, const std::string& why) {
    problems.push_back({where.location().line(), name + ":" + std::to_string(where.location().line()) + ": " +
                                                     key + ": " + why});
  };
  try {
    for (const auto& [table, table_value] : root.as_table()) {
      if (!IsTable(table)) {
        problem(table_value, table, "unknown table (the tables are " + KnownTables() + ")");
        continue;
      }
      if (!table_value.is_table()) {
        problem(table_value, table, "expected a table [" + table + "], got " + TypeName(table_value.type()));
        continue;
      }
      for (const auto& [key, value] : table_value.as_table()) {
        const std::string full = table + "." + key;
        const KeyDef* def = FindKey(table, key);
        if (def == nullptr) {
          problem(value, full, "unknown key");
          continue;
        }
        Result<KeyValue> v = FromToml(*def, value);
        if (!v) {
          problem(value, full, v.error().message());
          continue;
        }
        def->set(&config, *v);
      }
    }
  } catch (const std::exception& e) {
    // toml11 accessors throw only on a type mismatch, which the checks above
    // rule out; kept so that a surprise is an error, never a crash.
    return Status::InvalidArgument(name + ": " + e.what());
  }
  if (!problems.empty()) {
    // The table is unordered: report the first problem in the file.
    auto first = std::min_element(problems.begin(), problems.end(),
                                  [](const Problem& a, const Problem& b) { return a.line < b.line; });
    return Status::InvalidArgument(first->message);
  }
  if (Status st = CheckRespConfig(config); !st.ok()) return Status::InvalidArgument(name + ": " + st.message());
  if (Status st = CheckReplicationConfig(config.replication); !st.ok()) {
    return Status::InvalidArgument(name + ": " + st.message());
  }
  if (Status st = CheckClusterConfig(config.cluster); !st.ok()) return Status::InvalidArgument(name + ": " + st.message());
  if (Status st = CheckClusterReplication(config.cluster, config.replication); !st.ok()) {
    return Status::InvalidArgument(name + ": " + st.message());
  }
  return config;
}

Result<Config> LoadConfig(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Status::FromErrno(errno, path);
  std::string text;
  char buf[16384];
  while (text.size() <= kMaxConfigBytes) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, path);
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  return ParseConfig(text, path);
}

std::string RenderConfig(const Config& c) {
  std::string out = "# kvd effective configuration";
  if (!c.source_path.empty()) out += " (" + c.source_path + " and defaults)";
  out += "\n";
  std::string_view table;
  for (const KeyDef& k : ConfigKeys()) {
    if (k.table != table) {
      table = k.table;
      out += "\n[" + std::string(table) + "]\n";
    }
    const KeyValue v = k.get(c);
    std::string text = FormatValue(k, v);
    if (k.kind != KeyKind::kInt && k.kind != KeyKind::kBool) text = Quote(text);
    out += std::string(k.key) + " = " + text + "\n";
  }
  return out;
}

std::optional<std::string> GetConfigValue(const Config& c, std::string_view name) {
  const KeyDef* k = FindKey(name);
  if (k == nullptr) return std::nullopt;
  return FormatValue(*k, k->get(c));
}

std::vector<std::pair<std::string, std::string>> ListConfigValues(const Config& c) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const KeyDef& k : ConfigKeys()) out.emplace_back(k.name(), FormatValue(k, k.get(c)));
  return out;
}

bool IsRuntimeKey(std::string_view name) {
  const KeyDef* k = FindKey(name);
  return k != nullptr && k->runtime;
}

Status SetConfigValue(Config* c, std::string_view name, std::string_view value) {
  const KeyDef* k = FindKey(name);
  if (k == nullptr) return Status::InvalidArgument(std::string(name) + ": unknown key");
  if (!k->runtime) {
    return Status::InvalidArgument(std::string(name) + ": cannot change at run time (edit the file and restart)");
  }
  Result<KeyValue> v = ParseValueText(*k, value);
  if (!v) return Status::InvalidArgument(std::string(name) + ": " + v.error().message());
  k->set(c, *v);
  return Status::Ok();
}

ConfigDiff DiffConfig(const Config& old_config, const Config& new_config) {
  ConfigDiff diff;
  for (const KeyDef& k : ConfigKeys()) {
    const KeyValue before = k.get(old_config), after = k.get(new_config);
    if (before == after) continue;
    std::string line = k.name() + ": " + FormatValue(k, before) + " -> " + FormatValue(k, after);
    if (k.runtime) {
      diff.runtime_changed.push_back(std::move(line));
    } else {
      diff.restart_required.push_back(line + " (needs a restart)");
    }
  }
  return diff;
}

}  // namespace kvd::daemon
