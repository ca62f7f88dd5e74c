#include "config/config_control.h"

#include <spdlog/fmt/fmt.h>

#include <nlohmann/json.hpp>

#include "config/runtime_config.h"
#include "sys/log.h"

namespace kvd::daemon {

Result<std::string> ConfigControl::GetJson(std::string_view name) const {
  nlohmann::json j = nlohmann::json::object();
  if (name.empty()) {
    for (const auto& [k, v] : ListConfigValues(config_)) j[k] = v;
  } else {
    auto v = GetConfigValue(config_, name);
    if (!v.has_value()) return Status::InvalidArgument("unknown config key: " + std::string(name));
    j[std::string(name)] = *v;
  }
  return j.dump();
}

Status ConfigControl::Set(std::string_view name, std::string_view value, std::string_view who) {
  if (GetConfigValue(config_, name).has_value() && !IsRuntimeKey(name)) {
    return Status::InvalidArgument(std::string(name) + " cannot change at run time (edit kvd.toml and restart)");
  }
  Config next = config_;
  KVD_RETURN_IF_ERROR(SetConfigValue(&next, name, value));
  const std::string before = GetConfigValue(config_, name).value_or("");
  Apply(next);
  LogNotice(Event::kConfigSet, fmt::format("CONFIG SET {}: {} -> {} (by {})", name, before,
                                           GetConfigValue(config_, name).value_or(""), who));
  return Status::Ok();
}

void ConfigControl::Apply(const Config& next) {
  Status st = ApplyEngineAndLogging(next, engine_);
  if (!st.ok()) spdlog::error("applying configuration: {}", st.ToString());
  const Config before = config_;
  config_ = next;
  if (on_applied_) on_applied_(before, config_);
}

void ConfigControl::Reload() {
  notifier_->Reloading();
  auto loaded = LoadConfig(config_.source_path);
  if (!loaded.has_value()) {
    LogEvent(spdlog::level::err, Event::kConfigError, 0, "reload: " + loaded.error().message() + "; nothing changed");
    notifier_->Ready();
    return;
  }
  const ConfigDiff diff = DiffConfig(config_, *loaded);
  for (const auto& change : diff.runtime_changed) LogEvent(spdlog::level::info, Event::kReload, 0, "reload: " + change);
  for (const auto& change : diff.restart_required) LogEvent(spdlog::level::warn, Event::kReload, 0, "reload: " + change);
  if (diff.runtime_changed.empty() && diff.restart_required.empty()) {
    LogEvent(spdlog::level::info, Event::kReload, 0, "reload: no changes");
  }
  Apply(MergeRuntimeKeys(config_, *loaded));
  notifier_->Ready();
}

}  // namespace kvd::daemon
