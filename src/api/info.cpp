// arc2face::inspect_file: a dispatch on the file's format to one inspector per format.
#include "arc2face/info.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/mapped_file.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "io/torch_checkpoint.h"
#include "io/weights.h"

namespace arc2face {

namespace {

void add_tensors(FileInfo& fi, const a2f::StateDict& sd) {
  for (const auto& [name, t] : sd) {
    TensorInfo ti;
    ti.name = name;
    ti.dtype = a2f::dtype_name(t.dtype());
    ti.shape = t.shape();
    ti.bytes = t.nbytes();
    fi.total_params += static_cast<uint64_t>(t.numel());
    fi.total_bytes += ti.bytes;
    fi.tensors.push_back(std::move(ti));
  }
}

// One inspector per format. To add a format (e.g. ONNX through io/onnx.h): detect it in inspect_file below,
// then fill `fi` (tensors = the graph's initializers, metadata = producer/opset) in an inspect_<format>().
void inspect_safetensors(FileInfo& fi, const std::shared_ptr<a2f::MappedFile>& file,
                         const std::string& what) {
  a2f::SafetensorsFile st = a2f::safetensors_parse(file->storage(), what);
  fi.metadata = st.metadata;
  add_tensors(fi, st.tensors);
}

void inspect_torch(FileInfo& fi, const std::shared_ptr<a2f::MappedFile>& file, const std::string& what) {
  add_tensors(fi, a2f::torch_checkpoint_parse(file->storage(), what));
}

void inspect_npy(FileInfo& fi, const std::shared_ptr<a2f::MappedFile>& file, const std::string& what) {
  a2f::Tensor t = a2f::npy_parse(file->data(), file->size(), what);
  add_tensors(fi, {{"array", t}});
}

std::string with_commas(uint64_t v) {
  const std::string digits = std::to_string(v);
  std::string s;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s.push_back(',');
    s.push_back(digits[i]);
  }
  return s;
}

}  // namespace

FileInfo inspect_file(const std::string& path) {
  try {
    auto file = a2f::MappedFile::open(path);
    const std::string what = a2f::cat("'", path, "'");
    FileInfo fi;
    fi.path = path;
    fi.file_bytes = file->size();
    const a2f::FileFormat format = a2f::detect_file_format(file->data(), file->size());
    fi.format = a2f::file_format_name(format);
    switch (format) {
      case a2f::FileFormat::Safetensors:
        inspect_safetensors(fi, file, what);
        break;
      case a2f::FileFormat::TorchZip:
      case a2f::FileFormat::TorchLegacy:
        inspect_torch(fi, file, what);
        break;
      case a2f::FileFormat::Npy:
        inspect_npy(fi, file, what);
        break;
      case a2f::FileFormat::Unknown:
        a2f::fail(what, ": unknown file format (", file->size(),
                  " bytes; expected safetensors, a PyTorch zip checkpoint or .npy)");
    }
    return fi;
  } catch (const a2f::Error& e) {
    throw Error(e.what());
  }
}

std::string format_file_info(const FileInfo& fi, bool as_json) {
  if (as_json) {
    nlohmann::ordered_json j;
    j["path"] = fi.path;
    j["format"] = fi.format;
    j["file_bytes"] = fi.file_bytes;
    j["metadata"] = fi.metadata;
    j["tensors"] = nlohmann::ordered_json::array();
    for (const auto& t : fi.tensors) {
      j["tensors"].push_back({{"name", t.name}, {"dtype", t.dtype}, {"shape", t.shape}, {"bytes", t.bytes}});
    }
    j["total"] = {{"tensors", fi.tensors.size()}, {"parameters", fi.total_params}, {"bytes", fi.total_bytes}};
    // Names come from the file: invalid UTF-8 is replaced rather than failing.
    return j.dump(1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  }
  size_t wname = 4, wdtype = 5, wshape = 5;
  std::vector<std::string> shapes;
  for (const auto& t : fi.tensors) {
    shapes.push_back(a2f::shape_str(t.shape));
    wname = std::max(wname, t.name.size());
    wdtype = std::max(wdtype, t.dtype.size());
    wshape = std::max(wshape, shapes.back().size());
  }
  std::string out =
      a2f::cat("file: ", fi.path, "\nformat: ", fi.format, " (", with_commas(fi.file_bytes), " bytes)\n");
  if (!fi.metadata.empty()) {
    out += "metadata:\n";
    for (const auto& [k, v] : fi.metadata) out += a2f::cat("  ", k, ": ", v, "\n");
  }
  auto pad = [](const std::string& s, size_t w) {
    std::string r = s;
    r.resize(std::max(w, s.size()), ' ');
    return r;
  };
  out += a2f::cat(pad("name", wname), "  ", pad("dtype", wdtype), "  ", pad("shape", wshape), "  bytes\n");
  for (size_t i = 0; i < fi.tensors.size(); ++i) {
    const auto& t = fi.tensors[i];
    out += a2f::cat(pad(t.name, wname), "  ", pad(t.dtype, wdtype), "  ", pad(shapes[i], wshape), "  ",
                    with_commas(t.bytes), "\n");
  }
  out += a2f::cat("total: ", fi.tensors.size(), " tensors, ", with_commas(fi.total_params), " parameters, ",
                  with_commas(fi.total_bytes), " bytes\n");
  return out;
}

}  // namespace arc2face
