// Malicious and malformed files (tests/fixtures/io/bad, written by scripts/gen_io_refs.py): each must be
// refused with an a2f::Error whose message names the file and the problem — never a crash, never code
// execution.
#include <gtest/gtest.h>

#include "io/mapped_file.h"
#include "io/npy.h"
#include "io/pickle.h"
#include "io/safetensors.h"
#include "io/torch_checkpoint.h"
#include "io/weights.h"
#include "io/zip_reader.h"
#include "io_refs.h"

namespace a2f {
namespace {

using test::fixture;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(BadFiles, EachIsRefusedWithAClearMessage) {
  const auto& bad = test::io_refs().at("bad");
  ASSERT_GE(bad.size(), 25u);
  for (const auto& [fname, expect] : bad.items()) {
    SCOPED_TRACE(fname);
    const auto path = fixture("io/bad/" + fname);
    std::string msg = error_of([&] {
      if (fname.ends_with(".npy")) {
        npy_read(path);
      } else {
        load_state_dict(path);
      }
    });
    EXPECT_NE(msg.find(expect.get<std::string>()), std::string::npos) << msg;
    EXPECT_NE(msg.find(fname), std::string::npos) << msg;  // names the file
  }
}

TEST(BadFiles, PickleThatCallsOsSystemIsRefusedNamingTheGlobal) {
  std::string msg = error_of([] { load_state_dict(fixture("io/bad/pickle_os_system.bin")); });
  EXPECT_NE(msg.find("refusing to load"), std::string::npos) << msg;
  EXPECT_NE(msg.find("non-allow-listed global 'posix.system'"), std::string::npos) << msg;
  // The raw pickle, straight into the unpickler.
  std::string raw = read_file_bytes(fixture("io/bad/pickle_os_system.pkl"));
  msg = error_of([&] { pickle_parse(raw.data(), raw.size(), "'raw.pkl'"); });
  EXPECT_NE(msg.find("'posix.system'"), std::string::npos) << msg;
}

TEST(BadFiles, EvalViaStackGlobalIsRefused) {
  std::string msg = error_of([] { load_state_dict(fixture("io/bad/pickle_eval.bin")); });
  EXPECT_NE(msg.find("'builtins.eval'"), std::string::npos) << msg;
}

TEST(BadFiles, EveryTruncationOfACheckpointFailsCleanly) {
  // Every prefix of a small real checkpoint: an error or (never, here) success — but no crash.
  std::string full = read_file_bytes(fixture("io/torch_wrapped.ckpt"));
  int errors = 0;
  for (size_t n = 0; n < full.size(); n += 7) {
    auto buf = storage_alloc_host(n);
    if (n) std::memcpy(buf->data(), full.data(), n);
    try {
      torch_checkpoint_parse(buf, "'prefix'");
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_EQ(errors, static_cast<int>((full.size() + 6) / 7));
}

TEST(BadFiles, EveryTruncationOfASafetensorsFileFailsCleanly) {
  std::string full = read_file_bytes(fixture("io/all_dtypes.safetensors"));
  int errors = 0;
  for (size_t n = 0; n < full.size(); ++n) {
    auto buf = storage_alloc_host(n);
    if (n) std::memcpy(buf->data(), full.data(), n);
    try {
      safetensors_parse(buf, "'prefix'");
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_EQ(errors, static_cast<int>(full.size()));
}

TEST(BadFiles, HandWrittenPickles) {
  using namespace std::string_view_literals;
  auto run = [](std::string_view p) {
    return error_of([&] { pickle_parse(p.data(), p.size(), "'t.pkl'"); });
  };
  EXPECT_NE(run("\x80\x02"sv).find("truncated"), std::string::npos);
  EXPECT_NE(run("\x80\x02"
                "0."sv)
                .find("no MARK"),
            std::string::npos);
  EXPECT_NE(run("\x80\x02"
                "a."sv)
                .find("stack underflow"),
            std::string::npos);
  EXPECT_NE(run("\x80\x02h\x05."sv).find("memo key 5 not found"), std::string::npos);
  EXPECT_NE(run("\x80\x02X\xff\xff\xff\x7f"sv).find("runs past the end"), std::string::npos);
  EXPECT_NE(run("\x80\x02\xff"sv).find("unknown opcode 0xff"), std::string::npos);
  EXPECT_NE(run("cos\nsystem\n"sv).find("'os.system'"), std::string::npos);
  EXPECT_NE(run("c__builtin__\nexec\n"sv).find("'__builtin__.exec'"), std::string::npos);
  EXPECT_NE(run("\x80\x02]q\x00h\x00"
                "a."sv)
                .find("(no error)"),
            std::string::npos);  // l.append(l): a cycle, fine
  std::string m = run("ccollections\nOrderedDict\n(X\x01\x00\x00\x00xtR."sv);
  EXPECT_NE(m.find("called with arguments"), std::string::npos) << m;
  EXPECT_NE(run("ctorch\nFloatStorage\n)R."sv).find("not an allowed state-dict function"), std::string::npos);
  EXPECT_NE(run("\x80\x02"
                "ctorch\nTensor\n)\x81."sv)
                .find("instantiates 'torch.Tensor'"),
            std::string::npos);
  EXPECT_NE(run("\x80\x02\x8a\x09\x01\x02\x03\x04\x05\x06\x07\x08\x09."sv).find("wider than 64 bits"),
            std::string::npos);
  // _rebuild_from_type_v2(func=_rebuild_from_type_v2, args=(... nested ...)): bounded recursion.
  std::string nested(std::string_view("ctorch._tensor\n_rebuild_from_type_v2\nq\x00)"sv));
  for (int i = 0; i < 8; ++i)
    nested +=
        "q\x01"
        "0(h\x00Nh\x01Nt"sv;
  nested += "R.";
  m = run(nested);
  EXPECT_NE(m.find("nested _rebuild_from_type_v2 calls"), std::string::npos) << m;
  // A pickle that is fine but holds no tensors gives an empty state dict (LONG1 -1, then stop).
  auto ok = [](std::string_view p) { return pickle_parse(p.data(), p.size(), "'t'"); };
  PickleData d = ok("\x80\x02\x8a\x01\xff."sv);
  EXPECT_EQ(d.at(d.root).kind, PickleKind::Int);
  EXPECT_EQ(d.at(d.root).i, -1);
}

TEST(BadFiles, ReferenceCycleInCheckpointIsAnError) {
  // A zip checkpoint whose data.pkl is a dict containing itself: the flattening must stop, not recurse
  // forever. Built by replacing data.pkl of a real archive is not possible without rewriting offsets, so
  // drive the unpickler and zip reader on an archive made here.
  const std::string pkl = std::string(
      "\x80\x02}q\x00X\x01\x00\x00\x00"
      "ah\x00s.",
      15);
  // Minimal stored zip with "a/data.pkl".
  auto le16 = [](std::string& s, uint16_t v) { s.push_back(char(v & 0xff)), s.push_back(char(v >> 8)); };
  auto le32 = [&](std::string& s, uint32_t v) { le16(s, uint16_t(v & 0xffff)), le16(s, uint16_t(v >> 16)); };
  const std::string name = "a/data.pkl";
  std::string z;
  le32(z, 0x04034b50), le16(z, 20), le16(z, 0), le16(z, 0), le32(z, 0), le32(z, 0);
  le32(z, uint32_t(pkl.size())), le32(z, uint32_t(pkl.size())), le16(z, uint16_t(name.size())), le16(z, 0);
  z += name + pkl;
  const uint32_t cd = uint32_t(z.size());
  le32(z, 0x02014b50), le16(z, 20), le16(z, 20), le16(z, 0), le16(z, 0), le32(z, 0), le32(z, 0);
  le32(z, uint32_t(pkl.size())), le32(z, uint32_t(pkl.size())), le16(z, uint16_t(name.size()));
  le16(z, 0), le16(z, 0), le16(z, 0), le16(z, 0), le32(z, 0), le32(z, 0);
  z += name;
  const uint32_t cd_size = uint32_t(z.size()) - cd;
  le32(z, 0x06054b50), le16(z, 0), le16(z, 0), le16(z, 1), le16(z, 1), le32(z, cd_size), le32(z, cd),
      le16(z, 0);
  auto buf = storage_alloc_host(z.size());
  std::memcpy(buf->data(), z.data(), z.size());
  ZipArchive zip = ZipArchive::parse(buf->data(), z.size(), "'cycle.pt'");
  ASSERT_NE(zip.find("a/data.pkl"), nullptr);
  std::string msg = error_of([&] { torch_checkpoint_parse(buf, "'cycle.pt'"); });
  EXPECT_NE(msg.find("reference cycle"), std::string::npos) << msg;
}

TEST(BadFiles, MissingAndNonRegularFiles) {
  std::string msg = error_of([] { load_state_dict(fixture("io/does_not_exist.safetensors")); });
  EXPECT_NE(msg.find("cannot open"), std::string::npos) << msg;
  EXPECT_NE(msg.find("does_not_exist.safetensors"), std::string::npos) << msg;
  msg = error_of([] { load_state_dict(fixture("io")); });
  EXPECT_NE(msg.find("not a regular file"), std::string::npos) << msg;
  msg = error_of([] { load_state_dict(fixture("models/encoder/config.json")); });
  EXPECT_NE(msg.find("unknown weight file format"), std::string::npos) << msg;
}

}  // namespace
}  // namespace a2f
