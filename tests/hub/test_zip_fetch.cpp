// One member out of a zip on a web server (the antelopev2.zip case): by ranges, or the whole archive when the
// server ignores ranges; nested folders; damaged data; a dropped connection.
#include <gtest/gtest.h>

#include <cstdio>

#include "core/error.h"
#include "hub/hub_test_util.h"
#include "hub/zip_fetch.h"
#include "hub/zip_reader.h"

namespace a2f::test {
namespace {

namespace fs = std::filesystem;

std::string bytes(size_t n, int seed) {
  std::string s(n, '\0');
  uint32_t x = uint32_t(seed) * 977u + 13u;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = char((x >> 16) & 0x3F);  // compressible but not trivial
  }
  return s;
}

struct ZipFixture : ::testing::Test {
  FakeHub fake;
  TempDir tmp;
  hub::HubConfig cfg = test_config(fake, tmp.path());
  std::string detector = bytes(400000, 1);
  std::string other = bytes(150000, 2);
  std::string big = bytes(1500000, 3);  // glintr100.onnx is the big member of the real archive
  std::string zip;
  void SetUp() override {
    // Laid out like insightface's antelopev2.zip: members in a nested antelopev2/antelopev2/ folder.
    zip = make_zip({{"antelopev2/antelopev2/1k3d68.onnx", other},
                    {"antelopev2/antelopev2/scrfd_10g_bnkps.onnx", detector},
                    {"antelopev2/antelopev2/glintr100.onnx", big}});
  }
  hub::ZipMemberSource source() const {
    return {fake.endpoint() + "/dl/files/antelopev2.zip", "scrfd_10g_bnkps.onnx", FakeHub::sha256(detector)};
  }
  // Offset of the detector's compressed data: the first member (local header + data) + its own local header.
  int64_t detector_data_offset() const {
    std::string first = make_zip({{"antelopev2/antelopev2/1k3d68.onnx", other}});
    size_t cd_and_end = (46 + 33) + (22 + 12);
    return int64_t(first.size() - cd_and_end + 30 + 42 + 4);
  }
  void expect_no_leftovers(const fs::path& dir) {
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      std::string n = e.path().filename().string();
      EXPECT_EQ(n.find("incomplete"), std::string::npos) << e.path();
      EXPECT_EQ(n.find("archive.zip"), std::string::npos) << e.path();
    }
  }
};

TEST_F(ZipFixture, FetchesOnlyTheMemberByRanges) {
  fake.add_static("/files/antelopev2.zip", zip, true);
  hub::HttpClient http;
  fs::path out = tmp / "out" / "scrfd_10g_bnkps.onnx";
  auto r = hub::fetch_zip_member(http, cfg, source(), out, tmp / "work");
  EXPECT_EQ(read_file(out), detector);
  EXPECT_LT(r.bytes_received, zip.size() / 2);  // the member's compressed bytes only
  for (const auto& q : fake.requests())
    if (q.method == "GET" && q.path == "/files/antelopev2.zip") {
      EXPECT_FALSE(q.range.empty()) << "a full-archive GET";
    }
  expect_no_leftovers(tmp / "work");
}

TEST_F(ZipFixture, FallsBackToTheWholeArchiveWithoutRangeSupport) {
  fake.add_static("/files/antelopev2.zip", zip, false);
  hub::HttpClient http;
  fs::path out = tmp / "out" / "scrfd_10g_bnkps.onnx";
  auto r = hub::fetch_zip_member(http, cfg, source(), out, tmp / "work");
  EXPECT_EQ(read_file(out), detector);
  EXPECT_EQ(r.bytes_received, zip.size());
  expect_no_leftovers(tmp / "work");
}

TEST_F(ZipFixture, StoredMembersToo) {
  fake.add_static("/files/antelopev2.zip", make_zip({{"antelopev2/scrfd_10g_bnkps.onnx", detector}}, false),
                  true);
  hub::HttpClient http;
  fs::path out = tmp / "scrfd_10g_bnkps.onnx";
  hub::fetch_zip_member(http, cfg, source(), out, tmp / "work");
  EXPECT_EQ(read_file(out), detector);
}

TEST_F(ZipFixture, ResumesTheMemberAfterADroppedConnection) {
  fake.add_static("/files/antelopev2.zip", zip, true);
  Fault f;
  f.drop_at = detector_data_offset() + 5000;  // inside the detector's compressed data
  f.drop_times = 1;
  fake.set_fault("/files/antelopev2.zip", f);
  hub::HttpClient http;
  fs::path out = tmp / "scrfd_10g_bnkps.onnx";
  hub::fetch_zip_member(http, cfg, source(), out, tmp / "work");
  EXPECT_EQ(read_file(out), detector);
  int member_gets = 0;
  for (const auto& q : fake.requests()) {
    unsigned long long a = 0, b = 0;
    if (q.method == "GET" && q.path == "/files/antelopev2.zip" &&
        std::sscanf(q.range.c_str(), "bytes=%llu-%llu", &a, &b) == 2 && b - a + 1 > 1000)
      ++member_gets;
  }
  EXPECT_EQ(member_gets, 2) << "the member's range is requested again from where it stopped";
}

TEST_F(ZipFixture, DamagedDataFailsAndLeavesNothing) {
  fake.add_static("/files/antelopev2.zip", zip, true);
  Fault f;
  f.corrupt = true;
  f.corrupt_at = detector_data_offset() + 20000;
  fake.set_fault("/files/antelopev2.zip", f);
  hub::HttpClient http;
  fs::path out = tmp / "out" / "scrfd_10g_bnkps.onnx";
  EXPECT_THROW(hub::fetch_zip_member(http, cfg, source(), out, tmp / "work"), Error);
  EXPECT_FALSE(fs::exists(out));
  expect_no_leftovers(tmp / "work");
}

TEST_F(ZipFixture, WrongChecksumIsRefused) {
  fake.add_static("/files/antelopev2.zip", zip, true);
  hub::HttpClient http;
  auto src = source();
  src.known_sha256 = std::string(64, '0');
  fs::path out = tmp / "out" / "scrfd_10g_bnkps.onnx";
  try {
    hub::fetch_zip_member(http, cfg, src, out, tmp / "work");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("checksum mismatch"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(ZipFixture, AMissingMemberListsTheArchive) {
  fake.add_static("/files/antelopev2.zip", zip, true);
  hub::HttpClient http;
  auto src = source();
  src.member = "nope.onnx";
  try {
    hub::fetch_zip_member(http, cfg, src, tmp / "nope.onnx", tmp / "work");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("antelopev2/antelopev2/glintr100.onnx"), std::string::npos)
        << e.what();
  }
}

TEST_F(ZipFixture, LocalArchiveExtraction) {
  write_file(tmp / "a.zip", zip);
  std::string sha = hub::zip_extract_member(tmp / "a.zip", "glintr100.onnx", tmp / "g.onnx");
  EXPECT_EQ(read_file(tmp / "g.onnx"), big);
  EXPECT_EQ(sha, FakeHub::sha256(big));
  write_file(tmp / "bad.zip", "not a zip at all, just text that is long enough to hold a record");
  EXPECT_THROW(hub::zip_extract_member(tmp / "bad.zip", "x", tmp / "x"), Error);
}

}  // namespace
}  // namespace a2f::test
