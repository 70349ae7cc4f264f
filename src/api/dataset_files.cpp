// The dataset's on-disk pieces: layout and dataset.json, manifest records, atomic files, locks.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <tuple>

#include "api/dataset_internal.h"
#include "io/atomic_file.h"
#include "io/image.h"
#include "io/json.h"

namespace arc2face {

namespace dataset_detail {
namespace {

int digits(int64_t n) {  // decimal digits of n >= 0
  int d = 1;
  while (n >= 10) n /= 10, ++d;
  return d;
}

std::string padded(int64_t v, int width) {
  std::string s = std::to_string(v);
  return s.size() < size_t(width) ? std::string(size_t(width) - s.size(), '0') + s : s;
}

std::string format_float(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

}  // namespace

std::string Layout::rel_path(int64_t g, bool kept) const {
  auto [i, k] = split(g);
  return dataset_image_path(spec, i, k, kept);
}

std::string Layout::parameters(int64_t g) const {
  auto [i, k] = split(g);
  const int64_t u = unit_of(g);
  return a2f::cat("Arc2Face synthetic dataset image; Identity: ", i, ", Image: ", k,
                  ", Seed: ", dataset_image_seed(spec, i, k), ", Steps: ", spec.steps,
                  ", Sampler: ", spec.scheduler, ", CFG scale: ", format_float(spec.guidance),
                  ", Size: ", spec.width, "x", spec.height, ", Dtype: ", dtype, ", Backend: ", backend,
                  ", Unit: ", u, " of ", unit_size(u), " images, Dataset seed: ", spec.seed,
                  ", Generator: torch cpu, ", kVersion);
}

Record Layout::record(int64_t g, bool kept, const std::optional<ImageScore>& sc) const {
  Record r;
  std::tie(r.identity, r.index) = split(g);
  r.seed = dataset_image_seed(spec, r.identity, r.index);
  r.unit = unit_of(g);
  r.file = rel_path(g, kept);
  r.kept = kept;
  if (sc) {
    r.detected = sc->detected;
    r.faces = sc->faces;
    if (sc->detected) r.similarity = sc->similarity;
  }
  r.parameters = parameters(g);
  return r;
}

nlohmann::ordered_json Layout::to_json() const {
  nlohmann::ordered_json j;
  j["format"] = kFormat;
  nlohmann::ordered_json s;
  s["identities"] = spec.identities;
  s["per_identity"] = spec.per_identity;
  s["seed"] = spec.seed;
  s["identities_from"] = spec.identities_from;
  s["identity_max_cosine"] = spec.identity_max_cosine;
  s["batch"] = spec.batch;
  s["steps"] = spec.steps;
  s["guidance"] = double(spec.guidance);
  s["scheduler"] = spec.scheduler;
  s["width"] = spec.width;
  s["height"] = spec.height;
  s["min_similarity"] =
      filtering() ? nlohmann::ordered_json(spec.min_similarity) : nlohmann::ordered_json(nullptr);
  s["dtype"] = dtype;
  s["backend"] = backend;
  s["scored"] = scored;
  j["spec"] = s;
  j["layout"] = {{"images", "images/<identity>/<image>.png (identity, image zero-padded)"},
                 {"filtered", "filtered/<identity>/<image>.png (below min_similarity)"},
                 {"image_seed", "seed + identity * per_identity + image"},
                 {"unit", "global image number (identity * per_identity + image) / batch"},
                 {"shard", "unit mod shard count"}};
  if (!identity_names.empty()) j["identity_names"] = identity_names;
  j["created_by"] = kVersion;
  return j;
}

Layout Layout::from_json(const nlohmann::json& j, const std::string& what) {
  const std::string fmt = a2f::json_get<std::string>(j, "format", what);
  A2F_CHECK(fmt == kFormat, what, ": format '", fmt, "' is not '", kFormat, "' (made by another version?)");
  const nlohmann::json& s = j.at("spec");
  Layout l;
  l.spec.identities = a2f::json_get<int>(s, "identities", what);
  l.spec.per_identity = a2f::json_get<int>(s, "per_identity", what);
  l.spec.seed = a2f::json_get<int64_t>(s, "seed", what);
  l.spec.identities_from = a2f::json_get<std::string>(s, "identities_from", what);
  l.spec.identity_max_cosine = a2f::json_get<double>(s, "identity_max_cosine", what);
  l.spec.batch = a2f::json_get<int>(s, "batch", what);
  l.spec.steps = a2f::json_get<int>(s, "steps", what);
  l.spec.guidance = float(a2f::json_get<double>(s, "guidance", what));
  l.spec.scheduler = a2f::json_get<std::string>(s, "scheduler", what);
  l.spec.width = a2f::json_get<int>(s, "width", what);
  l.spec.height = a2f::json_get<int>(s, "height", what);
  l.spec.min_similarity = a2f::json_get_or<double>(s, "min_similarity", std::nan(""), what);
  l.dtype = a2f::json_get<std::string>(s, "dtype", what);
  l.backend = a2f::json_get<std::string>(s, "backend", what);
  l.scored = a2f::json_get<bool>(s, "scored", what);
  if (j.contains("identity_names")) l.identity_names = j["identity_names"].get<std::vector<std::string>>();
  A2F_CHECK(l.spec.identities > 0 && l.spec.per_identity > 0 && l.spec.batch > 0, what, ": invalid counts");
  return l;
}

std::vector<std::string> Layout::differences(const Layout& a) const {
  std::vector<std::string> d;
  auto cmp = [&](const char* name, const auto& disk, const auto& asked) {
    if (!(disk == asked)) d.push_back(a2f::cat(name, ": ", disk, " in dataset.json, ", asked, " asked"));
  };
  // identities = 0 with a source means "all of them": whatever was resolved then.
  if (!(a.spec.identities == 0 && !a.spec.identities_from.empty()))
    cmp("identities", spec.identities, a.spec.identities);
  cmp("per_identity", spec.per_identity, a.spec.per_identity);
  cmp("seed", spec.seed, a.spec.seed);
  cmp("identities_from", spec.identities_from, a.spec.identities_from);
  if (spec.identities_from.empty())
    cmp("identity_max_cosine", spec.identity_max_cosine, a.spec.identity_max_cosine);
  cmp("batch", spec.batch, a.spec.batch);
  cmp("steps", spec.steps, a.spec.steps);
  cmp("guidance", spec.guidance, a.spec.guidance);
  cmp("scheduler", spec.scheduler, a.spec.scheduler);
  cmp("width", spec.width, a.spec.width);
  cmp("height", spec.height, a.spec.height);
  if (filtering() != a.filtering() || (filtering() && spec.min_similarity != a.spec.min_similarity)) {
    d.push_back(a2f::cat("min_similarity: ", filtering() ? format_float(spec.min_similarity) : "none",
                         " in dataset.json, ", a.filtering() ? format_float(a.spec.min_similarity) : "none",
                         " asked"));
  }
  cmp("dtype", dtype, a.dtype);
  cmp("backend", backend, a.backend);
  cmp("scored (face models given)", scored, a.scored);
  return d;
}

std::string Record::to_line() const {
  nlohmann::ordered_json j;
  j["id"] = identity;
  j["index"] = index;
  j["file"] = file;
  j["seed"] = seed;
  j["unit"] = unit;
  j["kept"] = kept;
  j["detected"] = detected ? nlohmann::ordered_json(*detected) : nlohmann::ordered_json(nullptr);
  j["faces"] = detected ? nlohmann::ordered_json(faces) : nlohmann::ordered_json(nullptr);
  j["similarity"] = similarity ? nlohmann::ordered_json(*similarity) : nlohmann::ordered_json(nullptr);
  j["parameters"] = parameters;
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

std::optional<Record> Record::parse(const std::string& line) {
  try {
    const auto j = nlohmann::json::parse(line);
    Record r;
    r.identity = j.at("id").get<int>();
    r.index = j.at("index").get<int>();
    r.file = j.at("file").get<std::string>();
    r.seed = j.at("seed").get<int64_t>();
    r.unit = j.at("unit").get<int64_t>();
    r.kept = j.at("kept").get<bool>();
    if (!j.at("detected").is_null()) r.detected = j["detected"].get<bool>();
    if (!j.at("faces").is_null()) r.faces = j["faces"].get<int>();
    if (!j.at("similarity").is_null()) r.similarity = j["similarity"].get<double>();
    r.parameters = j.at("parameters").get<std::string>();
    return r;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string manifest_name(const Shard& s) {
  return "shard-" + padded(s.index, 5) + "-of-" + padded(s.count, 5) + ".jsonl";
}

std::optional<Shard> manifest_shard(const std::string& name) {
  int i = 0, n = 0;
  char tail[8] = {};
  if (name.size() != std::string("shard-00000-of-00000.jsonl").size()) return std::nullopt;
  if (std::sscanf(name.c_str(), "shard-%5d-of-%5d.%5s", &i, &n, tail) != 3 || std::string(tail) != "jsonl")
    return std::nullopt;
  if (n < 1 || i < 0 || i >= n) return std::nullopt;
  return Shard{i, n};
}

int64_t read_manifest(const fs::path& file, const std::function<void(Record&&)>& fn) {
  std::ifstream in(file, std::ios::binary);
  A2F_CHECK(in.good(), "cannot read '", file.string(), "'");
  int64_t bad = 0;
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) {  // no newline after it: torn by an interrupted write
      if (!line.empty()) ++bad;
      break;
    }
    if (line.empty()) continue;
    if (auto r = Record::parse(line))
      fn(std::move(*r));
    else
      ++bad;
  }
  return bad;
}

void write_file_atomic(const fs::path& path, const void* data, size_t size) {
  a2f::write_file_atomic(path, {{data, size}}, ".tmp");  // the fixed name that a resumed run removes
}

std::string read_text(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  A2F_CHECK(f.good(), "cannot read '", path.string(), "'");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool verify_png(const fs::path& path, int width, int height, const std::string& parameters, std::string* why,
                std::vector<uint8_t>* rgb) {
  try {
    a2f::ImageReadOptions ro;
    ro.apply_exif_orientation = false;
    a2f::Image8 img = a2f::image_read(path, ro);
    if (img.width != width || img.height != height) {
      *why = a2f::cat("is ", img.width, "x", img.height, ", not ", width, "x", height);
      return false;
    }
    const a2f::PngText text = a2f::png_read_text(path);
    std::string found;
    for (const auto& [k, v] : text)
      if (k == "parameters") found = v;
    if (found != parameters) {
      *why = found.empty() ? "has no parameters text" : "has other parameters: " + found;
      return false;
    }
    if (rgb) *rgb = std::move(img.pixels);
    return true;
  } catch (const a2f::Error& e) {
    *why = e.what();
    return false;
  }
}

FileLock::FileLock(const fs::path& path, bool wait) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  A2F_CHECK(fd_ >= 0, "cannot open the lock file '", path.string(), "': ", std::strerror(errno));
  int r;
  do {
    r = ::flock(fd_, LOCK_EX | (wait ? 0 : LOCK_NB));
  } while (r != 0 && errno == EINTR);
  if (r == 0) {
    held_ = true;
  } else if (errno == ENOLCK || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) {
    unsupported_ = true;
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

LineAppender::LineAppender(const fs::path& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  A2F_CHECK(fd_ >= 0, "cannot open '", path.string(), "' for appending: ", std::strerror(errno));
}

LineAppender::~LineAppender() {
  if (fd_ >= 0) ::close(fd_);
}

void LineAppender::append(const std::string& line) {
  // One write() per line: a process killed around it leaves the whole line or none of it (a torn line can
  // only come from a full disk or a crash of the machine, and readers skip it).
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    A2F_CHECK(n > 0, "cannot append to '", path_.string(), "': ", std::strerror(errno));
    done += size_t(n);
  }
}

}  // namespace dataset_detail

int64_t dataset_image_seed(const DatasetSpec& spec, int identity, int index) {
  return spec.seed + int64_t(identity) * spec.per_identity + index;
}

std::string dataset_image_path(const DatasetSpec& spec, int identity, int index, bool kept) {
  using dataset_detail::digits;
  using dataset_detail::padded;
  const int id_w = std::max(6, digits(std::max(0, spec.identities - 1)));
  const int im_w = std::max(4, digits(std::max(0, spec.per_identity - 1)));
  return std::string(kept ? "images/" : "filtered/") + padded(identity, id_w) + "/" + padded(index, im_w) +
         ".png";
}

}  // namespace arc2face
