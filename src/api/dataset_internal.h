// Shared pieces of the dataset tool (src/api/dataset*.cpp): the on-disk layout, dataset.json, manifest
// records, atomic files and locks. Not part of the public API.
#pragma once
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <new>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "arc2face/dataset.h"
#include "core/error.h"

namespace arc2face::dataset_detail {

namespace fs = std::filesystem;

inline constexpr const char* kFormat = "arc2face-dataset 1";
inline constexpr const char* kVersion = "arc2face.cpp 0.1.0";

struct Record;

// Everything about the dataset that decides its files: the spec plus the compute settings that change bytes.
struct Layout {
  DatasetSpec spec;
  std::string dtype = "fp32";
  std::string backend = "cpu";
  bool scored = false;
  std::vector<std::string> identity_names;  // from a path: one per identity; sampled: empty

  int64_t total() const { return int64_t(spec.identities) * spec.per_identity; }
  int64_t units() const { return (total() + spec.batch - 1) / spec.batch; }
  int64_t unit_begin(int64_t u) const { return u * spec.batch; }
  int unit_size(int64_t u) const { return int(std::min<int64_t>(spec.batch, total() - u * spec.batch)); }
  int64_t unit_of(int64_t g) const { return g / spec.batch; }
  bool filtering() const { return spec.min_similarity == spec.min_similarity; }  // not NaN
  std::pair<int, int> split(int64_t g) const {
    return {int(g / spec.per_identity), int(g % spec.per_identity)};
  }
  std::string rel_path(int64_t g, bool kept) const;
  // The PNG "parameters" text of image g: what verification compares.
  std::string parameters(int64_t g) const;
  // The manifest line of image g (score: none when not scored; similarity only used when detected).
  Record record(int64_t g, bool kept, const std::optional<ImageScore>& score) const;

  nlohmann::ordered_json to_json() const;
  static Layout from_json(const nlohmann::json& j, const std::string& what);
  // Differences that change the dataset's images or manifest ("steps: 25 on disk, 30 asked"); empty = same.
  std::vector<std::string> differences(const Layout& asked) const;
};

// One manifest line: one complete image.
struct Record {
  int identity = 0, index = 0;
  int64_t seed = 0;
  int64_t unit = 0;
  std::string file;  // relative to the dataset folder
  bool kept = true;
  std::optional<bool> detected;
  int faces = 0;
  std::optional<double> similarity;
  std::string parameters;

  std::string to_line() const;                                  // one JSON object + '\n'
  static std::optional<Record> parse(const std::string& line);  // nullopt for a torn or malformed line
};

std::string manifest_name(const Shard& s);                     // "shard-00001-of-00003.jsonl"
std::optional<Shard> manifest_shard(const std::string& name);  // inverse; nullopt for other names

// Streams a manifest file: fn(record) for every valid line in file order; returns the number of unusable
// lines (malformed, or a torn last line without its newline).
int64_t read_manifest(const fs::path& file, const std::function<void(Record&&)>& fn);

// Files.
void write_file_atomic(const fs::path& path, const void* data, size_t size);  // via path.tmp (io/atomic_file.h)
std::string read_text(const fs::path& path);
// The PNG decodes completely, is width x height RGB and its "parameters" text equals `parameters`. On failure
// `why` says what is wrong. `rgb` (optional) receives the pixels.
bool verify_png(const fs::path& path, int width, int height, const std::string& parameters, std::string* why,
                std::vector<uint8_t>* rgb = nullptr);

// flock() on a lock file (created if needed). wait = false: held() tells whether it was taken. On file
// systems without flock the lock is not held and `unsupported` is set (the caller warns and goes on).
class FileLock {
 public:
  FileLock(const fs::path& path, bool wait);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  bool held() const { return held_; }
  bool unsupported() const { return unsupported_; }

 private:
  int fd_ = -1;
  bool held_ = false, unsupported_ = false;
};

// Appends whole lines with one write() each (O_APPEND).
class LineAppender {
 public:
  explicit LineAppender(const fs::path& path);
  ~LineAppender();
  LineAppender(const LineAppender&) = delete;
  LineAppender& operator=(const LineAppender&) = delete;
  void append(const std::string& line);

 private:
  fs::path path_;
  int fd_ = -1;
};

// Identities of a dataset: sampled, or loaded from spec.identities_from (then N may be resolved from it).
std::vector<std::vector<float>> make_identities(Layout& layout, const FaceAnalyzerOptions& face);

// Runs fn, turning the library's a2f::Error into arc2face::Error.
template <class F>
auto api_call(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error&) {
    throw;
  } catch (const a2f::Error& e) {
    throw Error(e.what());
  } catch (const std::bad_alloc&) {
    throw Error("out of memory");
  }
}

}  // namespace arc2face::dataset_detail
