// Just enough of the zip format (PKWARE APPNOTE 6.3) to take one member out of an archive: the end of central
// directory record (and its zip64 form), the central directory, the local header size, and stored/deflate
// data (zlib). Works on byte ranges, so the same code reads a local file or an archive on a server that
// answers Range requests (fetching ~17 MB of a 360 MB release instead of all of it).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace a2f::hub {

struct ZipEntry {
  std::string name;
  uint16_t flags = 0;
  uint16_t method = 0;  // 0 stored, 8 deflate
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t size = 0;
  uint64_t local_header_offset = 0;
};

struct ZipDirectoryLocation {
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t entries = 0;
};

// The last bytes read to find the end of central directory record: 22 + the longest comment + zip64 records.
constexpr uint64_t kZipTailBytes = 22 + 65535 + 20 + 56;

// `tail` holds bytes [tail_offset, total) of an archive of `total` bytes. Throws a2f::Error naming `what`.
ZipDirectoryLocation zip_locate_directory(std::string_view tail, uint64_t tail_offset, uint64_t total,
                                          const std::string& what);
std::vector<ZipEntry> zip_parse_directory(std::string_view cd, const ZipDirectoryLocation& loc,
                                          const std::string& what);
// The member whose last path component is `basename` (e.g. antelopev2/antelopev2/scrfd_10g_bnkps.onnx);
// throws when there is none, or more than one, listing what the archive holds.
const ZipEntry& zip_find_member(const std::vector<ZipEntry>& entries, const std::string& basename,
                                const std::string& what);
// 30 + name length + extra length, from the first 30 bytes of a local file header.
uint64_t zip_local_header_size(std::string_view first30, const std::string& what);

// Decompresses a member's data (in `compressed`) into `out`, checking its size and CRC-32; returns the
// sha256 of the output. Writes `out` directly: callers pass a temporary path.
std::string zip_inflate_to_file(const std::filesystem::path& compressed, const ZipEntry& e,
                                const std::filesystem::path& out);

// One member of a local archive -> `out` (a temporary path); returns the sha256 of the output.
std::string zip_extract_member(const std::filesystem::path& zip, const std::string& basename,
                               const std::filesystem::path& out);

}  // namespace a2f::hub
