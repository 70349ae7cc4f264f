// Tensor: shape, strides, dtype, device and name over a reference-counted storage. PyTorch dimension order.
// Views (reshape of a contiguous tensor, permute, narrow) share storage; ops produce contiguous outputs.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace a2f {

enum class Device : uint8_t { CPU, CUDA };
const char* device_name(Device d);

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "[2, 4, 64, 64]"
int64_t shape_numel(const Shape& s);

// Raw memory. Owned (aligned heap, or a backend's device allocation) or external (mmap'd file, kept alive
// by `keepalive`).
class Storage {
 public:
  virtual ~Storage() = default;
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }
  // A hint that bytes [offset, offset + bytes) will not be read again soon (e.g. a weight whose values a backend
  // has copied into its own layout). Storages over a read-only file mapping give those pages back to the system;
  // they are read from the file again if ever touched, so the contents never change. Others ignore it.
  virtual void release_pages(size_t /*offset*/, size_t /*bytes*/) const {}
  // True when release_pages really gives memory back (a read-only file mapping).
  virtual bool pages_releasable() const { return false; }

 protected:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_ = Device::CPU;
};

// 64-byte aligned host memory. Throws a2f::Error when the allocation fails.
std::shared_ptr<Storage> storage_alloc_host(size_t bytes);
// Wraps memory owned elsewhere; `keepalive` is held as long as any tensor uses the storage.
std::shared_ptr<Storage> storage_wrap(void* data, size_t bytes, Device device, std::shared_ptr<void> keepalive);

class Tensor {
 public:
  Tensor() = default;

  // New contiguous host tensors.
  static Tensor empty(const Shape& shape, DType dtype = DType::F32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32);
  static Tensor full(const Shape& shape, float value, DType dtype = DType::F32);
  static Tensor from_data(const Shape& shape, std::span<const float> values);  // f32 copy
  // A contiguous tensor over existing storage (e.g. an mmap'd weight file) at a byte offset.
  static Tensor from_storage(std::shared_ptr<Storage> storage, size_t byte_offset, const Shape& shape,
                             DType dtype);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const std::vector<int64_t>& strides() const { return strides_; }  // in elements
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const;  // negative i counts from the end; throws when out of range
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device() : Device::CPU; }
  bool is_contiguous() const;
  // Storage::release_pages for the bytes this tensor covers (a hint; the values never change).
  void release_pages() const;
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  size_t byte_offset() const { return offset_; }

  const std::string& name() const { return name_; }
  Tensor& set_name(std::string n) {
    name_ = std::move(n);
    return *this;
  }

  void* raw_data() const { return static_cast<char*>(storage_->data()) + offset_; }
  // Typed access; throws when T does not match dtype (uint16_t serves f16 and bf16).
  template <class T>
  T* data() const;

  // Views.
  Tensor reshape(const Shape& shape) const;  // one -1 allowed; needs a contiguous tensor
  Tensor permute(const std::vector<int>& perm) const;
  Tensor narrow(int dim, int64_t start, int64_t length) const;
  Tensor unsqueeze(int dim) const;
  Tensor squeeze(int dim) const;

  // Copies.
  Tensor contiguous() const;  // this when already contiguous
  Tensor clone() const;
  Tensor to(DType dtype) const;  // converted copy (this when same dtype)
  void copy_from(const Tensor& src);  // same shape; converts dtype; handles strides

  // Element access for tests and small host-side work (f32 view of any float dtype; slow).
  float item_f32(int64_t flat_index) const;
  std::vector<float> to_vector() const;  // contiguous f32 copy of all elements

  std::string desc() const;  // "name f32[2, 4, 8, 8]"

 private:
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;  // bytes
  Shape shape_;
  std::vector<int64_t> strides_;
  DType dtype_ = DType::F32;
  std::string name_;
};

std::vector<int64_t> contiguous_strides(const Shape& shape);

template <class T>
T* Tensor::data() const {
  constexpr bool ok_f32 = std::is_same_v<T, float>;
  constexpr bool ok_f64 = std::is_same_v<T, double>;
  constexpr bool ok_u16 = std::is_same_v<T, uint16_t>;
  constexpr bool ok_i64 = std::is_same_v<T, int64_t>;
  constexpr bool ok_i32 = std::is_same_v<T, int32_t>;
  constexpr bool ok_u8 = std::is_same_v<T, uint8_t>;
  constexpr bool ok_i8 = std::is_same_v<T, int8_t>;
  bool match = (ok_f32 && dtype_ == DType::F32) || (ok_f64 && dtype_ == DType::F64) ||
               (ok_u16 && (dtype_ == DType::F16 || dtype_ == DType::BF16)) || (ok_i64 && dtype_ == DType::I64) ||
               (ok_i32 && dtype_ == DType::I32) || (ok_u8 && (dtype_ == DType::U8 || dtype_ == DType::Bool)) ||
               (ok_i8 && dtype_ == DType::I8);
  A2F_CHECK(defined(), "access to an undefined tensor");
  A2F_CHECK(match, "tensor ", desc(), ": element type does not match the requested type");
  return reinterpret_cast<T*>(raw_data());
}

}  // namespace a2f
