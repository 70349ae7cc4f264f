#include "api/backend_factory.h"

#include "backends/cpu/cpu_backend.h"
#include "backends/ref/ref_backend.h"
#ifdef A2F_HAVE_CUDA
#include "backends/cuda/cuda_device.h"
#endif

namespace a2f {

std::unique_ptr<Backend> make_backend(const std::string& name, int threads) {
  A2F_CHECK(threads >= 0, "threads must be >= 0 (0: all cores), got ", threads);
  if (name == "cpu") return make_cpu_backend(threads);  // applied on whichever thread runs the ops
  if (name == "ref") return make_ref_backend();
  if (name == "cuda") {
#ifdef A2F_HAVE_CUDA
    auto devices = cuda_devices();
    A2F_CHECK(!devices.empty(), "--device cuda: no NVIDIA GPU found");
    fail("--device cuda: the CUDA op backend is not implemented yet (found ", devices[0].name,
         "); use --device cpu");
#else
    fail("--device cuda: this build has no CUDA support (configure with -DA2F_CUDA=ON)");
#endif
  }
  fail("unknown device/backend '", name, "' (expected cpu, ref or cuda)");
}

}  // namespace a2f
