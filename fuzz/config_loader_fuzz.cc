// libFuzzer target: the kvd.toml loader (fuzz/config_loader_target.h).
// kvd-fuzz-libs: kvd_daemon_config kvd_storage kvd_base
#include <cstddef>
#include <cstdint>

#include "fuzz/config_loader_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return kvd::fuzz::ConfigLoaderTarget(data, size);
}
