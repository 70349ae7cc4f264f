#include "core/tensor.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <numeric>

namespace a2f {

const char* device_name(Device d) { return d == Device::CUDA ? "cuda" : "cpu"; }

std::string shape_str(const Shape& s) { return cat(s); }

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::vector<int64_t> contiguous_strides(const Shape& shape) {
  std::vector<int64_t> st(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    st[i] = s;
    s *= shape[i];
  }
  return st;
}

namespace {
class HostStorage final : public Storage {
 public:
  explicit HostStorage(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    data_ = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
    if (!data_) fail("out of memory: could not allocate ", bytes, " bytes");
    bytes_ = bytes;
  }
  ~HostStorage() override { std::free(data_); }
};

class WrappedStorage final : public Storage {
 public:
  WrappedStorage(void* data, size_t bytes, Device device, std::shared_ptr<void> keepalive)
      : keepalive_(std::move(keepalive)) {
    data_ = data;
    bytes_ = bytes;
    device_ = device;
  }

 private:
  std::shared_ptr<void> keepalive_;
};

// Dimensions >= 0 (-1 too when `allow_infer`), and the product of the non-zero ones (what contiguous strides
// multiply, even when another dimension is 0) within int64: a shape read from a file, e.g. [0, 2^40, 2^40],
// is an error instead of an overflow.
void check_shape(const Shape& shape, bool allow_infer = false) {
  int64_t extent = 1;
  for (int64_t d : shape) {
    if (allow_infer && d == -1) continue;
    A2F_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
    A2F_CHECK(!__builtin_mul_overflow(extent, std::max<int64_t>(d, 1), &extent), "shape ", shape_str(shape),
              " is too large");
  }
}
}  // namespace

std::shared_ptr<Storage> storage_alloc_host(size_t bytes) { return std::make_shared<HostStorage>(bytes); }

std::shared_ptr<Storage> storage_wrap(void* data, size_t bytes, Device device, std::shared_ptr<void> keepalive) {
  return std::make_shared<WrappedStorage>(data, bytes, device, std::move(keepalive));
}

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  check_shape(shape);
  Tensor t;
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  t.storage_ = storage_alloc_host(static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype));
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memset(t.raw_data(), 0, t.nbytes());
  return t;
}

Tensor Tensor::full(const Shape& shape, float value, DType dtype) {
  Tensor t = empty(shape, DType::F32);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = value;
  return dtype == DType::F32 ? t : t.to(dtype);
}

Tensor Tensor::from_data(const Shape& shape, std::span<const float> values) {
  Tensor t = empty(shape, DType::F32);
  A2F_CHECK(static_cast<int64_t>(values.size()) == t.numel(), "from_data: ", values.size(),
            " values for shape ", shape_str(shape));
  std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(float));
  return t;
}

Tensor Tensor::from_storage(std::shared_ptr<Storage> storage, size_t byte_offset, const Shape& shape,
                            DType dtype) {
  check_shape(shape);
  size_t need = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  A2F_CHECK(storage != nullptr, "from_storage: null storage");
  A2F_CHECK(byte_offset <= storage->bytes() && need <= storage->bytes() - byte_offset,
            "tensor of shape ", shape_str(shape), " (", need, " bytes at offset ", byte_offset,
            ") does not fit in its storage of ", storage->bytes(), " bytes");
  Tensor t;
  t.storage_ = std::move(storage);
  t.offset_ = byte_offset;
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  return t;
}

int64_t Tensor::dim(int i) const {
  int n = ndim();
  int j = i < 0 ? i + n : i;
  A2F_CHECK(j >= 0 && j < n, "dimension ", i, " out of range for tensor ", desc());
  return shape_[j];
}

bool Tensor::is_contiguous() const {
  int64_t expect = 1;
  for (size_t i = shape_.size(); i-- > 0;) {
    if (shape_[i] == 1) continue;
    if (strides_[i] != expect) return false;
    expect *= shape_[i];
  }
  return true;
}

void Tensor::release_pages() const {
  if (!defined() || numel() == 0) return;
  int64_t last = 0;  // the furthest element from the first (views have non-negative strides)
  for (size_t i = 0; i < shape_.size(); ++i) {
    if (strides_[i] < 0) return;
    last += (shape_[i] - 1) * strides_[i];
  }
  storage_->release_pages(offset_, static_cast<size_t>(last + 1) * dtype_size(dtype_));
}

Tensor Tensor::reshape(const Shape& shape) const {
  A2F_CHECK(defined(), "reshape of an undefined tensor");
  check_shape(shape, /*allow_infer=*/true);
  Shape s = shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      A2F_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(shape));
      infer = static_cast<int>(i);
    } else {
      A2F_CHECK(s[i] >= 0, "reshape: bad dimension in ", shape_str(shape));
      known *= s[i];
    }
  }
  if (infer >= 0) {
    A2F_CHECK(known != 0 && numel() % known == 0, "reshape: cannot reshape ", desc(), " to ", shape_str(shape));
    s[infer] = numel() / known;
  }
  A2F_CHECK(shape_numel(s) == numel(), "reshape: cannot reshape ", desc(), " to ", shape_str(shape));
  Tensor base = is_contiguous() ? *this : contiguous();
  Tensor t = base;
  t.shape_ = s;
  t.strides_ = contiguous_strides(s);
  return t;
}

