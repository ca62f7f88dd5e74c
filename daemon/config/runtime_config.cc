#include "config/runtime_config.h"

#include "sys/log.h"

namespace kvd::daemon {

Config MergeRuntimeKeys(const Config& current, const Config& loaded) {
  Config merged = current;
  for (const auto& [name, value] : ListConfigValues(loaded)) {
    if (!IsRuntimeKey(name)) continue;
    // The loaded file was validated, so its rendered values parse back.
    Status st = SetConfigValue(&merged, name, value);
    (void)st;
  }
  return merged;
}

Status ApplyEngineAndLogging(const Config& next, Engine* engine) {
  if (!SetLogLevel(next.log_level)) return Status::InvalidArgument("log.level: unknown level " + next.log_level);
  const DurabilityOptions cur = engine->durability();
  const DurabilityOptions& want = next.durability;
  if (cur.mode != want.mode || cur.batch_size != want.batch_size ||
      cur.flush_interval != want.flush_interval) {
    KVD_RETURN_IF_ERROR(engine->SetDurability(want));
  }
  return Status::Ok();
}

}  // namespace kvd::daemon
