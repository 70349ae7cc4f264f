// CLIP BPE tokenizer (transformers 4.36 CLIPTokenizer without ftfy); see tokenizer.h for the steps.
#include "pipeline/tokenizer.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

#include <climits>
#include <limits>
#include <utility>

#include "core/error.h"
#include "io/json.h"
#include "io/mapped_file.h"

namespace a2f {

namespace {

constexpr std::u32string_view kBos = U"<|startoftext|>";
constexpr std::u32string_view kEos = U"<|endoftext|>";
constexpr int kMergeLines = 49152 - 256 - 2 + 1;  // the reference keeps merges.txt lines [1, 48895)

// ---- UTF-8 <-> code points ----

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

// Decodes UTF-8; a malformed or overlong sequence, a surrogate or a value past U+10FFFF becomes one U+FFFD
// per maximal invalid subpart (as Python's errors="replace").
std::u32string decode_utf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  const size_t n = s.size();
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  while (i < n) {
    const unsigned char b0 = byte(i);
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    }
    int len = 0;
    char32_t c = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2, c = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3, c = b0 & 0x0F;
      if (b0 == 0xE0) lo = 0xA0;
      if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4, c = b0 & 0x07;
      if (b0 == 0xF0) lo = 0x90;
      if (b0 == 0xF4) hi = 0x8F;
    } else {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    size_t k = 1;
    for (; k < static_cast<size_t>(len); ++k) {
      if (i + k >= n) break;
      const unsigned char b = byte(i + k);
      const unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
      if (b < l || b > h) break;
      c = (c << 6) | (b & 0x3F);
    }
    if (k == static_cast<size_t>(len)) {
      out.push_back(c);
      i += len;
    } else {
      out.push_back(0xFFFD);
      i += k;
    }
  }
  return out;
}

std::string encode_utf8(std::u32string_view s) {
  std::string out;
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

std::u16string to_utf16(std::u32string_view s) {
  std::u16string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c < 0x10000) {
      out.push_back(static_cast<char16_t>(c));
    } else {
      out.push_back(static_cast<char16_t>(U16_LEAD(c)));
      out.push_back(static_cast<char16_t>(U16_TRAIL(c)));
    }
  }
  return out;
}

std::u32string from_utf16(std::u16string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    UChar32 c;
    U16_NEXT(s.data(), i, s.size(), c);
    out.push_back(static_cast<char32_t>(c));
  }
  return out;
}

// ---- character classes (Python unicodedata semantics, via ICU) ----

// The reference runs Python 3.11, whose unicodedata is Unicode 14.0; ICU may know a newer version. A code
// point assigned after 14.0 is unassigned (Cn) there, so it is one here too.
bool assigned_in_unicode14(char32_t c) {
  UVersionInfo age;
  u_charAge(static_cast<UChar32>(c), age);
  return age[0] < 14 || (age[0] == 14 && age[1] == 0);
}

bool is_category_c(char32_t c) {  // unicodedata.category(c).startswith("C")
  if (!assigned_in_unicode14(c)) return true;
  switch (u_charType(static_cast<UChar32>(c))) {
    case U_CONTROL_CHAR:
    case U_FORMAT_CHAR:
    case U_PRIVATE_USE_CHAR:
    case U_SURROGATE:
    case U_UNASSIGNED:
      return true;
    default:
      return false;
  }
}

bool is_bert_whitespace(char32_t c) {  // BasicTokenizer _is_whitespace
  return c == U' ' || c == U'\t' || c == U'\n' || c == U'\r' ||
         u_charType(static_cast<UChar32>(c)) == U_SPACE_SEPARATOR;
}

bool is_bert_control(char32_t c) {  // BasicTokenizer _is_control
  if (c == U'\t' || c == U'\n' || c == U'\r') return false;
  return is_category_c(c);
}

bool is_python_space(char32_t c) {  // str.isspace(): bidi WS/B/S or category Zs
  if (u_charType(static_cast<UChar32>(c)) == U_SPACE_SEPARATOR) return true;
  const UCharDirection d = u_charDirection(static_cast<UChar32>(c));
  return d == U_WHITE_SPACE_NEUTRAL || d == U_BLOCK_SEPARATOR || d == U_SEGMENT_SEPARATOR;
}

