// ConfigControl: the live configuration and the ways it changes while kvd
// runs — CONFIG GET / CONFIG SET from clients and a reload of the file on
// SIGHUP. Changes go to the engine and the logger here (runtime_config.h);
// on_applied tells the rest of the server (timers) what changed.
//
// Other parts keep a `const Config*` to config(): its address never changes.
//
// Threading: loop thread only.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "kvd/engine.h"
#include "sys/notify.h"

namespace kvd::daemon {

class ConfigControl {
 public:
  // on_applied(before, after) runs after every applied change.
  using AppliedFn = std::function<void(const Config& before, const Config& after)>;
  ConfigControl(Config config, Notifier* notifier) : config_(std::move(config)), notifier_(notifier) {}

  void set_engine(Engine* engine) { engine_ = engine; }
  void set_on_applied(AppliedFn fn) { on_applied_ = std::move(fn); }
  const Config& config() const { return config_; }

  // JSON object text {name: value} for one key or all (empty name).
  Result<std::string> GetJson(std::string_view name) const;
  // CONFIG SET: runtime keys only; nothing changes on an error. A change is
  // logged at notice level with `who` made it ("pid 12 uid 1000").
  Status Set(std::string_view name, std::string_view value, std::string_view who = "unknown peer");
  // SIGHUP: re-reads the file, applies the runtime keys, logs what changed
  // and what needs a restart (RELOADING=1 ... READY=1 around it).
  void Reload();

 private:
  void Apply(const Config& next);

  Config config_;
  Notifier* notifier_;
  Engine* engine_ = nullptr;
  AppliedFn on_applied_;
};

}  // namespace kvd::daemon
