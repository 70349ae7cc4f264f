#include "io/zip_reader.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace a2f {

namespace {

constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEocdSig = 0x06054b50;
constexpr uint32_t kEocd64Sig = 0x06064b50;
constexpr uint32_t kLocator64Sig = 0x07064b50;
constexpr size_t kEocdSize = 22, kLocatorSize = 20, kEocd64Size = 56, kCentralSize = 46, kLocalSize = 30;

uint16_t rd16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | p[1] << 8);
}
uint32_t rd32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
uint64_t rd64(const uint8_t* p) {
  return uint64_t(rd32(p)) | uint64_t(rd32(p + 4)) << 32;
}

// Reads the ZIP64 extended-information extra field (id 1) of a central directory entry: it holds, in this
// order, only those of (size, compressed size, local header offset, disk) whose 32/16-bit fields are
// saturated.
void read_zip64_extra(const uint8_t* extra, size_t len, uint64_t& usize, uint64_t& csize, uint64_t& local_off,
                      uint32_t& disk, const std::string& where) {
  const bool need_u = usize == 0xffffffffu, need_c = csize == 0xffffffffu, need_o = local_off == 0xffffffffu,
             need_d = disk == 0xffffu;
  size_t pos = 0;
  bool found = false;
  while (pos + 4 <= len) {
    const uint16_t id = rd16(extra + pos), n = rd16(extra + pos + 2);
    A2F_CHECK(pos + 4 + n <= len, where, ": extra field runs past its end");
    if (id == 1) {
      A2F_CHECK(!found, where, ": two ZIP64 extra fields");
      found = true;
      const uint8_t* f = extra + pos + 4;
      size_t k = 0;
      auto take64 = [&](uint64_t& v) {
        A2F_CHECK(k + 8 <= n, where, ": ZIP64 extra field too short");
        v = rd64(f + k);
        k += 8;
      };
      if (need_u) take64(usize);
      if (need_c) take64(csize);
      if (need_o) take64(local_off);
      if (need_d) {
        A2F_CHECK(k + 4 <= n, where, ": ZIP64 extra field too short");
        disk = rd32(f + k);
        k += 4;
      }
    }
    pos += 4 + size_t(n);
  }
  A2F_CHECK(found || !(need_u || need_c || need_o || need_d), where,
            ": sizes/offset are saturated (0xFFFFFFFF) but there is no ZIP64 extra field");
}

}  // namespace

bool zip_has_magic(const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  return size >= 4 && (rd32(p) == kLocalSig || rd32(p) == kEocdSig);
}

const ZipEntry* ZipArchive::find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &entries_[it->second];
}

