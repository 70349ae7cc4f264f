#include "nn/dump.h"

#include "io/npy.h"

namespace a2f::nn {

TensorHook npy_dump_hook(const std::filesystem::path& dir, Backend& backend) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  A2F_CHECK(!ec, "cannot create the dump folder '", dir.string(), "': ", ec.message());
  return [dir, &backend](const Tensor& t) {
    if (t.name().empty()) return;
    Tensor host = backend.to_host(t).to(DType::F32);  // [same shape]
    npy_write(dir / (t.name() + ".npy"), host);
  };
}

}  // namespace a2f::nn
