// The table of configuration keys (internal to config*.cc).
//
// One row per key, like Redis's static_configs[]: its table and name, kind,
// allowed range, whether it may change at run time, a one-line doc, and how
// to read and write it in a Config. Defaults are the initialisers of struct
// Config (config.h): there is one source of truth for them.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "config/config.h"
#include "kvd/status.h"

namespace kvd::daemon {

enum class KeyKind : uint8_t {
  kString,    // TOML string; min/max bound its length in bytes
  kInt,       // TOML integer
  kBool,      // TOML boolean
  kDuration,  // "250ms" "5s" "5m" "1h" "1d" or 0; stored as milliseconds
  kSize,      // integer bytes or "64KiB" "64MiB" "1GiB"
  kMode,      // "0660" (octal string) or 0o660
  kEnum,      // TOML string, one of `choices`
  kHostPort,  // TOML string "HOST:PORT", or "" (off)
};

// A key's value in the one shape every kind fits: `text` for strings and
// enums, `number` for the rest (ms, bytes, 0/1 for booleans, mode bits).
struct KeyValue {
  std::string text;
  uint64_t number = 0;
  bool operator==(const KeyValue&) const = default;
};

struct KeyDef {
  std::string_view table;
  std::string_view key;
  KeyKind kind;
  uint64_t min;
  uint64_t max;
  bool runtime;               // SIGHUP / CONFIG SET may change it
  std::string_view choices;   // kEnum: "sync|batch|none"
  std::string_view doc;
  KeyValue (*get)(const Config&);
  void (*set)(Config*, const KeyValue&);

  std::string name() const { return std::string(table) + "." + std::string(key); }
};

std::span<const KeyDef> ConfigKeys();
// nullptr if no such key.
const KeyDef* FindKey(std::string_view table, std::string_view key);
const KeyDef* FindKey(std::string_view dotted_name);

// The text form of a value (CONFIG GET, diffs): raw string, "10ms", "64MiB",
// "0660", "true".
std::string FormatValue(const KeyDef& k, const KeyValue& v);
// Parses the text form and checks the range. Errors say why, without the key.
Result<KeyValue> ParseValueText(const KeyDef& k, std::string_view text);
// Range / choice / length check. Errors say why, without the key.
Status CheckValue(const KeyDef& k, const KeyValue& v);

}  // namespace kvd::daemon
