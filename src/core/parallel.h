// The CPU thread pool. oneDNN in Debian runs on OpenMP, so our own kernels use the same OpenMP runtime: one
// set of worker threads, no oversubscription between our kernels and oneDNN's.
//
// OpenMP keeps the worker-thread count per calling thread: a count set on one thread does not reach work
// started from another thread (a server's request threads, a std::thread). Code that owns a configured count
// (the CPU backend) applies it with a ScopedNumThreads on the thread that runs the work.
#pragma once
#include <cstdint>
#include <functional>

namespace a2f {

// Number of worker threads used by parallel_for and by oneDNN on the calling thread (default: all cores).
void set_num_threads(int n);
int num_threads();

// Sets the calling thread's worker-thread count to n for the scope's lifetime (n <= 0: leaves it as it is)
// and restores the previous count when it ends.
class ScopedNumThreads {
 public:
  explicit ScopedNumThreads(int n);
  ~ScopedNumThreads();
  ScopedNumThreads(const ScopedNumThreads&) = delete;
  ScopedNumThreads& operator=(const ScopedNumThreads&) = delete;

 private:
  int previous_ = 0;  // 0: nothing to restore
};

// Calls fn(begin, end) over disjoint chunks of [0, n) in parallel. Chunks hold at least `grain` items.
// Exceptions thrown by fn are rethrown on the calling thread (the first one wins).
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace a2f
