#include "backends/cpu/cpu_alloc.h"

#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>

namespace a2f::cpu {

namespace {

constexpr size_t kMinCached = size_t(1) << 20;
constexpr size_t kGranule = size_t(256) << 10;

class BlockCache {
 public:
  ~BlockCache() { release(); }

  void* get(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = idle_.find(bytes);
      if (it != idle_.end()) {
        void* p = it->second;
        idle_.erase(it);
        idle_bytes_ -= bytes;
        return p;
      }
    }
    void* p = std::aligned_alloc(64, bytes);
    if (!p) fail("out of memory: could not allocate ", bytes, " bytes");
    return p;
  }

  void put(void* p, size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_bytes_ + bytes > kIdleCap) {
      std::free(p);
      return;
    }
    idle_.emplace(bytes, p);
    idle_bytes_ += bytes;
  }

  void release() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [bytes, p] : idle_) std::free(p);
    idle_.clear();
    idle_bytes_ = 0;
  }

  size_t idle_bytes() {
    std::lock_guard<std::mutex> lock(mu_);
    return idle_bytes_;
  }

 private:
  std::mutex mu_;
  std::multimap<size_t, void*> idle_;
  size_t idle_bytes_ = 0;
};

std::shared_ptr<BlockCache> cache() {
  static const std::shared_ptr<BlockCache> c = std::make_shared<BlockCache>();
  return c;
}

// Storage whose block goes back to the cache (kept alive by the storage) when the last tensor lets go.
class CachedStorage final : public Storage {
 public:
  CachedStorage(std::shared_ptr<BlockCache> c, size_t rounded, size_t bytes)
      : cache_(std::move(c)), rounded_(rounded) {
    data_ = cache_->get(rounded);
    bytes_ = bytes;
  }
  ~CachedStorage() override { cache_->put(data_, rounded_); }

 private:
  std::shared_ptr<BlockCache> cache_;
  size_t rounded_;
};

}  // namespace

Tensor new_tensor(const Shape& shape, DType dtype) {
  for (int64_t d : shape) A2F_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
  const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  if (bytes < kMinCached) return Tensor::empty(shape, dtype);
  const size_t rounded = (bytes + kGranule - 1) / kGranule * kGranule;
  return Tensor::from_storage(std::make_shared<CachedStorage>(cache(), rounded, bytes), 0, shape, dtype);
}

void release_idle_blocks() {
  cache()->release();
}
size_t idle_block_bytes() {
  return cache()->idle_bytes();
}

}  // namespace a2f::cpu
