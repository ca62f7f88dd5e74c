// libFuzzer target: the wire codec (fuzz/frame_decoder_target.h).
// kvd-fuzz-libs: kvd_proto kvd_base
#include <cstddef>
#include <cstdint>

#include "fuzz/frame_decoder_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return kvd::fuzz::FrameDecoderTarget(data, size);
}
