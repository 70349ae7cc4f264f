// Incremental digests for download verification (OpenSSL EVP): SHA-256 (the etag of LFS files on the hub)
// and the git blob SHA-1 (the etag of small, non-LFS files: sha1("blob <size>\0" + content)).
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace a2f::hub {

class Digest {
 public:
  enum class Kind { Sha256, Sha1 };
  explicit Digest(Kind kind);
  ~Digest();
  Digest(Digest&&) noexcept;
  Digest& operator=(Digest&&) noexcept;
  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::string hex();  // finalises; the object is reset afterwards
  void reset();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Kind kind_;
};

// The expected hash of a file and how to compute it.
struct ExpectedHash {
  enum class Kind { None, Sha256, GitBlobSha1 };
  Kind kind = Kind::None;
  std::string hex;                                         // lower-case
  static ExpectedHash from_etag(const std::string& etag);  // 64 hex -> sha256, 40 hex -> git blob sha1
  const char* name() const;                                // "sha256" / "git blob sha1" / "none"
};

// Streams a hash of kind `kind` for a file of `total_size` bytes (the git blob header needs the size first).
class FileHasher {
 public:
  FileHasher(ExpectedHash::Kind kind, uint64_t total_size);
  void update(const void* data, size_t n);
  std::string hex();
  void reset();
  uint64_t bytes() const { return bytes_; }

 private:
  ExpectedHash::Kind kind_;
  uint64_t total_;
  uint64_t bytes_ = 0;
  Digest digest_;
  void start();
};

std::string sha256_hex(std::string_view data);
// SHA-256 of a whole file; throws a2f::Error naming the file when it cannot be read.
std::string sha256_file(const std::filesystem::path& p);
std::string git_blob_sha1_file(const std::filesystem::path& p);

bool is_hex(std::string_view s, size_t len);

}  // namespace a2f::hub
