// The CPU backend used from several threads: oneDNN primitives created on one thread and run on another
// (user-managed scratchpads), and the backend's thread count applied on whichever thread runs its ops.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>

#include "backends/cpu/cpu_backend.h"
#include "backends/ref/ref_backend.h"
#include "core/parallel.h"
#include "ops/op_util.h"

namespace {
using a2f::DType;
using a2f::Shape;
using a2f::Tensor;
using a2f::test::nmse;
using a2f::test::randn;

constexpr double kF32Sum = 1e-10;  // as in test_cpu_ops.cpp

// Runs fn on a new thread and waits for it.
template <class F>
void on_new_thread(F&& fn) {
  std::thread t(std::forward<F>(fn));
  t.join();
}

TEST(CpuThreads, WinogradConvCreatedOnOneThreadRunsOnAnother) {
  // oneDNN's Winograd convolution needs a scratchpad. The backend passes its own (user mode) rather than
  // oneDNN's library-managed one, which may be per thread (a server crashed running a Winograd primitive
  // from a thread other than the one that created it). Creating and running threads with different OpenMP
  // thread counts, and a thread that created a smaller primitive first, must all give the same result.
  std::unique_ptr<a2f::Backend> ref = a2f::make_ref_backend();
  a2f::CpuBackend cpu;
  cpu.set_winograd_max_weight_bytes(SIZE_MAX);
  const a2f::Conv2dParams p = a2f::Conv2dParams::same(1, 1);
  const Tensor x = randn({1, 64, 48, 40}, 1), w = randn({64, 64, 3, 3}, 2, 0.1f), b = randn({64}, 3);
  const Tensor xs = randn({1, 16, 5, 4}, 4), ws = randn({16, 16, 3, 3}, 5, 0.1f);
  const Tensor r = ref->conv2d(x, w, b, p);
  Tensor ya, yb, yc;
  on_new_thread([&] {
    omp_set_num_threads(1);  // created for one OpenMP thread, run below by threads with all cores
    ya = cpu.conv2d(x, w, b, p);
  });
  on_new_thread([&] {
    omp_set_num_threads(8);  // more threads than at creation
    yb = cpu.conv2d(x, w, b, p);
  });
  on_new_thread([&] {
    cpu.conv2d(xs, ws, Tensor(), p);  // a small primitive created on this thread first
    yc = cpu.conv2d(x, w, b, p);
  });
  if (a2f::cpu::isa_supported(a2f::cpu::Isa::Avx512)) {
    const std::string impl = cpu.conv_impl(x, w, true, p);
    EXPECT_NE(impl.find("wino"), std::string::npos) << impl;
  }
  EXPECT_LE(nmse(ya, r), kF32Sum);
  EXPECT_EQ(yb.to_vector(), ya.to_vector());
  EXPECT_EQ(yc.to_vector(), ya.to_vector());
  EXPECT_EQ(cpu.conv2d(x, w, b, p).to_vector(), ya.to_vector());  // and the main thread
}

TEST(CpuThreads, DenseOpsCreatedOnOneThreadRunOnAnother) {
  // The same for matmul / linear and for the layout reorders around a direct convolution (bf16, nhwc).
  std::unique_ptr<a2f::Backend> ref = a2f::make_ref_backend();
  a2f::CpuBackend cpu;
  const a2f::Conv2dParams p = a2f::Conv2dParams::same(1, 1);
  const Tensor x = randn({2, 32, 12, 10}, 4), w = randn({48, 32, 3, 3}, 5, 0.1f);
  const Tensor a = randn({3, 70, 40}, 6), m = randn({3, 40, 50}, 7), lw = randn({30, 40}, 8);
  Tensor c0, c1, c0b, c1b, mm0, mm1, l0, l1;
  on_new_thread([&] {
    c0 = cpu.conv2d(x, w, Tensor(), p);
    c0b = cpu.conv2d(x.to(DType::BF16), w.to(DType::BF16), Tensor(), p);
    mm0 = cpu.matmul(a, m);
    l0 = cpu.linear(a, lw, Tensor(), a2f::Act::Silu);
  });
  on_new_thread([&] {
    c1 = cpu.conv2d(x, w, Tensor(), p);
    c1b = cpu.conv2d(x.to(DType::BF16), w.to(DType::BF16), Tensor(), p);
    mm1 = cpu.matmul(a, m);
    l1 = cpu.linear(a, lw, Tensor(), a2f::Act::Silu);
  });
  EXPECT_LE(nmse(c0, ref->conv2d(x, w, Tensor(), p)), kF32Sum);
  EXPECT_LE(nmse(mm0, ref->matmul(a, m)), kF32Sum);
  EXPECT_LE(nmse(l0, ref->linear(a, lw, Tensor(), a2f::Act::Silu)), kF32Sum);
  EXPECT_EQ(c1.to_vector(), c0.to_vector());
  EXPECT_EQ(c1b.to_vector(), c0b.to_vector());
  EXPECT_EQ(mm1.to_vector(), mm0.to_vector());
  EXPECT_EQ(l1.to_vector(), l0.to_vector());
}

// A kernel table whose softmax row kernel (run inside the backend's parallel_for regions) records the largest
// OpenMP team it ran in.
std::atomic<int> g_max_team{0};
const a2f::cpu::Kernels* g_real = nullptr;
void counting_softmax_row(const float* x, float* y, int64_t n) {
  int seen = g_max_team.load();
  const int team = omp_get_num_threads();
  while (team > seen && !g_max_team.compare_exchange_weak(seen, team)) {
  }
  g_real->softmax_row(x, y, n);
}
const a2f::cpu::Kernels* counting_kernels() {
  static const a2f::cpu::Kernels k = [] {
    g_real = a2f::cpu::kernels_best();
    a2f::cpu::Kernels c = *g_real;
    c.softmax_row = counting_softmax_row;
    return c;
  }();
  return &k;
}

// The largest team the backend's softmax ran in on a new thread (whose OpenMP count is set to `thread_count`
// first when > 0), and that thread's count after the op.
std::pair<int, int> softmax_team_on_new_thread(a2f::CpuBackend& cpu, int thread_count) {
  const Tensor x = randn({256, 512}, 9);  // 256 rows of 512: many chunks of the row grain
  const Tensor expected = a2f::make_ref_backend()->softmax(x);
  g_max_team = 0;
  int after = 0;
  on_new_thread([&] {
    if (thread_count > 0) omp_set_num_threads(thread_count);
    const Tensor y = cpu.softmax(x);
    EXPECT_LE(nmse(y, expected), kF32Sum);
    after = omp_get_max_threads();
  });
  return {g_max_team.load(), after};
}

TEST(CpuThreads, ThreadCountHoldsOnEveryCallingThread) {
  // OpenMP keeps the thread count per thread: the backend applies its own on the thread running each op.
  int fresh = 0;  // a new thread's count: all cores, or $OMP_NUM_THREADS
  on_new_thread([&] { fresh = omp_get_max_threads(); });
  if (fresh < 2) GTEST_SKIP() << "needs 2 threads to tell 1 worker thread from all";
  a2f::CpuBackend one(counting_kernels(), 1);
  EXPECT_EQ(one.num_threads(), 1);
  auto [team, after] = softmax_team_on_new_thread(one, 0);
  EXPECT_EQ(team, 1);
  EXPECT_EQ(after, fresh) << "the thread's own count is restored after the op";

  a2f::CpuBackend two(counting_kernels(), 2);
  std::tie(team, after) = softmax_team_on_new_thread(two, 1);  // the thread was set to 1
  EXPECT_EQ(team, 2);
  EXPECT_EQ(after, 1);

  // 0: the calling thread's setting.
  a2f::CpuBackend any(counting_kernels(), 0);
  std::tie(team, after) = softmax_team_on_new_thread(any, 1);
  EXPECT_EQ(team, 1);
  std::tie(team, after) = softmax_team_on_new_thread(any, 0);
  EXPECT_EQ(team, std::min(fresh, 16));  // at most one team member per chunk (256 rows, grain 16)
  EXPECT_THROW(any.set_num_threads(-1), a2f::Error);
}

}  // namespace
