// libFuzzer: the safe unpickler on arbitrary bytes, then the whole checkpoint path: the input becomes
// data.pkl of an in-memory torch-style zip whose storages data/0 .. data/3 exist, so tensor views, shared
// storages, strided copies and the state-dict flattening all run on fuzzed pickles.
#include <cstdint>
#include <cstring>
#include <string>

#include "io/pickle.h"
#include "io/torch_checkpoint.h"

namespace {

void put16(std::string& s, uint32_t v) {
  s.push_back(static_cast<char>(v & 0xff));
  s.push_back(static_cast<char>((v >> 8) & 0xff));
}
void put32(std::string& s, uint32_t v) {
  put16(s, v & 0xffff);
  put16(s, v >> 16);
}

// A stored zip of `files` (name, bytes).
std::string make_zip(const std::vector<std::pair<std::string, std::string>>& files) {
  std::string z, cd;
  for (const auto& [name, body] : files) {
    const uint32_t off = static_cast<uint32_t>(z.size());
    put32(z, 0x04034b50), put16(z, 20), put16(z, 0), put16(z, 0), put32(z, 0), put32(z, 0);
    put32(z, static_cast<uint32_t>(body.size())), put32(z, static_cast<uint32_t>(body.size()));
    put16(z, static_cast<uint32_t>(name.size())), put16(z, 0);
    z += name;
    z += body;
    put32(cd, 0x02014b50), put16(cd, 20), put16(cd, 20), put16(cd, 0), put16(cd, 0), put32(cd, 0),
        put32(cd, 0);
    put32(cd, static_cast<uint32_t>(body.size())), put32(cd, static_cast<uint32_t>(body.size()));
    put16(cd, static_cast<uint32_t>(name.size())), put16(cd, 0), put16(cd, 0), put16(cd, 0), put16(cd, 0);
    put32(cd, 0), put32(cd, off);
    cd += name;
  }
  const uint32_t cd_off = static_cast<uint32_t>(z.size());
  z += cd;
  put32(z, 0x06054b50), put16(z, 0), put16(z, 0), put16(z, static_cast<uint32_t>(files.size()));
  put16(z, static_cast<uint32_t>(files.size())), put32(z, static_cast<uint32_t>(cd.size())), put32(z, cd_off);
  put16(z, 0);
  return z;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    a2f::PickleData d = a2f::pickle_parse(data, size, "fuzz");
    volatile size_t sink = d.objects.size();
    (void)sink;
  } catch (const a2f::Error&) {
    return 0;  // the checkpoint path would fail the same way
  }
  std::vector<std::pair<std::string, std::string>> files;
  files.emplace_back("a/data.pkl", std::string(reinterpret_cast<const char*>(data), size));
  for (int k = 0; k < 4; ++k)
    files.emplace_back("a/data/" + std::to_string(k), std::string(64u << k, char(k)));
  std::string zip = make_zip(files);
  auto buf = a2f::storage_alloc_host(zip.size());
  std::memcpy(buf->data(), zip.data(), zip.size());
  try {
    a2f::StateDict sd = a2f::torch_checkpoint_parse(buf, "fuzz");
    volatile uint8_t sink = 0;
    for (const auto& [name, t] : sd) {
      if (t.nbytes()) sink = sink + static_cast<const uint8_t*>(t.raw_data())[t.nbytes() - 1];
    }
  } catch (const a2f::Error&) {
  }
  return 0;
}
