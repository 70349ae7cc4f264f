// ClipTokenizer vs transformers 4.36 CLIPTokenizer (slow, no ftfy): tests/fixtures/common/tokens_*.npy and
// token_check.json hold the reference ids. The Unicode tests check equalities that follow from the
// reference's own steps (lowercasing, NFC, CJK spacing, control removal, single-digit numbers), not from our
// output.
#include <unistd.h>

#include <fstream>
#include <functional>

#include "common/test_util.h"
#include "io/json.h"
#include "io/npy.h"
#include "pipeline/tokenizer.h"

namespace a2f {
namespace {

const ClipTokenizer& sd15() {
  static const ClipTokenizer tok = ClipTokenizer::load(test::fixture("models/sd15/tokenizer"));
  return tok;
}

std::vector<int32_t> npy_ids(const std::string& rel) {
  Tensor t = npy_read(test::fixture(rel));
  EXPECT_EQ(t.dtype(), DType::I64);
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < t.numel(); ++i) ids.push_back(static_cast<int32_t>(t.data<int64_t>()[i]));
  return ids;
}

std::vector<int32_t> repeat(int32_t v, int n) {
  return std::vector<int32_t>(static_cast<size_t>(n), v);
}

TEST(ClipTokenizer, SpecialTokensAndLengthFromConfig) {
  EXPECT_EQ(sd15().bos_id(), 49406);
  EXPECT_EQ(sd15().eos_id(), 49407);
  EXPECT_EQ(sd15().pad_id(), 49407);  // pad_token "<|endoftext|>" in tokenizer_config.json
  EXPECT_EQ(sd15().max_length(), 77);
}

TEST(ClipTokenizer, Arc2FacePrompt) {
  std::vector<int32_t> expected = {49406, 1125, 539, 320, 1014, 2533};
  std::vector<int32_t> pad = repeat(49407, 71);
  expected.insert(expected.end(), pad.begin(), pad.end());
  EXPECT_EQ(sd15().encode("photo of a id person"), expected);
  EXPECT_EQ(sd15().encode("photo of a id person"), npy_ids("common/tokens_prompt.npy"));
}

TEST(ClipTokenizer, EmptyPrompt) {
  EXPECT_EQ(sd15().encode(""), npy_ids("common/tokens_empty.npy"));
}

TEST(ClipTokenizer, IdTokenIsOneToken) {
  const nlohmann::json refs = json_load(test::fixture("common/refs.json"));
  EXPECT_EQ(sd15().tokenize("id"), (std::vector<int32_t>{refs["params"]["id_token_id"].get<int32_t>()}));
}

TEST(ClipTokenizer, TokenCheckPrompts) {
  const nlohmann::json check = json_load(test::fixture("common/token_check.json"));
  ASSERT_GE(check["prompts"].size(), 4u);
  for (const auto& p : check["prompts"]) {
    const std::string text = p["prompt"].get<std::string>();
    EXPECT_EQ(sd15().encode(text), p["hf_padded_77"].get<std::vector<int32_t>>()) << text;
    std::vector<int32_t> unpadded = {sd15().bos_id()};
    for (int32_t id : sd15().tokenize(text)) unpadded.push_back(id);
    unpadded.push_back(sd15().eos_id());
    EXPECT_EQ(unpadded, p["hf_ids_unpadded"].get<std::vector<int32_t>>()) << text;
  }
}

TEST(ClipTokenizer, TruncatesToMaxLength) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += "id ";
  bool truncated = false;
  std::vector<int32_t> expected = {49406};
  std::vector<int32_t> ids = repeat(1014, 75);
  expected.insert(expected.end(), ids.begin(), ids.end());
  expected.push_back(49407);
  EXPECT_EQ(sd15().encode(text, &truncated), expected);
  EXPECT_TRUE(truncated);
  sd15().encode("photo of a id person", &truncated);
  EXPECT_FALSE(truncated);
}

