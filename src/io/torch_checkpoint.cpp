#include "io/torch_checkpoint.h"

#include <cstring>
#include <unordered_map>

#include "core/log.h"
#include "io/mapped_file.h"
#include "io/pickle.h"
#include "io/shape_check.h"
#include "io/zip_reader.h"

namespace a2f {

namespace {

constexpr int kMaxDepth = 64;
constexpr size_t kMaxName = 4096;

bool mul_ok(int64_t a, int64_t b, int64_t& out) {
  return !__builtin_mul_overflow(a, b, &out);
}
bool add_ok(int64_t a, int64_t b, int64_t& out) {
  return !__builtin_add_overflow(a, b, &out);
}

class Resolver {
 public:
  Resolver(const PickleData& pk, const ZipArchive& zip, const std::shared_ptr<Storage>& buffer,
           const std::string& prefix, const std::string& what)
      : pk_(pk),
        zip_(zip),
        buffer_(buffer),
        prefix_(prefix),
        what_(what),
        on_path_(pk.objects.size(), false) {
    visit_budget_ = pk.objects.size() * 2 + 16;
  }

  StateDict run() {
    uint32_t root = pk_.root;
    // {"state_dict": {...}, "global_step": ...} (Lightning / original SD checkpoints): use the inner dict.
    const PickleObject& r = pk_.at(root);
    if (r.kind == PickleKind::Dict) {
      for (size_t i = 0; i + 1 < r.items.size(); i += 2) {
        const PickleObject& k = pk_.at(r.items[i]);
        if (k.kind == PickleKind::Str && k.s == "state_dict" &&
            pk_.at(r.items[i + 1]).kind == PickleKind::Dict) {
          root = r.items[i + 1];
        }
      }
    }
    if (pk_.at(root).kind == PickleKind::Tensor) {
      walk(root, "tensor", 0);
    } else {
      walk(root, "", 0);
    }
    if (skipped_ > 0) log_debug(what_, ": skipped ", skipped_, " non-tensor values");
    return std::move(out_);
  }

 private:
  void walk(uint32_t id, const std::string& name, int depth) {
    A2F_CHECK(depth <= kMaxDepth, what_, ": checkpoint nested deeper than ", kMaxDepth, " levels");
    A2F_CHECK(visit_budget_-- > 0, what_, ": checkpoint object graph is too large (shared sub-objects?)");
    const PickleObject& o = pk_.at(id);
    switch (o.kind) {
      case PickleKind::Tensor: {
        A2F_CHECK(!out_.count(name), what_, ": two tensors named '", name, "'");
        Tensor t = tensor(id, name);
        t.set_name(name);
        out_.emplace(name, std::move(t));
        return;
      }
      case PickleKind::Dict:
      case PickleKind::List:
      case PickleKind::Tuple:
        break;
      default:
        ++skipped_;
        return;
    }
    A2F_CHECK(!on_path_[id], what_, ": checkpoint contains a reference cycle at '", name, "'");
    on_path_[id] = true;
    if (o.kind == PickleKind::Dict) {
      // Python dict semantics: a repeated key keeps its last value.
      std::unordered_map<std::string, size_t> last;
      std::vector<std::pair<std::string, uint32_t>> kids;
      for (size_t i = 0; i + 1 < o.items.size(); i += 2) {
        const PickleObject& k = pk_.at(o.items[i]);
        std::string key;
        if (k.kind == PickleKind::Str) {
          key = k.s;
        } else if (k.kind == PickleKind::Int) {
          key = cat(k.i);
        } else {
          ++skipped_;
          continue;
        }
        auto [it, inserted] = last.emplace(key, kids.size());
        if (inserted) {
          kids.emplace_back(std::move(key), o.items[i + 1]);
        } else {
          kids[it->second].second = o.items[i + 1];
        }
      }
      for (const auto& [key, child] : kids) walk(child, join(name, key), depth + 1);
    } else {
      for (size_t i = 0; i < o.items.size(); ++i) walk(o.items[i], join(name, cat(i)), depth + 1);
    }
    on_path_[id] = false;
  }

  std::string join(const std::string& a, const std::string& b) const {
    A2F_CHECK(a.size() + b.size() + 1 <= kMaxName, what_, ": tensor name longer than ", kMaxName,
              " characters");
    return a.empty() ? b : a + "." + b;
  }