bool is_cjk(char32_t cp) {  // BasicTokenizer _is_chinese_char
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

bool is_letter(char32_t c) {
  return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_L_MASK) != 0;
}
bool is_number(char32_t c) {
  return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_N_MASK) != 0;
}
// [^\s\p{L}\p{N}] under IGNORECASE: the `regex` module rejects a character one of whose case variants is a
// letter or number, while [\p{L}] itself takes no case variants; so U+0345 COMBINING GREEK YPOGEGRAMMENI (Mn,
// uppercase U+0399) matches no alternative at all and is dropped.
bool has_letter_or_number_case(char32_t c) {
  const UChar32 u = static_cast<UChar32>(c);
  for (UChar32 v : {u, u_tolower(u), u_toupper(u), u_totitle(u), u_foldCase(u, U_FOLD_CASE_DEFAULT)})
    if ((U_GET_GC_MASK(v) & (U_GC_L_MASK | U_GC_N_MASK)) != 0) return true;
  return false;
}
bool is_regex_space(char32_t c) {
  return u_isUWhiteSpace(static_cast<UChar32>(c)) != 0;
}

// IGNORECASE literal comparison (simple case folding, as the `regex` module does).
bool folds_to(char32_t c, char32_t ascii) {
  return u_foldCase(static_cast<UChar32>(c), U_FOLD_CASE_DEFAULT) == static_cast<UChar32>(ascii);
}
size_t match_literal_icase(std::u32string_view s, size_t i, std::u32string_view lit) {
  if (s.size() - i < lit.size()) return 0;
  for (size_t k = 0; k < lit.size(); ++k)
    if (!folds_to(s[i + k], lit[k])) return 0;
  return lit.size();
}

std::u32string nfc(std::u32string_view s) {
  UErrorCode err = U_ZERO_ERROR;
  const UNormalizer2* norm = unorm2_getNFCInstance(&err);
  A2F_CHECK(U_SUCCESS(err), "ICU: NFC normaliser unavailable: ", u_errorName(err));
  std::u16string src = to_utf16(s);
  A2F_CHECK(src.size() < static_cast<size_t>(INT32_MAX / 4), "prompt too long (", s.size(), " characters)");
  std::u16string dst(src.size() * 3 + 16, u'\0');
  int32_t len =
      unorm2_normalize(norm, reinterpret_cast<const UChar*>(src.data()), static_cast<int32_t>(src.size()),
                       reinterpret_cast<UChar*>(dst.data()), static_cast<int32_t>(dst.size()), &err);
  if (err == U_BUFFER_OVERFLOW_ERROR) {
    err = U_ZERO_ERROR;
    dst.assign(static_cast<size_t>(len), u'\0');
    len = unorm2_normalize(norm, reinterpret_cast<const UChar*>(src.data()), static_cast<int32_t>(src.size()),
                           reinterpret_cast<UChar*>(dst.data()), len, &err);
  }
  A2F_CHECK(U_SUCCESS(err), "ICU: NFC normalisation failed: ", u_errorName(err));
  dst.resize(static_cast<size_t>(len));
  return from_utf16(dst);
}

// str.lower(): full case mapping (SpecialCasing, Final_Sigma) in the root locale.
std::u32string lower(std::u32string_view s) {
  std::u16string src = to_utf16(s);
  std::u16string dst(src.size() * 3 + 16, u'\0');
  UErrorCode err = U_ZERO_ERROR;
  int32_t len =
      u_strToLower(reinterpret_cast<UChar*>(dst.data()), static_cast<int32_t>(dst.size()),
                   reinterpret_cast<const UChar*>(src.data()), static_cast<int32_t>(src.size()), "", &err);
  if (err == U_BUFFER_OVERFLOW_ERROR) {
    err = U_ZERO_ERROR;
    dst.assign(static_cast<size_t>(len), u'\0');
    len = u_strToLower(reinterpret_cast<UChar*>(dst.data()), len, reinterpret_cast<const UChar*>(src.data()),
                       static_cast<int32_t>(src.size()), "", &err);
  }
  A2F_CHECK(U_SUCCESS(err), "ICU: lowercasing failed: ", u_errorName(err));
  dst.resize(static_cast<size_t>(len));
  return from_utf16(dst);
}

// BasicTokenizer(strip_accents=False, do_split_on_punc=False).tokenize(text), rejoined with " ".
std::u32string basic_clean(std::u32string_view text) {
  std::u32string cleaned;
  cleaned.reserve(text.size());
  for (char32_t c : text) {
    if (c == 0 || c == 0xFFFD || is_bert_control(c)) continue;
    if (is_bert_whitespace(c)) {
      cleaned.push_back(U' ');
    } else if (is_cjk(c)) {
      cleaned.push_back(U' ');
      cleaned.push_back(c);
      cleaned.push_back(U' ');
    } else {
      cleaned.push_back(c);
    }
  }
  const std::u32string normalized = nfc(cleaned);
  std::u32string out;
  size_t i = 0;
  while (i < normalized.size()) {
    while (i < normalized.size() && is_python_space(normalized[i])) ++i;
    size_t j = i;
    while (j < normalized.size() && !is_python_space(normalized[j])) ++j;
    if (j > i) {
      if (!out.empty()) out.push_back(U' ');
      out += lower(std::u32string_view(normalized).substr(i, j - i));
    }
    i = j;
  }
  return out;
}

}  // namespace

