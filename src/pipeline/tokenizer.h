// CLIP byte-level BPE tokenizer, mirroring transformers 4.36 `CLIPTokenizer` (the slow tokenizer that
// StableDiffusionPipeline and Arc2Face load; transformers/models/clip/tokenization_clip.py) in an environment
// without ftfy, which is how the reference runs:
//   1. added tokens "<|startoftext|>" / "<|endoftext|>" are split out of the raw text first (exact match);
//   2. each remaining piece goes through BasicTokenizer(strip_accents=False, do_split_on_punc=False):
//      drop NUL, U+FFFD and control characters (category C* but \t \n \r), map whitespace to spaces, put
//      spaces around CJK ideographs, NFC-normalise, split on Python whitespace, lowercase each word (full
//      Unicode mapping), rejoin with single spaces;
//   3. the CLIP pattern `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|
//      [^\s\p{L}\p{N}]+` (IGNORECASE) splits words; each match is UTF-8 encoded, mapped through
//      bytes_to_unicode and merged with the BPE ranks of merges.txt (lines 1 .. 48894), the last symbol
//      carrying "</w>";
//   4. input_ids = [bos] + first (max_length - 2) ids + [eos], padded with the pad token to max_length.
// Unicode classes, NFC and lowercasing come from ICU. Invalid UTF-8 in the input is read as U+FFFD, which
// step 2 removes (as the reference removes U+FFFD). The const methods are safe to call from several threads.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace a2f {

class ClipTokenizer {
 public:
  // Reads vocab.json and merges.txt, plus tokenizer_config.json / special_tokens_map.json when present
  // (pad token, model_max_length). Throws a2f::Error naming the file for a missing or malformed file.
  static ClipTokenizer load(const std::filesystem::path& tokenizer_dir);
  ClipTokenizer(const std::filesystem::path& vocab_json, const std::filesystem::path& merges_txt);

  // BPE token ids without special tokens: tokenizer.encode(text, add_special_tokens=False).
  std::vector<int32_t> tokenize(std::string_view text) const;

  // tokenizer(text, padding="max_length", max_length=max_length(), truncation=True).input_ids.
  // `truncated` (optional) tells whether tokens were cut off.
  std::vector<int32_t> encode(std::string_view text, bool* truncated = nullptr) const;

  int32_t token_id(std::string_view token) const;  // vocabulary lookup (unknown -> unk id)
  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  int32_t pad_id() const { return pad_id_; }
  int32_t unk_id() const { return unk_id_; }
  int max_length() const { return max_length_; }
  void set_pad_token(std::string_view token);
  void set_max_length(int n);

 private:
  void tokenize_piece(std::u32string_view piece, std::vector<int32_t>& ids) const;
  void bpe(const std::string& token, std::vector<int32_t>& ids) const;
  int32_t vocab_at(const std::string& token, const char* what) const;

  std::unordered_map<std::string, int32_t> vocab_;
  std::unordered_map<std::string, int32_t> merge_ranks_;  // "first second" -> rank
  std::string byte_encoder_[256];                         // byte -> UTF-8 of its printable stand-in
  int32_t bos_id_ = 0, eos_id_ = 0, pad_id_ = 0, unk_id_ = 0;
  int max_length_ = 77;
};

}  // namespace a2f
