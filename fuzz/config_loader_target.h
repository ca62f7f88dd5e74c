// Fuzz target logic for the config loader (daemon/config.h): toml11 parsing,
// the key table's validation, unit parsing and CONFIG SET. Shared by
// fuzz/config_loader_fuzz.cc and tests/daemon/config_fuzz_regression_test.cc.
//
// Invariants: nothing throws out of ParseConfig; an error is kInvalidArgument
// naming the file; whatever parses renders to TOML that parses back to the
// same values; a value CONFIG SET accepts reads back (CONFIG GET) as text
// that sets the same value again; units format and parse back exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.h"
#include "config/config_units.h"
#include "fuzz/fuzz_check.h"

namespace kvd::fuzz {

inline void FuzzConfigText(const std::string& text) {
  Result<daemon::Config> parsed = Status::Internal("not run");
  try {
    parsed = daemon::ParseConfig(text, "fuzz.toml");
  } catch (...) {
    KVD_FUZZ_CHECK(!"ParseConfig threw");
  }
  if (!parsed) {
    KVD_FUZZ_CHECK(parsed.error().code() == Code::kInvalidArgument);
    KVD_FUZZ_CHECK(parsed.error().message().rfind("fuzz.toml", 0) == 0);
    return;
  }
  const std::string rendered = daemon::RenderConfig(*parsed);
  Result<daemon::Config> again = daemon::ParseConfig(rendered, "rendered.toml");
  KVD_FUZZ_CHECK(again.has_value());
  KVD_FUZZ_CHECK(daemon::ListConfigValues(*again) == daemon::ListConfigValues(*parsed));
  KVD_FUZZ_CHECK(daemon::DiffConfig(*parsed, *again).runtime_changed.empty());
}

// "name\nvalue": CONFIG SET on the defaults.
inline void FuzzSetValue(std::string_view input) {
  const size_t nl = input.find('\n');
  if (nl == std::string_view::npos) return;
  const std::string_view name = input.substr(0, nl), value = input.substr(nl + 1);
  daemon::Config c;
  if (!daemon::SetConfigValue(&c, name, value).ok()) {
    KVD_FUZZ_CHECK(daemon::ListConfigValues(c) == daemon::ListConfigValues(daemon::Config{}));
    return;
  }
  KVD_FUZZ_CHECK(daemon::IsRuntimeKey(name));
  const auto shown = daemon::GetConfigValue(c, name);
  KVD_FUZZ_CHECK(shown.has_value());
  daemon::Config d;
  KVD_FUZZ_CHECK(daemon::SetConfigValue(&d, name, *shown).ok());
  KVD_FUZZ_CHECK(daemon::ListConfigValues(c) == daemon::ListConfigValues(d));
}

inline void FuzzUnits(std::string_view input) {
  if (auto d = daemon::ParseDuration(input)) {
    auto back = daemon::ParseDuration(daemon::FormatDuration(*d));
    KVD_FUZZ_CHECK(back.has_value() && *back == *d);
  }
  if (auto s = daemon::ParseSize(input)) {
    auto back = daemon::ParseSize(daemon::FormatSize(*s));
    KVD_FUZZ_CHECK(back.has_value() && *back == *s);
  }
  if (auto m = daemon::ParseMode(input)) {
    KVD_FUZZ_CHECK(*m <= 0777);
    auto back = daemon::ParseMode(daemon::FormatMode(*m));
    KVD_FUZZ_CHECK(back.has_value() && *back == *m);
  }
}

inline int ConfigLoaderTarget(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;  // config files are small; keep runs fast
  const std::string text(reinterpret_cast<const char*>(data), size);
  FuzzConfigText(text);
  FuzzSetValue(text);
  if (size <= 64) FuzzUnits(text);
  return 0;
}

}  // namespace kvd::fuzz