ClipTokenizer::ClipTokenizer(const std::filesystem::path& vocab_json,
                             const std::filesystem::path& merges_txt) {
  // bytes_to_unicode()
  {
    bool printable[256] = {};
    for (int b = '!'; b <= '~'; ++b) printable[b] = true;
    for (int b = 0xA1; b <= 0xAC; ++b) printable[b] = true;
    for (int b = 0xAE; b <= 0xFF; ++b) printable[b] = true;
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const char32_t c = printable[b] ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      append_utf8(byte_encoder_[b], c);
    }
  }

  const nlohmann::json vocab = json_load(vocab_json);
  A2F_CHECK(vocab.is_object() && !vocab.empty(), "tokenizer vocabulary '", vocab_json.string(),
            "' must be a JSON object mapping tokens to ids");
  vocab_.reserve(vocab.size());
  for (const auto& [token, id] : vocab.items()) {
    A2F_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() <= INT32_MAX,
              "tokenizer vocabulary '", vocab_json.string(), "': token '", token,
              "' has no valid integer id");
    vocab_[token] = static_cast<int32_t>(id.get<int64_t>());
  }

  const std::string merges = read_file_bytes(merges_txt, size_t(64) << 20);
  // merges.read().strip().split("\n")[1 : 48895]
  const char* ws = " \t\n\r\f\v";
  const size_t first = merges.find_first_not_of(ws);
  const size_t last = merges.find_last_not_of(ws);
  A2F_CHECK(first != std::string::npos, "tokenizer merges file '", merges_txt.string(), "' is empty");
  std::string_view body(merges.data() + first, last - first + 1);
  int line_no = 0;
  int32_t rank = 0;
  size_t pos = 0;
  while (pos <= body.size() && line_no < kMergeLines) {
    size_t end = body.find('\n', pos);
    if (end == std::string_view::npos) end = body.size();
    std::string_view line = body.substr(pos, end - pos);
    pos = end + 1;
    if (line_no++ == 0) continue;  // "#version: 0.2"
    std::vector<std::string_view> parts;
    size_t k = 0;
    while (k < line.size()) {
      k = line.find_first_not_of(ws, k);
      if (k == std::string_view::npos) break;
      size_t e = line.find_first_of(ws, k);
      if (e == std::string_view::npos) e = line.size();
      parts.push_back(line.substr(k, e - k));
      k = e;
    }
    A2F_CHECK(parts.size() == 2, "tokenizer merges file '", merges_txt.string(), "': line ", line_no,
              " is not a pair of symbols: '", std::string(line), "'");
    merge_ranks_[std::string(parts[0]) + " " + std::string(parts[1])] = rank++;
  }
  A2F_CHECK(rank > 0, "tokenizer merges file '", merges_txt.string(), "' has no merges");

  bos_id_ = vocab_at(encode_utf8(kBos), "the start token <|startoftext|>");
  eos_id_ = vocab_at(encode_utf8(kEos), "the end token <|endoftext|>");
  unk_id_ = eos_id_;
  pad_id_ = eos_id_;
}

int32_t ClipTokenizer::vocab_at(const std::string& token, const char* what) const {
  auto it = vocab_.find(token);
  A2F_CHECK(it != vocab_.end(), "tokenizer vocabulary has no entry for ", what);
  return it->second;
}

ClipTokenizer ClipTokenizer::load(const std::filesystem::path& dir) {
  ClipTokenizer tok(dir / "vocab.json", dir / "merges.txt");
  // The pad token and length come from tokenizer_config.json (special_tokens_map.json overrides the pad
  // token).
  auto token_of = [](const nlohmann::json& v) -> std::string {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string())
      return v["content"].get<std::string>();
    return {};
  };
  for (const char* name : {"tokenizer_config.json", "special_tokens_map.json"}) {
    const auto path = dir / name;
    if (!std::filesystem::exists(path)) continue;
    const nlohmann::json cfg = json_load(path);
    if (!cfg.is_object()) continue;
    if (cfg.contains("pad_token")) {
      const std::string pad = token_of(cfg["pad_token"]);
      if (!pad.empty()) tok.set_pad_token(pad);
    }
    if (cfg.contains("model_max_length") && cfg["model_max_length"].is_number_integer()) {
      const int64_t n = cfg["model_max_length"].get<int64_t>();
      if (n >= 2 && n <= 4096) tok.set_max_length(static_cast<int>(n));  // huge values mean "no limit" in HF
    }
  }
  return tok;
}

void ClipTokenizer::set_pad_token(std::string_view token) {
  auto it = vocab_.find(std::string(token));
  A2F_CHECK(it != vocab_.end(), "pad token '", token, "' is not in the tokenizer vocabulary");
  pad_id_ = it->second;
}

