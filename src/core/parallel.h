// The CPU thread pool. oneDNN in Debian runs on OpenMP, so our own kernels use the same OpenMP runtime: one
// set of worker threads, no oversubscription between our kernels and oneDNN's.
#pragma once
#include <cstdint>
#include <functional>

namespace a2f {

// Number of worker threads used by parallel_for and by oneDNN (default: all cores).
void set_num_threads(int n);
int num_threads();

// Calls fn(begin, end) over disjoint chunks of [0, n) in parallel. Chunks hold at least `grain` items.
// Exceptions thrown by fn are rethrown on the calling thread (the first one wins).
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace a2f