TEST(ClipTokenizer, UnicodeNormalisationFollowsTheReference) {
  auto same = [](const char* a, const char* b) {
    EXPECT_EQ(sd15().tokenize(a), sd15().tokenize(b)) << a << " | " << b;
  };
  same("HELLO World", "hello world");                                            // lower()
  same("\xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3", "\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x82");  // ΟΔΟΣ -> οδος (final sigma)
  same("\xD0\x9F\xD0\xA0\xD0\x98\xD0\x92\xD0\x95\xD0\xA2",
       "\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82");       // ПРИВЕТ
  same("Cafe\xCC\x81", "caf\xC3\xA9");                            // NFC
  same("\xE5\x8C\x97\xE4\xBA\xAC", "\xE5\x8C\x97 \xE4\xBA\xAC");  // CJK ideographs get spaces
  same(
      "a\tb\xE3\x80\x80"
      "c\xC2\xA0"
      "d\ne",
      "a b c d e");  // whitespace, U+3000, U+00A0
  same(
      "a\x01"
      "b\xE2\x80\x8B"
      "c\xC2\xAD"
      "f",
      "abcf");                                    // Cc / Cf removed
  same("\xEF\xBF\xBDid", "id");                   // U+FFFD removed
  same("\xFF\xFEid", "id");                       // invalid UTF-8 reads as U+FFFD
  same("\xD9\xA1\xD9\xA2", "\xD9\xA1 \xD9\xA2");  // [\p{N}] takes one digit at a time
  same(
      "a\xCD\x85"
      "b",
      "a b");                        // U+0345 matches no alternative
  same("x\xF0\x9F\xAA\x88y", "xy");  // U+1FA88 (Unicode 15) is unassigned in the reference's Python
  EXPECT_NE(sd15().tokenize("\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x82"),
            sd15().tokenize("\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x83"));
  EXPECT_EQ(sd15().tokenize("caf\xC3\xA9"), (std::vector<int32_t>{15304}));  // as in token_check.json
}

TEST(ClipTokenizer, SpecialTokensInsideText) {
  EXPECT_EQ(sd15().tokenize("id<|endoftext|>id"), (std::vector<int32_t>{1014, 49407, 1014}));
  EXPECT_EQ(sd15().tokenize("<|startoftext|>"), (std::vector<int32_t>{49406}));
}

class TempDir {
 public:
  TempDir() : path_(std::filesystem::temp_directory_path() / ("a2f_tok_" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::filesystem::path write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name, std::ios::binary) << text;
    return path_ / name;
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

void expect_error_mentions(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(ClipTokenizer, BadFilesGiveClearErrors) {
  TempDir dir;
  expect_error_mentions([&] { ClipTokenizer::load(dir.path() / "missing"); }, "vocab.json");
  const auto merges = dir.write("merges.txt", "#version: 0.2\ni n\n");
  const auto bad_json = dir.write("vocab.json", "{\"a\": 1,");
  expect_error_mentions([&] { ClipTokenizer(bad_json, merges); }, "vocab.json");
  const auto not_object = dir.write("list.json", "[1, 2]");
  expect_error_mentions([&] { ClipTokenizer(not_object, merges); }, "list.json");
  const auto no_special = dir.write("small.json", "{\"a\": 0, \"b\": 1}");
  expect_error_mentions([&] { ClipTokenizer(no_special, merges); }, "<|startoftext|>");
  const auto ok_vocab =
      dir.write("ok.json", "{\"i\": 0, \"n\": 1, \"<|startoftext|>\": 2, \"<|endoftext|>\": 3}");
  const auto bad_merges = dir.write("bad_merges.txt", "#version: 0.2\ni n\nonlyone\n");
  expect_error_mentions([&] { ClipTokenizer(ok_vocab, bad_merges); }, "line 3");
  expect_error_mentions([&] { ClipTokenizer(ok_vocab, dir.path() / "nope.txt"); }, "nope.txt");
  ClipTokenizer tiny(ok_vocab, merges);
  expect_error_mentions([&] { tiny.set_pad_token("!"); }, "pad token");
}

}  // namespace
}  // namespace a2f
