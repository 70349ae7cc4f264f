#include "io/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "io/atomic_file.h"
#include "io/json.h"
#include "io/mapped_file.h"
#include "io/shape_check.h"

namespace a2f {

namespace {

constexpr uint64_t kMaxHeader = 100'000'000;  // the reference implementation's limit

bool dtype_from_name(const std::string& s, DType& out) {
  static const std::pair<const char*, DType> table[] = {
      {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16},
      {"F64", DType::F64}, {"I64", DType::I64}, {"I32", DType::I32},
      {"U8", DType::U8},   {"I8", DType::I8},   {"BOOL", DType::Bool}};
  for (const auto& [name, t] : table) {
    if (s == name) {
      out = t;
      return true;
    }
  }
  return false;
}

SafetensorsEntry parse_entry(const std::string& name, const nlohmann::json& v, uint64_t data_size,
                             const std::string& what) {
  const std::string where = cat(what, ": tensor '", name, "'");
  A2F_CHECK(v.is_object(), where, ": header entry is not an object");
  SafetensorsEntry e;
  e.name = name;

  auto dt = v.find("dtype");
  A2F_CHECK(dt != v.end() && dt->is_string(), where, ": missing or non-string 'dtype'");
  const std::string dts = dt->get<std::string>();
  A2F_CHECK(dtype_from_name(dts, e.dtype), where, ": unsupported dtype '", dts,
            "' (supported: F32 F16 BF16 F64 I64 I32 U8 I8 BOOL)");

  auto sh = v.find("shape");
  A2F_CHECK(sh != v.end() && sh->is_array(), where, ": missing or non-array 'shape'");
  A2F_CHECK(sh->size() <= 32, where, ": shape has ", sh->size(), " dimensions (at most 32 supported)");
  for (const auto& d : *sh) {
    A2F_CHECK(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0), where,
              ": shape entries must be non-negative integers, found ", d.dump());
    uint64_t u = d.get<uint64_t>();
    A2F_CHECK(u <= static_cast<uint64_t>(INT64_MAX), where, ": dimension ", u, " too large");
    e.shape.push_back(static_cast<int64_t>(u));
  }

  auto off = v.find("data_offsets");
  A2F_CHECK(off != v.end() && off->is_array() && off->size() == 2 && (*off)[0].is_number_unsigned() &&
                (*off)[1].is_number_unsigned(),
            where, ": 'data_offsets' must be [begin, end] with non-negative integers");
  e.begin = (*off)[0].get<uint64_t>();
  e.end = (*off)[1].get<uint64_t>();
  A2F_CHECK(e.begin <= e.end, where, ": data_offsets [", e.begin, ", ", e.end, "] has begin > end");
  A2F_CHECK(e.end <= data_size, where, ": data_offsets [", e.begin, ", ", e.end,
            "] lie outside the data section of ", data_size, " bytes (truncated or corrupt file)");

  // numel * dtype size, overflow-checked: it must equal end - begin, which is at most data_size.
  uint64_t bytes = dtype_size(e.dtype);
  bool zero = false;
  for (int64_t d : e.shape) zero = zero || d == 0;
  if (zero) {
    bytes = 0;
  } else {
    for (int64_t d : e.shape) {
      A2F_CHECK(bytes <= data_size / static_cast<uint64_t>(d), where, ": shape ", shape_str(e.shape),
                " is larger than the whole data section");
      bytes *= static_cast<uint64_t>(d);
    }
  }
  A2F_CHECK(e.end - e.begin == bytes, where, ": ", dts, shape_str(e.shape), " needs ", bytes,
            " bytes but data_offsets [", e.begin, ", ", e.end, "] span ", e.end - e.begin);
  A2F_CHECK(shape_is_bounded(e.shape), where, ": shape ", shape_str(e.shape), " is too large");
  return e;
}

}  // namespace

const char* safetensors_dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "F32";
    case DType::F16:
      return "F16";
    case DType::BF16:
      return "BF16";
    case DType::F64:
      return "F64";
    case DType::I64:
      return "I64";
    case DType::I32:
      return "I32";
    case DType::U8:
      return "U8";
    case DType::I8:
      return "I8";
    case DType::Bool:
      return "BOOL";
  }
  return "?";
}

