// Bump allocator for per-call scratch memory (im2col buffers, attention tiles, ...). Blocks are kept across
// reset() so a steady-state forward pass allocates nothing.
#pragma once
#include <cstddef>
#include <memory>
#include <vector>

namespace a2f {

class Arena {
 public:
  explicit Arena(size_t block_bytes = size_t(1) << 20) : block_bytes_(block_bytes) {}
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // 64-byte aligned; valid until reset(). Throws a2f::Error when memory runs out.
  void* alloc(size_t bytes);
  template <class T>
  T* alloc_array(size_t n) {
    return static_cast<T*>(alloc(n * sizeof(T)));
  }
  void reset();                        // frees nothing, rewinds
  size_t used() const { return used_; }  // bytes handed out since reset
  size_t capacity() const;             // bytes held in blocks

 private:
  struct Block {
    std::unique_ptr<std::byte, void (*)(void*)> mem{nullptr, nullptr};
    size_t size = 0;
  };
  size_t block_bytes_;
  std::vector<Block> blocks_;
  size_t current_ = 0;  // index of the block being filled
  size_t offset_ = 0;   // within that block
  size_t used_ = 0;
};

}  // namespace a2f
