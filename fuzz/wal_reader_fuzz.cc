// libFuzzer target: the WAL reader and recovery (fuzz/wal_reader_target.h).
// kvd-fuzz-libs: kvd_storage kvd_base
#include <cstddef>
#include <cstdint>

#include "fuzz/wal_reader_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return kvd::fuzz::WalReaderTarget(data, size);
}
