// libFuzzer: safetensors_parse on arbitrary bytes. Any outcome but a2f::Error or success is a bug.
#include <cstdint>
#include <cstring>

#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The input buffer itself (exact size, so ASan sees any read past its end).
  auto buf = a2f::storage_wrap(const_cast<uint8_t*>(data), size, a2f::Device::CPU, nullptr);
  try {
    a2f::SafetensorsFile f = a2f::safetensors_parse(buf, "fuzz");
    volatile uint8_t sink = 0;
    for (const auto& [name, t] : f.tensors) {
      if (t.nbytes() == 0) continue;
      const auto* p = static_cast<const uint8_t*>(t.raw_data());
      sink = sink + p[0] + p[t.nbytes() - 1];
    }
  } catch (const a2f::Error&) {
  }
  return 0;
}
