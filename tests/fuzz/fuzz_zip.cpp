// libFuzzer: the zip reader (and a whole torch checkpoint parse) on arbitrary bytes.
#include <cstdint>

#include "io/torch_checkpoint.h"
#include "io/zip_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    a2f::ZipArchive z = a2f::ZipArchive::parse(data, size, "fuzz");
    volatile uint8_t sink = 0;
    for (const auto& e : z.entries()) {
      if (e.size) sink = sink + z.entry_data(e)[0] + z.entry_data(e)[e.size - 1];
    }
  } catch (const a2f::Error&) {
  }
  try {
    auto buf = a2f::storage_wrap(const_cast<uint8_t*>(data), size, a2f::Device::CPU, nullptr);
    a2f::torch_checkpoint_parse(buf, "fuzz");
  } catch (const a2f::Error&) {
  }
  return 0;
}
