// libFuzzer target: the RESP command parser (fuzz/resp_parser_target.h).
// kvd-fuzz-libs: kvd_proto kvd_base
#include <cstddef>
#include <cstdint>

#include "fuzz/resp_parser_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return kvd::fuzz::RespParserTarget(data, size);
}