SafetensorsHeader safetensors_parse_header(const void* data, size_t size, const std::string& what) {
  const auto* p = static_cast<const uint8_t*>(data);
  A2F_CHECK(size >= 8, what, ": not a safetensors file (", size,
            " bytes, shorter than the 8-byte header length)");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | p[i];
  A2F_CHECK(n <= kMaxHeader, what, ": safetensors header length ", n, " is larger than the 100 MB limit");
  A2F_CHECK(n <= size - 8, what, ": safetensors header length ", n, " exceeds the file size ", size,
            " (truncated or not a safetensors file)");
  A2F_CHECK(n >= 2 && p[8] == '{', what, ": not a safetensors file (header does not start with '{')");

  std::string_view text(reinterpret_cast<const char*>(p + 8), static_cast<size_t>(n));
  nlohmann::json j = json_parse(text, what + " (safetensors header)", 8);
  A2F_CHECK(j.is_object(), what, ": safetensors header is not a JSON object");

  SafetensorsHeader h;
  h.data_start = 8 + n;
  const uint64_t data_size = size - h.data_start;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "__metadata__") {
      A2F_CHECK(it->is_object(), what, ": __metadata__ must be an object of strings");
      for (auto m = it->begin(); m != it->end(); ++m) {
        A2F_CHECK(m->is_string(), what, ": __metadata__ value of '", m.key(), "' is not a string");
        h.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    h.entries.push_back(parse_entry(it.key(), *it, data_size, what));
  }

  // No two tensors may share bytes.
  std::vector<const SafetensorsEntry*> by_offset;
  by_offset.reserve(h.entries.size());
  for (const auto& e : h.entries) {
    if (e.end > e.begin) by_offset.push_back(&e);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](const SafetensorsEntry* a, const SafetensorsEntry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const auto* a = by_offset[i - 1];
    const auto* b = by_offset[i];
    A2F_CHECK(b->begin >= a->end, what, ": tensors '", a->name, "' [", a->begin, ", ", a->end, ") and '",
              b->name, "' [", b->begin, ", ", b->end, ") overlap");
  }
  return h;  // nlohmann's object iterates keys in sorted order, so entries are sorted by name
}

SafetensorsFile safetensors_parse(const std::shared_ptr<Storage>& buffer, const std::string& what) {
  A2F_CHECK(buffer != nullptr, what, ": no data");
  SafetensorsHeader h = safetensors_parse_header(buffer->data(), buffer->bytes(), what);
  SafetensorsFile f;
  f.metadata = std::move(h.metadata);
  const auto* base = static_cast<const uint8_t*>(buffer->data());
  for (auto& e : h.entries) {
    const size_t off = static_cast<size_t>(h.data_start + e.begin);
    Tensor t;
    const size_t es = dtype_size(e.dtype);
    if (reinterpret_cast<uintptr_t>(base + off) % es == 0) {
      t = Tensor::from_storage(buffer, off, e.shape, e.dtype);
    } else {  // misaligned for its element type: an aligned copy
      t = Tensor::empty(e.shape, e.dtype);
      if (e.end > e.begin) std::memcpy(t.raw_data(), base + off, static_cast<size_t>(e.end - e.begin));
    }
    t.set_name(e.name);
    f.tensors.emplace(std::move(e.name), std::move(t));
  }
  return f;
}

SafetensorsFile safetensors_open(const std::filesystem::path& path) {
  auto file = MappedFile::open(path);
  return safetensors_parse(file->storage(), cat("'", path.string(), "'"));
}

StateDict load_safetensors(const std::filesystem::path& path) {
  return safetensors_open(path).tensors;
}

void safetensors_write(const std::filesystem::path& path, const StateDict& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    A2F_CHECK(t.defined() && t.device() == Device::CPU, "safetensors_write '", path.string(), "': tensor '",
              name, "' is not a defined host tensor");
    Tensor c = t.contiguous();
    header[name] = {{"dtype", safetensors_dtype_name(c.dtype())},
                    {"shape", c.shape()},
                    {"data_offsets", {offset, offset + c.nbytes()}}};
    offset += c.nbytes();
    data.push_back(std::move(c));
  }
  std::string text = header.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
  text.append((8 - text.size() % 8) % 8, ' ');  // data section 8-byte aligned, as the reference writer does
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));

  std::vector<ByteRange> parts = {{len, 8}, {text.data(), text.size()}};
  for (const auto& t : data) parts.push_back({t.raw_data(), t.nbytes()});
  write_file_atomic(path, parts.data(), parts.size());
}

}  // namespace a2f
