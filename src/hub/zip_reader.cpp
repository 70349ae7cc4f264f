#include "hub/zip_reader.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "hub/hash.h"

namespace a2f::hub {
namespace fs = std::filesystem;

namespace {

constexpr uint32_t kEocdSig = 0x06054b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr uint32_t kZip64EocdSig = 0x06064b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kLocalSig = 0x04034b50;

uint16_t u16(std::string_view s, size_t at) {
  return uint16_t(uint8_t(s[at]) | (uint8_t(s[at + 1]) << 8));
}
uint32_t u32(std::string_view s, size_t at) {
  return uint32_t(u16(s, at)) | (uint32_t(u16(s, at + 2)) << 16);
}
uint64_t u64(std::string_view s, size_t at) {
  return uint64_t(u32(s, at)) | (uint64_t(u32(s, at + 4)) << 32);
}

std::string read_range(int fd, uint64_t offset, uint64_t n, const fs::path& p) {
  std::string buf(size_t(n), '\0');
  uint64_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, buf.data() + got, size_t(n - got), off_t(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0)
      fail("cannot read ", p.string(), " at byte ", offset + got, r < 0 ? ": " : " (file too short)",
           r < 0 ? std::strerror(errno) : "");
    got += uint64_t(r);
  }
  return buf;
}

}  // namespace

ZipDirectoryLocation zip_locate_directory(std::string_view tail, uint64_t tail_offset, uint64_t total,
                                          const std::string& what) {
  A2F_CHECK(tail_offset + tail.size() == total, "internal: zip tail does not end the archive");
  A2F_CHECK(tail.size() >= 22, what, " is not a zip archive (", total, " bytes)");
  size_t pos = tail.size() - 22;
  for (;; --pos) {
    if (u32(tail, pos) == kEocdSig && pos + 22 + u16(tail, pos + 20) == tail.size()) break;
    if (pos == 0) fail(what, " is not a zip archive (no end of central directory record)");
  }
  ZipDirectoryLocation loc;
  loc.entries = u16(tail, pos + 10);
  loc.size = u32(tail, pos + 12);
  loc.offset = u32(tail, pos + 16);
  bool zip64 = loc.entries == 0xFFFF || loc.size == 0xFFFFFFFFu || loc.offset == 0xFFFFFFFFu;
  if (zip64) {
    A2F_CHECK(pos >= 20 && u32(tail, pos - 20) == kZip64LocatorSig, what, ": zip64 locator missing");
    uint64_t rec = u64(tail, pos - 20 + 8);
    A2F_CHECK(rec >= tail_offset && rec - tail_offset + 56 <= tail.size(), what,
              ": zip64 end of central directory record out of reach");
    size_t r = size_t(rec - tail_offset);
    A2F_CHECK(u32(tail, r) == kZip64EocdSig, what, ": bad zip64 end of central directory record");
    loc.entries = u64(tail, r + 32);
    loc.size = u64(tail, r + 40);
    loc.offset = u64(tail, r + 48);
  }
  A2F_CHECK(loc.offset + loc.size <= total, what, ": central directory (", loc.offset, "+", loc.size,
            ") lies beyond the end of the archive (", total, " bytes)");
  return loc;
}

std::vector<ZipEntry> zip_parse_directory(std::string_view cd, const ZipDirectoryLocation& loc,
                                          const std::string& what) {
  std::vector<ZipEntry> out;
  size_t p = 0;
  for (uint64_t i = 0; i < loc.entries; ++i) {
    A2F_CHECK(p + 46 <= cd.size() && u32(cd, p) == kCentralSig, what, ": damaged central directory (entry ",
              i, ")");
    ZipEntry e;
    e.flags = u16(cd, p + 8);
    e.method = u16(cd, p + 10);
    e.crc32 = u32(cd, p + 16);
    e.compressed_size = u32(cd, p + 20);
    e.size = u32(cd, p + 24);
    size_t name_len = u16(cd, p + 28), extra_len = u16(cd, p + 30), comment_len = u16(cd, p + 32);
    e.local_header_offset = u32(cd, p + 42);
    A2F_CHECK(p + 46 + name_len + extra_len + comment_len <= cd.size(), what, ": damaged central directory");
    e.name = std::string(cd.substr(p + 46, name_len));
    // zip64 extended information: the 64-bit values of the fields that are 0xFFFFFFFF, in this order.
    std::string_view extra = cd.substr(p + 46 + name_len, extra_len);
    for (size_t x = 0; x + 4 <= extra.size();) {
      uint16_t id = u16(extra, x), len = u16(extra, x + 2);
      if (x + 4 + len > extra.size()) break;
      if (id == 0x0001) {
        size_t q = x + 4;
        auto take = [&](uint64_t& field) {
          if (field == 0xFFFFFFFFu && q + 8 <= x + 4 + len) {
            field = u64(extra, q);
            q += 8;
          }
        };
        take(e.size);
        take(e.compressed_size);
        take(e.local_header_offset);
      }
      x += 4 + len;
    }
    out.push_back(std::move(e));
    p += 46 + name_len + extra_len + comment_len;
  }
  return out;
}

const ZipEntry& zip_find_member(const std::vector<ZipEntry>& entries, const std::string& basename,
                                const std::string& what) {
  const ZipEntry* found = nullptr;
  std::string names;
  for (const auto& e : entries) {
    if (!names.empty()) names += ", ";
    names += e.name;
    size_t slash = e.name.rfind('/');
    std::string base = slash == std::string::npos ? e.name : e.name.substr(slash + 1);
    if (base != basename) continue;
    A2F_CHECK(!found, what, " holds ", basename, " twice (", found ? found->name : "", " and ", e.name, ")");
    found = &e;
  }
  A2F_CHECK(found, what, " has no ", basename, "; it holds: ", names);
  A2F_CHECK(!(found->flags & 1), what, ": ", found->name, " is encrypted");
  A2F_CHECK(found->method == 0 || found->method == 8, what, ": ", found->name, " uses compression method ",
            found->method, " (only stored and deflate are supported)");
  return *found;
}

