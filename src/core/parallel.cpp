#include "core/parallel.h"

#include <omp.h>

#include <algorithm>
#include <exception>
#include <mutex>

namespace a2f {

void set_num_threads(int n) {
  omp_set_num_threads(std::max(1, n));
}
int num_threads() {
  return omp_get_max_threads();
}

ScopedNumThreads::ScopedNumThreads(int n) {
  if (n <= 0) return;
  const int current = omp_get_max_threads();
  if (current == n) return;
  previous_ = current;
  omp_set_num_threads(n);
}

ScopedNumThreads::~ScopedNumThreads() {
  if (previous_ > 0) omp_set_num_threads(previous_);
}

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t max_chunks = (n + grain - 1) / grain;
  const int threads = static_cast<int>(std::min<int64_t>(num_threads(), max_chunks));
  if (threads <= 1 || omp_in_parallel()) {
    fn(0, n);
    return;
  }
  std::exception_ptr error;
  std::mutex mu;
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    const int nt = omp_get_num_threads();
    const int64_t chunk = (n + nt - 1) / nt;
    const int64_t b = std::min<int64_t>(n, t * chunk), e = std::min<int64_t>(n, b + chunk);
    if (b < e) {
      try {
        fn(b, e);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace a2f
