#include "hub/hash.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"

namespace a2f::hub {

struct Digest::Impl {
  EVP_MD_CTX* ctx = nullptr;
};

Digest::Digest(Kind kind) : impl_(std::make_unique<Impl>()), kind_(kind) {
  impl_->ctx = EVP_MD_CTX_new();
  A2F_CHECK(impl_->ctx, "out of memory creating a digest context");
  reset();
}

Digest::~Digest() {
  if (impl_ && impl_->ctx) EVP_MD_CTX_free(impl_->ctx);
}

Digest::Digest(Digest&&) noexcept = default;
Digest& Digest::operator=(Digest&&) noexcept = default;

void Digest::reset() {
  const EVP_MD* md = kind_ == Kind::Sha256 ? EVP_sha256() : EVP_sha1();
  A2F_CHECK(EVP_DigestInit_ex(impl_->ctx, md, nullptr) == 1, "EVP_DigestInit_ex failed");
}

void Digest::update(const void* data, size_t n) {
  if (n) A2F_CHECK(EVP_DigestUpdate(impl_->ctx, data, n) == 1, "EVP_DigestUpdate failed");
}

std::string Digest::hex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  A2F_CHECK(EVP_DigestFinal_ex(impl_->ctx, md, &len) == 1, "EVP_DigestFinal_ex failed");
  static const char* digits = "0123456789abcdef";
  std::string s;
  s.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) {
    s.push_back(digits[md[i] >> 4]);
    s.push_back(digits[md[i] & 15]);
  }
  reset();
  return s;
}

bool is_hex(std::string_view s, size_t len) {
  return s.size() == len &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit((unsigned char)c); });
}

ExpectedHash ExpectedHash::from_etag(const std::string& etag) {
  ExpectedHash h;
  std::string e = etag;
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (is_hex(e, 64)) {
    h.kind = Kind::Sha256;
    h.hex = e;
  } else if (is_hex(e, 40)) {
    h.kind = Kind::GitBlobSha1;
    h.hex = e;
  }
  return h;
}

const char* ExpectedHash::name() const {
  switch (kind) {
    case Kind::Sha256:
      return "sha256";
    case Kind::GitBlobSha1:
      return "git blob sha1";
    case Kind::None:
      break;
  }
  return "none";
}

FileHasher::FileHasher(ExpectedHash::Kind kind, uint64_t total_size)
    : kind_(kind),
      total_(total_size),
      digest_(kind == ExpectedHash::Kind::GitBlobSha1 ? Digest::Kind::Sha1 : Digest::Kind::Sha256) {
  start();
}

void FileHasher::start() {
  bytes_ = 0;
  if (kind_ == ExpectedHash::Kind::GitBlobSha1) {
    std::string header = "blob " + std::to_string(total_);
    digest_.update(header.data(), header.size() + 1);  // includes the terminating NUL
  }
}

void FileHasher::update(const void* data, size_t n) {
  bytes_ += n;
  if (kind_ != ExpectedHash::Kind::None) digest_.update(data, n);
}

std::string FileHasher::hex() {
  std::string h = kind_ == ExpectedHash::Kind::None ? std::string() : digest_.hex();
  start();
  return h;
}

void FileHasher::reset() {
  digest_.reset();
  start();
}

std::string sha256_hex(std::string_view data) {
  Digest d(Digest::Kind::Sha256);
  d.update(data);
  return d.hex();
}

namespace {
std::string hash_file(const std::filesystem::path& p, ExpectedHash::Kind kind) {
  FILE* f = std::fopen(p.c_str(), "rb");
  if (!f) fail("cannot read ", p.string(), ": ", std::strerror(errno));
  std::error_code ec;
  uint64_t size = std::filesystem::file_size(p, ec);
  FileHasher h(kind, ec ? 0 : size);
  std::string buf(1 << 20, '\0');
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) h.update(buf.data(), n);
  bool err = std::ferror(f);
  std::fclose(f);
  if (err) fail("error reading ", p.string());
  return h.hex();
}
}  // namespace

std::string sha256_file(const std::filesystem::path& p) {
  return hash_file(p, ExpectedHash::Kind::Sha256);
}
std::string git_blob_sha1_file(const std::filesystem::path& p) {
  return hash_file(p, ExpectedHash::Kind::GitBlobSha1);
}

}  // namespace a2f::hub
