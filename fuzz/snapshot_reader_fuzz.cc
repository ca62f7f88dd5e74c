// libFuzzer target: the snapshot reader (fuzz/snapshot_reader_target.h).
// kvd-fuzz-libs: kvd_storage kvd_base
#include <cstddef>
#include <cstdint>

#include "fuzz/snapshot_reader_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return kvd::fuzz::SnapshotReaderTarget(data, size);
}
