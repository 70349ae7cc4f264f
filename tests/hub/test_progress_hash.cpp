// The progress display (throttling on a terminal and in logs) and the digests used for verification.
#include <gtest/gtest.h>

#include <cstdio>

#include "hub/hash.h"
#include "hub/hub_test_util.h"
#include "hub/progress.h"

namespace a2f::test {
namespace {

struct Capture {
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  ~Capture() {
    if (f) std::fclose(f);
    std::free(buf);
  }
  std::string text() {
    std::fflush(f);
    return std::string(buf, len);
  }
};

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST(Progress, PlainLinesEveryTenSecondsAndAtTheEnd) {
  Capture out;
  double now = 0;
  hub::ProgressPrinter p(out.f, false, 80, [&] { return now; });
  for (int i = 0; i <= 100; ++i) {
    now = i * 0.5;  // 50 s in all
    p.update({"vae/diffusion_pytorch_model.safetensors", uint64_t(i) * 1000000, 100000000, 2, 7, false});
  }
  p.update({"vae/diffusion_pytorch_model.safetensors", 100000000, 100000000, 2, 7, true});
  std::string s = out.text();
  EXPECT_EQ(count(s, "\n"), 7u) << s;  // t = 0, 10, 20, 30, 40, 50, then "done"
  EXPECT_NE(s.find("[2/7] vae/diffusion_pytorch_model.safetensors: 20.0 MB of 100 MB (20%), 2.00 MB/s"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("[2/7] vae/diffusion_pytorch_model.safetensors: done, 100 MB\n"), std::string::npos) << s;
  EXPECT_EQ(s.find('\r'), std::string::npos);
}

TEST(Progress, TerminalBarIsRedrawnAtMostTenTimesASecond) {
  Capture out;
  double now = 0;
  hub::ProgressPrinter p(out.f, true, 100, [&] { return now; });
  for (int i = 0; i < 1000; ++i) {
    now = i * 0.001;  // 1 s
    p.update({"arcface.onnx", uint64_t(i) * 1000, 1000000, 1, 1, false});
  }
  p.update({"arcface.onnx", 1000000, 1000000, 1, 1, true});
  std::string s = out.text();
  EXPECT_LE(count(s, "\r"), 12u);
  EXPECT_GE(count(s, "\r"), 10u);
  EXPECT_EQ(count(s, "\n"), 1u);
  EXPECT_NE(s.find("100%  1.00 MB/1.00 MB "), std::string::npos) << s;
  std::string line = hub::ProgressPrinter::format_bar_line({"x.bin", 500, 1000, 1, 2, false}, 100, 5, 100);
  EXPECT_LE(line.size(), 100u) << line;
  EXPECT_NE(line.find("[############             ]"), std::string::npos) << line;  // 25 wide, half full
  EXPECT_NE(line.find(" 50% "), std::string::npos) << line;
  EXPECT_NE(line.find("0:05"), std::string::npos) << line;
  for (int w : {60, 80, 120}) {
    line = hub::ProgressPrinter::format_bar_line(
        {"a/long/name/of/a/file.safetensors", 500, 1000, 10, 12, false}, 1e6, 5, w);
    EXPECT_LE(line.size(), size_t(w)) << line;
  }
}

TEST(Hash, KnownDigests) {
  EXPECT_EQ(hub::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  hub::FileHasher git(hub::ExpectedHash::Kind::GitBlobSha1, 6);
  git.update("hel", 3);
  git.update("lo\n", 3);
  EXPECT_EQ(git.hex(), "ce013625030ba8dba906f756967f9e9ca394464a");  // git hash-object of "hello\n"
  TempDir tmp;
  write_file(tmp / "h", "hello\n");
  EXPECT_EQ(hub::git_blob_sha1_file(tmp / "h"), "ce013625030ba8dba906f756967f9e9ca394464a");
  EXPECT_EQ(hub::sha256_file(tmp / "h"), "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
  auto e = hub::ExpectedHash::from_etag("5891B5B522D5DF086D0FF0B110FBD9D21BB4FC7163AF34D08286A2E846F6BE03");
  EXPECT_EQ(e.kind, hub::ExpectedHash::Kind::Sha256);
  EXPECT_EQ(e.hex, "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
  EXPECT_EQ(hub::ExpectedHash::from_etag("ce013625030ba8dba906f756967f9e9ca394464a").kind,
            hub::ExpectedHash::Kind::GitBlobSha1);
  EXPECT_EQ(hub::ExpectedHash::from_etag("abc-123").kind, hub::ExpectedHash::Kind::None);
}

}  // namespace
}  // namespace a2f::test
