// The zip reader on archives built byte by byte here: ZIP64 extra fields, data descriptors, comments, and the
// inconsistencies it must refuse.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "io/zip_reader.h"

namespace a2f {
namespace {

void put16(std::string& s, uint32_t v) {
  s.push_back(static_cast<char>(v & 0xff));
  s.push_back(static_cast<char>((v >> 8) & 0xff));
}
void put32(std::string& s, uint32_t v) {
  put16(s, v & 0xffff);
  put16(s, v >> 16);
}
void put64(std::string& s, uint64_t v) {
  put32(s, static_cast<uint32_t>(v));
  put32(s, static_cast<uint32_t>(v >> 32));
}

struct Entry {
  std::string name, body;
  uint16_t method = 0, flags = 0;
  bool zip64_extra = false;  // saturate size/offset fields in the central record and add a ZIP64 extra field
  bool local_sizes_zero = false;
  std::string central_name;  // when non-empty: a different name in the central directory
};

Entry entry(const std::string& name, const std::string& body, uint16_t method = 0, uint16_t flags = 0) {
  Entry e;
  e.name = name;
  e.body = body;
  e.method = method;
  e.flags = flags;
  return e;
}

std::string build(const std::vector<Entry>& entries, const std::string& comment = "",
                  bool zip64_eocd = false) {
  std::string z, cd;
  for (const auto& e : entries) {
    const uint32_t off = static_cast<uint32_t>(z.size());
    const uint32_t sz = e.local_sizes_zero ? 0 : static_cast<uint32_t>(e.body.size());
    put32(z, 0x04034b50), put16(z, 45), put16(z, e.flags), put16(z, e.method), put32(z, 0), put32(z, 0);
    put32(z, sz), put32(z, sz), put16(z, static_cast<uint32_t>(e.name.size())), put16(z, 0);
    z += e.name + e.body;
    const std::string& cname = e.central_name.empty() ? e.name : e.central_name;
    std::string extra;
    if (e.zip64_extra) {
      put16(extra, 1), put16(extra, 24), put64(extra, e.body.size()), put64(extra, e.body.size()),
          put64(extra, off);
    }
    const uint32_t csz = e.zip64_extra ? 0xffffffffu : static_cast<uint32_t>(e.body.size());
    put32(cd, 0x02014b50), put16(cd, 45), put16(cd, 45), put16(cd, e.flags), put16(cd, e.method),
        put32(cd, 0);
    put32(cd, 0), put32(cd, csz), put32(cd, csz), put16(cd, static_cast<uint32_t>(cname.size()));
    put16(cd, static_cast<uint32_t>(extra.size())), put16(cd, 0), put16(cd, 0), put16(cd, 0), put32(cd, 0);
    put32(cd, e.zip64_extra ? 0xffffffffu : off);
    cd += cname + extra;
  }
  const uint64_t cd_off = z.size();
  z += cd;
  const auto n = static_cast<uint32_t>(entries.size());
  if (zip64_eocd) {
    const uint64_t rec = z.size();
    put32(z, 0x06064b50), put64(z, 44), put16(z, 45), put16(z, 45), put32(z, 0), put32(z, 0);
    put64(z, n), put64(z, n), put64(z, cd.size()), put64(z, cd_off);
    put32(z, 0x07064b50), put32(z, 0), put64(z, rec), put32(z, 1);
    put32(z, 0x06054b50), put16(z, 0), put16(z, 0), put16(z, 0xffff), put16(z, 0xffff);
    put32(z, 0xffffffffu), put32(z, 0xffffffffu);
  } else {
    put32(z, 0x06054b50), put16(z, 0), put16(z, 0), put16(z, n), put16(z, n);
    put32(z, static_cast<uint32_t>(cd.size())), put32(z, static_cast<uint32_t>(cd_off));
  }
  put16(z, static_cast<uint32_t>(comment.size()));
  return z + comment;
}

std::string body_of(const ZipArchive& z, const std::string& name) {
  const ZipEntry* e = z.find(name);
  if (!e) return "(missing)";
  return std::string(reinterpret_cast<const char*>(z.entry_data(*e)), static_cast<size_t>(e->size));
}

std::string error_of(const std::string& zip) {
  try {
    ZipArchive::parse(zip.data(), zip.size(), "'t.zip'");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Zip, PlainZip64DescriptorAndComment) {
  std::vector<Entry> es = {entry("a/x", "hello"), entry("a/y", "world!")};
  es[1].flags = 0x8;  // sizes in a data descriptor: the local header holds zeros
  es[1].local_sizes_zero = true;
  for (bool z64 : {false, true}) {
    for (const std::string comment : {"", "a comment PK\x05\x06 with a fake signature"}) {
      std::string zip = build(es, comment, z64);
      ZipArchive z = ZipArchive::parse(zip.data(), zip.size(), "'t.zip'");
      ASSERT_EQ(z.entries().size(), 2u);
      EXPECT_EQ(body_of(z, "a/x"), "hello");
      EXPECT_EQ(body_of(z, "a/y"), "world!");
      EXPECT_EQ(z.find("a/z"), nullptr);
    }
  }
  es[0].zip64_extra = true;
  std::string zip = build(es, "", true);
  ZipArchive z = ZipArchive::parse(zip.data(), zip.size(), "'t.zip'");
  EXPECT_EQ(body_of(z, "a/x"), "hello");
}

TEST(Zip, RefusesInconsistentArchives) {
  EXPECT_NE(error_of(build({entry("a/x", "hi", 8)})).find("compressed entries (method 8)"),
            std::string::npos);
  EXPECT_NE(error_of(build({entry("a/x", "hi", 0, 1)})).find("encrypted"), std::string::npos);
  EXPECT_NE(error_of(build({entry("a/x", "1"), entry("a/x", "2")})).find("duplicate"), std::string::npos);
  Entry renamed = entry("a/x", "hi");
  renamed.central_name = "a/q";
  EXPECT_NE(error_of(build({renamed})).find("name differs"), std::string::npos);
  std::string zip = build({entry("a/x", "hi")});
  EXPECT_NE(error_of(zip.substr(0, zip.size() - 1)).find("end-of-central-directory"), std::string::npos);
  EXPECT_NE(error_of("PK\x05\x06").find("not a zip archive"), std::string::npos);
  // A saturated size without its ZIP64 extra field.
  zip = build({entry("a/x", "hi")});
  const size_t cd = zip.find("PK\x01\x02");
  zip[cd + 24] = zip[cd + 25] = zip[cd + 26] = zip[cd + 27] = '\xff';
  EXPECT_NE(error_of(zip).find("no ZIP64 extra field"), std::string::npos) << error_of(zip);
  // Local sizes that disagree with the central directory (no data descriptor flag).
  zip = build({entry("a/x", "hi")});
  zip[18] = 5;
  EXPECT_NE(error_of(zip).find("local header sizes differ"), std::string::npos) << error_of(zip);
  // The entry count claims more records than the directory holds.
  zip = build({entry("a/x", "hi")});
  zip[zip.size() - 12] = 9;  // total entries (low byte)
  zip[zip.size() - 14] = 9;  // entries on this disk
  EXPECT_NE(error_of(zip).find("cannot hold 9 entries"), std::string::npos) << error_of(zip);
}

TEST(Zip, EmptyArchiveHasNoEntries) {
  std::string zip = build({});
  ZipArchive z = ZipArchive::parse(zip.data(), zip.size(), "'t.zip'");
  EXPECT_TRUE(z.entries().empty());
}

}  // namespace
}  // namespace a2f