Tensor Tensor::permute(const std::vector<int>& perm) const {
  A2F_CHECK(static_cast<int>(perm.size()) == ndim(), "permute: ", perm.size(), " axes for ", desc());
  std::vector<bool> seen(perm.size(), false);
  Tensor t = *this;
  for (size_t i = 0; i < perm.size(); ++i) {
    int p = perm[i] < 0 ? perm[i] + ndim() : perm[i];
    A2F_CHECK(p >= 0 && p < ndim() && !seen[p], "permute: bad permutation ", perm);
    seen[p] = true;
    t.shape_[i] = shape_[p];
    t.strides_[i] = strides_[p];
  }
  return t;
}

Tensor Tensor::narrow(int d, int64_t start, int64_t length) const {
  int j = d < 0 ? d + ndim() : d;
  A2F_CHECK(j >= 0 && j < ndim(), "narrow: dimension ", d, " out of range for ", desc());
  A2F_CHECK(start >= 0 && length >= 0 && start + length <= shape_[j], "narrow: [", start, ", ", start + length,
            ") out of range for dimension ", d, " of ", desc());
  Tensor t = *this;
  t.offset_ += static_cast<size_t>(start * strides_[j]) * dtype_size(dtype_);
  t.shape_[j] = length;
  return t;
}

Tensor Tensor::unsqueeze(int d) const {
  int j = d < 0 ? d + ndim() + 1 : d;
  A2F_CHECK(j >= 0 && j <= ndim(), "unsqueeze: dimension ", d, " out of range for ", desc());
  Tensor t = *this;
  int64_t st = j < ndim() ? strides_[j] * shape_[j] : 1;
  t.shape_.insert(t.shape_.begin() + j, 1);
  t.strides_.insert(t.strides_.begin() + j, st);
  return t;
}

Tensor Tensor::squeeze(int d) const {
  int j = d < 0 ? d + ndim() : d;
  A2F_CHECK(j >= 0 && j < ndim() && shape_[j] == 1, "squeeze: dimension ", d, " is not 1 in ", desc());
  Tensor t = *this;
  t.shape_.erase(t.shape_.begin() + j);
  t.strides_.erase(t.strides_.begin() + j);
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  A2F_CHECK(defined() && src.defined(), "copy_from: undefined tensor");
  A2F_CHECK(src.shape_ == shape_, "copy_from: shape ", src.desc(), " does not match ", desc());
  A2F_CHECK(device() == Device::CPU && src.device() == Device::CPU, "copy_from: host tensors only");
  const size_t es = dtype_size(src.dtype_), ed = dtype_size(dtype_);
  if (is_contiguous() && src.is_contiguous()) {
    convert(src.raw_data(), src.dtype_, raw_data(), dtype_, static_cast<size_t>(numel()));
    return;
  }
  // Generic strided copy: iterate the last dimension as a run.
  const int n = ndim();
  if (numel() == 0) return;
  if (n == 0) {
    convert(src.raw_data(), src.dtype_, raw_data(), dtype_, 1);
    return;
  }
  std::vector<int64_t> idx(n, 0);
  const int64_t inner = shape_[n - 1];
  const char* sbase = static_cast<const char*>(src.raw_data());
  char* dbase = static_cast<char*>(raw_data());
  std::vector<char> tmp;
  while (true) {
    int64_t so = 0, doff = 0;
    for (int i = 0; i < n - 1; ++i) {
      so += idx[i] * src.strides_[i];
      doff += idx[i] * strides_[i];
    }
    for (int64_t k = 0; k < inner; ++k) {
      convert(sbase + (so + k * src.strides_[n - 1]) * es, src.dtype_,
              dbase + (doff + k * strides_[n - 1]) * ed, dtype_, 1);
    }
    int i = n - 2;
    for (; i >= 0; --i) {
      if (++idx[i] < shape_[i]) break;
      idx[i] = 0;
    }
    if (i < 0) break;
  }
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  Tensor t = empty(shape_, dtype_);
  t.copy_from(*this);
  t.name_ = name_;
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, dtype_);
  t.copy_from(*this);
  t.name_ = name_;
  return t;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return *this;
  Tensor t = empty(shape_, dtype);
  t.copy_from(*this);
  t.name_ = name_;
  return t;
}

float Tensor::item_f32(int64_t flat) const {
  A2F_CHECK(flat >= 0 && flat < numel(), "item_f32: index ", flat, " out of range for ", desc());
  int64_t off = 0, rem = flat;
  for (int i = ndim(); i-- > 0;) {
    off += (rem % shape_[i]) * strides_[i];
    rem /= shape_[i];
  }
  float v;
  convert(static_cast<const char*>(raw_data()) + off * dtype_size(dtype_), dtype_, &v, DType::F32, 1);
  return v;
}

std::vector<float> Tensor::to_vector() const {
  Tensor c = to(DType::F32).contiguous();
  const float* p = c.data<float>();
  return std::vector<float>(p, p + c.numel());
}

std::string Tensor::desc() const {
  return cat(name_.empty() ? "" : name_ + " ", dtype_name(dtype_), shape_str(shape_));
}

}  // namespace a2f