ZipArchive ZipArchive::parse(const void* data, size_t size, const std::string& what) {
  const auto* p = static_cast<const uint8_t*>(data);
  A2F_CHECK(size >= kEocdSize, what, ": not a zip archive (", size, " bytes)");

  // End of central directory: the last 22 bytes, unless there is an archive comment (at most 65535 bytes).
  size_t eocd = SIZE_MAX;
  const size_t lowest = size >= kEocdSize + 0xffff ? size - kEocdSize - 0xffff : 0;
  for (size_t i = size - kEocdSize + 1; i-- > lowest;) {
    if (rd32(p + i) == kEocdSig && i + kEocdSize + rd16(p + i + 20) == size) {
      eocd = i;
      break;
    }
  }
  A2F_CHECK(eocd != SIZE_MAX, what, ": not a zip archive or truncated (no end-of-central-directory record)");
  const uint8_t* e = p + eocd;
  uint32_t disk = rd16(e + 4), cd_disk = rd16(e + 6);
  uint64_t n_disk = rd16(e + 8), n_total = rd16(e + 10), cd_size = rd32(e + 12), cd_off = rd32(e + 16);
  size_t cd_limit = eocd;  // the central directory must end before this

  const bool zip64 = n_disk == 0xffff || n_total == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu;
  if (eocd >= kLocatorSize && rd32(p + eocd - kLocatorSize) == kLocator64Sig) {
    const uint8_t* loc = p + eocd - kLocatorSize;
    A2F_CHECK(rd32(loc + 4) == 0 && rd32(loc + 16) <= 1, what, ": multi-disk zip archives are not supported");
    const uint64_t off64 = rd64(loc + 8);
    A2F_CHECK(off64 <= eocd - kLocatorSize && eocd - kLocatorSize - off64 >= kEocd64Size, what,
              ": ZIP64 end-of-central-directory offset ", off64, " is outside the file");
    const uint8_t* r = p + off64;
    A2F_CHECK(rd32(r) == kEocd64Sig, what, ": bad ZIP64 end-of-central-directory signature");
    A2F_CHECK(rd64(r + 4) >= kEocd64Size - 12 && rd64(r + 4) <= eocd - kLocatorSize - off64 - 12, what,
              ": bad ZIP64 end-of-central-directory record size");
    disk = rd32(r + 16);
    cd_disk = rd32(r + 20);
    n_disk = rd64(r + 24);
    n_total = rd64(r + 32);
    cd_size = rd64(r + 40);
    cd_off = rd64(r + 48);
    cd_limit = static_cast<size_t>(off64);
  } else {
    A2F_CHECK(!zip64, what, ": ZIP64 archive without a ZIP64 end-of-central-directory locator");
  }
  A2F_CHECK(disk == 0 && cd_disk == 0 && n_disk == n_total, what,
            ": multi-disk zip archives are not supported");
  A2F_CHECK(cd_off <= cd_limit && cd_size <= cd_limit - cd_off, what, ": central directory (offset ", cd_off,
            ", ", cd_size, " bytes) lies outside the file");
  A2F_CHECK(n_total <= cd_size / kCentralSize, what, ": central directory of ", cd_size,
            " bytes cannot hold ", n_total, " entries");

  ZipArchive z;
  z.base_ = p;
  z.entries_.reserve(static_cast<size_t>(n_total));
  size_t pos = static_cast<size_t>(cd_off);
  const size_t cd_end = static_cast<size_t>(cd_off + cd_size);
  for (uint64_t i = 0; i < n_total; ++i) {
    const std::string where0 = cat(what, ": zip entry #", i);
    A2F_CHECK(cd_end - pos >= kCentralSize && rd32(p + pos) == kCentralSig, where0,
              ": bad central directory record (truncated or corrupt archive)");
    const uint8_t* c = p + pos;
    const uint16_t flags = rd16(c + 8), method = rd16(c + 10);
    const uint16_t name_len = rd16(c + 28), extra_len = rd16(c + 30), comment_len = rd16(c + 32);
    uint32_t entry_disk = rd16(c + 34);
    uint64_t csize = rd32(c + 20), usize = rd32(c + 24), local_off = rd32(c + 42);
    const size_t rec = kCentralSize + name_len + extra_len + comment_len;
    A2F_CHECK(cd_end - pos >= rec, where0, ": central directory record runs past the directory");
    ZipEntry ent;
    ent.name.assign(reinterpret_cast<const char*>(c + kCentralSize), name_len);
    ent.crc32 = rd32(c + 16);
    const std::string where = cat(what, ": zip entry '", ent.name, "'");
    read_zip64_extra(c + kCentralSize + name_len, extra_len, usize, csize, local_off, entry_disk, where);
    A2F_CHECK(!(flags & 0x1) && !(flags & 0x40), where, ": encrypted entries are not supported");
    A2F_CHECK(method == 0, where, ": compressed entries (method ", method,
              ") are not supported; PyTorch writes uncompressed (stored) archives — re-save with torch.save");
    A2F_CHECK(csize == usize, where, ": stored entry with compressed size ", csize, " != size ", usize);
    A2F_CHECK(entry_disk == 0, where, ": multi-disk zip archives are not supported");
    A2F_CHECK(!ent.name.empty() && ent.name.find('\0') == std::string::npos, where, ": bad entry name");

    // Local header: same name; its sizes agree unless deferred to a data descriptor (flag bit 3).
    A2F_CHECK(local_off <= cd_off && cd_off - local_off >= kLocalSize, where, ": local header offset ",
              local_off, " lies outside the file data");
    const uint8_t* l = p + local_off;
    A2F_CHECK(rd32(l) == kLocalSig, where, ": bad local header signature at offset ", local_off);
    const uint16_t lname = rd16(l + 26), lextra = rd16(l + 28);
    A2F_CHECK(rd16(l + 8) == method, where, ": local header method differs from the central directory");
    const uint64_t data_off = local_off + kLocalSize + lname + lextra;
    A2F_CHECK(data_off <= cd_off, where, ": local header runs past the file data");
    A2F_CHECK(lname == name_len && std::memcmp(l + kLocalSize, c + kCentralSize, name_len) == 0, where,
              ": local header name differs from the central directory");
    if (!(rd16(l + 6) & 0x8)) {
      const uint32_t lc = rd32(l + 18), lu = rd32(l + 22);
      A2F_CHECK((lc == csize || lc == 0xffffffffu) && (lu == usize || lu == 0xffffffffu), where,
                ": local header sizes differ from the central directory");
    }
    A2F_CHECK(usize <= cd_off - data_off, where, ": entry data (", usize, " bytes at offset ", data_off,
              ") runs past the end of the file data");
    ent.data_offset = data_off;
    ent.size = usize;
    A2F_CHECK(z.index_.emplace(ent.name, z.entries_.size()).second, what, ": duplicate zip entry '", ent.name,
              "'");
    z.entries_.push_back(std::move(ent));
    pos += rec;
  }

  // Entries must not share bytes.
  std::vector<const ZipEntry*> sorted;
  sorted.reserve(z.entries_.size());
  for (const auto& ent : z.entries_) sorted.push_back(&ent);
  std::sort(sorted.begin(), sorted.end(),
            [](const ZipEntry* a, const ZipEntry* b) { return a->data_offset < b->data_offset; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    A2F_CHECK(sorted[i]->data_offset >= sorted[i - 1]->data_offset + sorted[i - 1]->size, what,
              ": zip entries '", sorted[i - 1]->name, "' and '", sorted[i]->name, "' overlap");
  }
  return z;
}

}  // namespace a2f