void ClipTokenizer::set_max_length(int n) {
  A2F_CHECK(n >= 2, "tokenizer max_length must be at least 2, got ", n);
  max_length_ = n;
}

int32_t ClipTokenizer::token_id(std::string_view token) const {
  auto it = vocab_.find(std::string(token));
  return it == vocab_.end() ? unk_id_ : it->second;
}

void ClipTokenizer::bpe(const std::string& token, std::vector<int32_t>& ids) const {
  // token is the byte-encoded word (UTF-8); symbols start as its characters, the last one with "</w>".
  std::vector<std::string> word;
  for (size_t i = 0; i < token.size();) {
    const unsigned char b = static_cast<unsigned char>(token[i]);
    const size_t len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    word.emplace_back(token.substr(i, len));
    i += len;
  }
  if (word.empty()) return;
  word.back() += "</w>";
  while (word.size() > 1) {
    int32_t best = std::numeric_limits<int32_t>::max();
    size_t best_i = 0;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = merge_ranks_.find(word[i] + " " + word[i + 1]);
      if (it != merge_ranks_.end() && it->second < best) best = it->second, best_i = i;
    }
    if (best == std::numeric_limits<int32_t>::max()) break;
    const std::string first = word[best_i], second = word[best_i + 1];
    std::vector<std::string> merged;
    merged.reserve(word.size());
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
        merged.push_back(first + second);
        i += 2;
      } else {
        merged.push_back(word[i]);
        i += 1;
      }
    }
    word = std::move(merged);
  }
  for (const std::string& sym : word) ids.push_back(token_id(sym));
}

void ClipTokenizer::tokenize_piece(std::u32string_view piece, std::vector<int32_t>& ids) const {
  const std::u32string text = basic_clean(piece);
  static constexpr std::u32string_view kContractions[] = {U"'s", U"'t", U"'re", U"'ve", U"'m", U"'ll", U"'d"};
  size_t i = 0;
  while (i < text.size()) {
    size_t len = match_literal_icase(text, i, kBos);
    if (!len) len = match_literal_icase(text, i, kEos);
    if (!len) {
      for (std::u32string_view c : kContractions)
        if ((len = match_literal_icase(text, i, c)) != 0) break;
    }
    if (!len && is_letter(text[i])) {
      len = 1;
      while (i + len < text.size() && is_letter(text[i + len])) ++len;
    }
    if (!len && is_number(text[i])) len = 1;
    if (!len) {
      auto other = [&](char32_t c) { return !is_regex_space(c) && !has_letter_or_number_case(c); };
      while (i + len < text.size() && other(text[i + len])) ++len;
    }
    if (!len) {  // no alternative matches here (whitespace, U+0345)
      ++i;
      continue;
    }
    const std::string utf8 = encode_utf8(std::u32string_view(text).substr(i, len));
    i += len;
    if (utf8 == "<|startoftext|>" || utf8 == "<|endoftext|>") {  // the reference's BPE cache entries
      ids.push_back(token_id(utf8));
      continue;
    }
    std::string encoded;
    for (unsigned char b : utf8) encoded += byte_encoder_[b];
    bpe(encoded, ids);
  }
}

std::vector<int32_t> ClipTokenizer::tokenize(std::string_view text) const {
  const std::u32string s = decode_utf8(text);
  std::vector<int32_t> ids;
  // Added tokens are split out of the raw text first (tokens_trie.split): leftmost exact occurrence.
  size_t start = 0, i = 0;
  while (i < s.size()) {
    std::u32string_view rest = std::u32string_view(s).substr(i);
    const bool bos = rest.starts_with(kBos), eos = !bos && rest.starts_with(kEos);
    if (!bos && !eos) {
      ++i;
      continue;
    }
    if (i > start) tokenize_piece(std::u32string_view(s).substr(start, i - start), ids);
    ids.push_back(bos ? bos_id_ : eos_id_);
    i += bos ? kBos.size() : kEos.size();
    start = i;
  }
  if (start < s.size()) tokenize_piece(std::u32string_view(s).substr(start), ids);
  return ids;
}

std::vector<int32_t> ClipTokenizer::encode(std::string_view text, bool* truncated) const {
  std::vector<int32_t> ids = tokenize(text);
  const size_t keep = static_cast<size_t>(max_length_ - 2);
  if (truncated) *truncated = ids.size() > keep;
  if (ids.size() > keep) ids.resize(keep);
  std::vector<int32_t> out;
  out.reserve(static_cast<size_t>(max_length_));
  out.push_back(bos_id_);
  out.insert(out.end(), ids.begin(), ids.end());
  out.push_back(eos_id_);
  out.resize(static_cast<size_t>(max_length_), pad_id_);
  return out;
}

}  // namespace a2f
