#include "core/arena.h"

#include <cstdlib>

#include "core/error.h"

namespace a2f {

void* Arena::alloc(size_t bytes) {
  const size_t need = (bytes + 63) / 64 * 64;
  while (current_ < blocks_.size()) {
    Block& b = blocks_[current_];
    if (offset_ + need <= b.size) {
      void* p = b.mem.get() + offset_;
      offset_ += need;
      used_ += need;
      return p;
    }
    ++current_;
    offset_ = 0;
  }
  Block b;
  b.size = need > block_bytes_ ? need : block_bytes_;
  void* m = std::aligned_alloc(64, b.size);
  if (!m) fail("out of memory: arena could not allocate ", b.size, " bytes");
  b.mem = std::unique_ptr<std::byte, void (*)(void*)>(static_cast<std::byte*>(m), std::free);
  blocks_.push_back(std::move(b));
  current_ = blocks_.size() - 1;
  offset_ = need;
  used_ += need;
  return blocks_.back().mem.get();
}

void Arena::reset() {
  current_ = 0;
  offset_ = 0;
  used_ = 0;
}

size_t Arena::capacity() const {
  size_t c = 0;
  for (const Block& b : blocks_) c += b.size;
  return c;
}

}  // namespace a2f
