// libFuzzer: npy_parse on arbitrary bytes.
#include <cstdint>

#include "io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    a2f::Tensor t = a2f::npy_parse(data, size, "fuzz");
    volatile size_t sink = t.nbytes();
    (void)sink;
  } catch (const a2f::Error&) {
  }
  return 0;
}