uint64_t zip_local_header_size(std::string_view first30, const std::string& what) {
  A2F_CHECK(first30.size() >= 30 && u32(first30, 0) == kLocalSig, what, ": bad local file header");
  return 30 + uint64_t(u16(first30, 26)) + uint64_t(u16(first30, 28));
}

std::string zip_inflate_to_file(const fs::path& compressed, const ZipEntry& e, const fs::path& out) {
  FILE* in = std::fopen(compressed.c_str(), "rb");
  if (!in) fail("cannot read ", compressed.string(), ": ", std::strerror(errno));
  FILE* o = std::fopen(out.c_str(), "wb");
  if (!o) {
    int err = errno;
    std::fclose(in);
    fail("cannot create ", out.string(), ": ", std::strerror(err));
  }
  Digest sha(Digest::Kind::Sha256);
  uLong crc = crc32(0L, Z_NULL, 0);
  uint64_t written = 0;
  std::string error;
  std::string ibuf(1 << 18, '\0'), obuf(1 << 18, '\0');
  auto emit = [&](const char* p, size_t n) {
    if (n && std::fwrite(p, 1, n, o) != n)
      error = cat("cannot write ", out.string(), ": ", std::strerror(errno));
    sha.update(p, n);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(p), uInt(n));
    written += n;
  };
  if (e.method == 0) {
    size_t n;
    while (error.empty() && (n = std::fread(ibuf.data(), 1, ibuf.size(), in)) > 0) emit(ibuf.data(), n);
  } else {
    z_stream zs{};
    A2F_CHECK(inflateInit2(&zs, -MAX_WBITS) == Z_OK, "zlib inflateInit2 failed");
    int zr = Z_OK;
    while (error.empty() && zr != Z_STREAM_END) {
      size_t n = std::fread(ibuf.data(), 1, ibuf.size(), in);
      if (n == 0) {
        error = cat(e.name, ": compressed data ends early");
        break;
      }
      zs.next_in = reinterpret_cast<Bytef*>(ibuf.data());
      zs.avail_in = uInt(n);
      while (zs.avail_in > 0 && zr != Z_STREAM_END && error.empty()) {
        zs.next_out = reinterpret_cast<Bytef*>(obuf.data());
        zs.avail_out = uInt(obuf.size());
        zr = inflate(&zs, Z_NO_FLUSH);
        if (zr != Z_OK && zr != Z_STREAM_END) {
          error = cat(e.name, ": damaged deflate data (zlib: ", zs.msg ? zs.msg : "error", ")");
          break;
        }
        emit(obuf.data(), obuf.size() - zs.avail_out);
      }
    }
    inflateEnd(&zs);
  }
  std::fclose(in);
  if (std::fflush(o) != 0 && error.empty())
    error = cat("cannot write ", out.string(), ": ", std::strerror(errno));
  ::fsync(fileno(o));
  std::fclose(o);
  if (error.empty() && written != e.size)
    error = cat(e.name, ": decompressed to ", written, " bytes, the archive says ", e.size);
  if (error.empty() && uint32_t(crc) != e.crc32) error = cat(e.name, ": CRC-32 mismatch (damaged data)");
  if (!error.empty()) {
    std::error_code ec;
    fs::remove(out, ec);
    fail(error);
  }
  return sha.hex();
}

std::string zip_extract_member(const fs::path& zip, const std::string& basename, const fs::path& out) {
  std::string what = zip.string();
  int fd = ::open(zip.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open ", what, ": ", std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  off_t end = ::lseek(fd, 0, SEEK_END);
  A2F_CHECK(end >= 0, "cannot read ", what);
  uint64_t total = uint64_t(end);
  uint64_t tail_off = total > kZipTailBytes ? total - kZipTailBytes : 0;
  std::string tail = read_range(fd, tail_off, total - tail_off, zip);
  ZipDirectoryLocation loc = zip_locate_directory(tail, tail_off, total, what);
  std::string cd = read_range(fd, loc.offset, loc.size, zip);
  auto entries = zip_parse_directory(cd, loc, what);
  const ZipEntry& e = zip_find_member(entries, basename, what);
  uint64_t data =
      e.local_header_offset + zip_local_header_size(read_range(fd, e.local_header_offset, 30, zip), what);
  A2F_CHECK(data + e.compressed_size <= total, what, ": ", e.name, " extends past the end of the archive");
  // Copy the compressed bytes to a side file, then inflate it (one code path for local and remote archives).
  fs::path packed = out;
  packed += ".packed";
  {
    FILE* p = std::fopen(packed.c_str(), "wb");
    if (!p) fail("cannot create ", packed.string(), ": ", std::strerror(errno));
    for (uint64_t off = 0; off < e.compressed_size;) {
      uint64_t n = std::min<uint64_t>(1 << 20, e.compressed_size - off);
      std::string chunk = read_range(fd, data + off, n, zip);
      if (std::fwrite(chunk.data(), 1, chunk.size(), p) != chunk.size()) {
        std::fclose(p);
        fail("cannot write ", packed.string(), ": ", std::strerror(errno));
      }
      off += n;
    }
    std::fclose(p);
  }
  std::string sha;
  try {
    sha = zip_inflate_to_file(packed, e, out);
  } catch (...) {
    std::error_code ec;
    fs::remove(packed, ec);
    throw;
  }
  std::error_code ec;
  fs::remove(packed, ec);
  return sha;
}

}  // namespace a2f::hub
