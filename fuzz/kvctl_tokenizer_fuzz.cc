// libFuzzer target: kvctl's REPL tokenizer and quoting (fuzz/kvctl_tokenizer_target.h).
// kvd-fuzz-libs: kvctl_core kvd_proto kvd_base
#include <cstddef>
#include <cstdint>

#include "fuzz/kvctl_tokenizer_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return kvd::fuzz::KvctlTokenizerTarget(data, size);
}