  Tensor tensor(uint32_t id, const std::string& name) {
    auto cached = tensors_.find(id);
    if (cached != tensors_.end()) return cached->second;
    const PickleObject& t = pk_.at(id);
    const PickleObject& st = pk_.at(t.storage);
    const std::string where = cat(what_, ": tensor '", name, "'");
    const std::string entry_name = prefix_ + "data/" + st.s;
    const ZipEntry* e = zip_.find(entry_name);
    A2F_CHECK(e != nullptr, where, ": storage '", entry_name, "' is missing from the archive");
    const int64_t es = static_cast<int64_t>(dtype_size(t.dtype));
    int64_t storage_bytes = 0;
    A2F_CHECK(mul_ok(st.i, es, storage_bytes) && static_cast<uint64_t>(storage_bytes) <= e->size, where,
              ": storage '", entry_name, "' declares ", st.i, " elements of ", dtype_name(t.dtype),
              " but holds ", e->size, " bytes");
    // The view must lie inside the storage: offset + sum((size_i - 1) * stride_i) < numel.
    A2F_CHECK(t.i >= 0 && t.i <= st.i, where, ": storage offset ", t.i, " outside its storage of ", st.i,
              " elements");
    int64_t numel = 1, last = t.i;
    for (size_t d = 0; d < t.shape.size(); ++d) {
      A2F_CHECK(t.shape[d] >= 0 && t.stride[d] >= 0, where, ": negative size or stride (size ",
                shape_str(t.shape), ", stride ", t.stride, ")");
      A2F_CHECK(mul_ok(numel, t.shape[d], numel), where, ": size ", shape_str(t.shape), " overflows");
    }
    A2F_CHECK(shape_is_bounded(t.shape), where, ": size ", shape_str(t.shape), " is too large");
    if (numel > 0) {
      for (size_t d = 0; d < t.shape.size(); ++d) {
        int64_t span = 0;
        A2F_CHECK(mul_ok(t.shape[d] - 1, t.stride[d], span) && add_ok(last, span, last), where,
                  ": size/stride overflow");
      }
      A2F_CHECK(last < st.i, where, ": view (offset ", t.i, ", size ", shape_str(t.shape), ", stride ",
                t.stride, ") runs past its storage of ", st.i, " elements");
    }
    const uint8_t* base = zip_.entry_data(*e);
    const auto* buf0 = static_cast<const uint8_t*>(buffer_->data());
    Tensor out;
    const bool contiguous = t.stride == contiguous_strides(t.shape) || numel <= 1 || [&] {
      int64_t expect = 1;
      for (size_t d = t.shape.size(); d-- > 0;) {
        if (t.shape[d] == 1) continue;
        if (t.stride[d] != expect) return false;
        expect *= t.shape[d];
      }
      return true;
    }();
    const uint8_t* first = base + t.i * es;
    if (contiguous && reinterpret_cast<uintptr_t>(first) % static_cast<uintptr_t>(es) == 0) {
      out = Tensor::from_storage(buffer_, static_cast<size_t>(first - buf0), t.shape, t.dtype);
    } else {
      out = Tensor::empty(t.shape, t.dtype);
      if (numel > 0) gather(first, t, static_cast<size_t>(es), static_cast<uint8_t*>(out.raw_data()));
    }
    tensors_.emplace(id, out);
    return out;
  }

  // Strided copy into a contiguous buffer (element by element; rare in state dicts).
  static void gather(const uint8_t* src, const PickleObject& t, size_t es, uint8_t* dst) {
    const size_t nd = t.shape.size();
    std::vector<int64_t> idx(nd, 0);
    int64_t n = shape_numel(t.shape);
    for (int64_t k = 0; k < n; ++k) {
      int64_t off = 0;
      for (size_t d = 0; d < nd; ++d) off += idx[d] * t.stride[d];
      std::memcpy(dst + static_cast<size_t>(k) * es, src + static_cast<size_t>(off) * es, es);
      for (size_t d = nd; d-- > 0;) {
        if (++idx[d] < t.shape[d]) break;
        idx[d] = 0;
      }
    }
  }

  const PickleData& pk_;
  const ZipArchive& zip_;
  const std::shared_ptr<Storage>& buffer_;
  const std::string& prefix_;
  const std::string& what_;
  std::vector<bool> on_path_;
  size_t visit_budget_ = 0;
  size_t skipped_ = 0;
  std::unordered_map<uint32_t, Tensor> tensors_;
  StateDict out_;
};

}  // namespace

bool torch_legacy_magic(const void* data, size_t size) {
  // pickle of the int 0x1950a86a20f9469cfc6c: PROTO 2, LONG1 10 bytes.
  static const uint8_t magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c,
                                  0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  return size >= sizeof(magic) && std::memcmp(data, magic, sizeof(magic)) == 0;
}

StateDict torch_checkpoint_parse(const std::shared_ptr<Storage>& buffer, const std::string& what) {
  A2F_CHECK(buffer != nullptr, what, ": no data");
  const auto* data = static_cast<const uint8_t*>(buffer->data());
  const size_t size = buffer->bytes();
  if (torch_legacy_magic(data, size)) {
    fail(what,
         ": legacy (torch < 1.6, non-zip) checkpoint format is not supported; re-save it with a newer "
         "torch.save (the default zip format)");
  }
  ZipArchive zip = ZipArchive::parse(data, size, what);
  A2F_CHECK(!zip.entries().empty(), what, ": empty zip archive (not a PyTorch checkpoint)");
  const std::string& first = zip.entries().front().name;
  const size_t slash = first.find('/');
  A2F_CHECK(slash != std::string::npos && slash > 0, what, ": not a PyTorch checkpoint (zip entry '", first,
            "' is not inside an archive folder)");
  const std::string prefix = first.substr(0, slash + 1);

  if (const ZipEntry* bo = zip.find(prefix + "byteorder")) {
    std::string order(reinterpret_cast<const char*>(zip.entry_data(*bo)), static_cast<size_t>(bo->size));
    A2F_CHECK(order == "little", what, ": checkpoint byte order '", order.substr(0, 16),
              "' is not supported (only little-endian)");
  }
  const ZipEntry* pkl = zip.find(prefix + "data.pkl");
  A2F_CHECK(pkl != nullptr, what, ": not a PyTorch checkpoint ('", prefix, "data.pkl' is missing)");
  PickleData pk = pickle_parse(zip.entry_data(*pkl), static_cast<size_t>(pkl->size), what);
  return Resolver(pk, zip, buffer, prefix, what).run();
}

StateDict load_torch_checkpoint(const std::filesystem::path& path) {
  auto file = MappedFile::open(path);
  return torch_checkpoint_parse(file->storage(), cat("'", path.string(), "'"));
}

}  // namespace a2f
