// RoBERTa byte-level BPE tokenizer (the tokenizer of every data2vec-text checkpoint), implemented
// natively to give exactly what Transformers' RobertaTokenizerFast (the `tokenizers` library) gives:
//
//   1. the text is made valid UTF-8 (sanitize_utf8: U+FFFD per maximal invalid subpart);
//   2. added tokens (<s> </s> <pad> <unk> <mask> and any other added token of tokenizer.json) are
//      split out first, honouring their lstrip / rstrip / single_word / normalized flags (<mask>
//      has lstrip=True in RoBERTa, so "a <mask>" gives "a" + "<mask>");
//   3. every other piece (with a space put before it if add_prefix_space) is split with the GPT-2 pattern
//      's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//      (PCRE2, UTF + UCP; \s is Unicode White_Space as in Oniguruma, see bpe_tokenizer.cpp);
//   4. each split is byte-level BPE'd (merges applied by rank, leftmost first on ties);
//   5. truncation as `tokenizers` does it, offsets trimmed of the spaces a token carries
//      (trim_offsets), then the post-processor's special tokens and type ids: RoBERTa's
//      <s> A </s> / <s> A </s></s> B </s>, or tokenizer.json's TemplateProcessing, or none.
//
// Offsets are BYTE offsets [start, end) into the sanitised UTF-8 text of the token's own sequence,
// always on character boundaries (a token holding part of a multi-byte character spans the whole
// character, as `tokenizers` reports it). An encoder is immutable after construction; encode() and
// decode() may be called from several threads.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "d2v/model_file.h"

namespace d2v::text {

struct Encoding {
    std::vector<int64_t> input_ids, attention_mask, token_type_ids;  // token_type_ids all 0 for RoBERTa
    // [start, end) BYTE offsets into the (sanitised) UTF-8 text of the token's sequence;
    // (0,0) for special tokens and padding
    std::vector<std::pair<int64_t, int64_t>> offsets;
    std::vector<int> sequence_ids;  // 0 / 1 for tokens of the first / second text, -1 for special tokens and padding
    bool truncated = false;
    size_t size() const { return input_ids.size(); }
};

struct EncodeOptions {
    int64_t max_length = 0;  // 0: no limit; counts the special tokens too
    bool add_special_tokens = true;
    // "longest_first" (as `tokenizers`: the longer side is cut first, then both to about half),
    // "only_first", "only_second", or "none" (then a too long input throws d2v::Error).
    // only_first / only_second throw d2v::Error when the chosen side is too short to cut.
    std::string truncation = "longest_first";
};

// One added token as tokenizer.json describes it.
struct AddedToken {
    std::string content;
    int64_t id = -1;
    bool single_word = false, lstrip = false, rstrip = false, normalized = true, special = false;
};

class BpeTokenizer {
public:
    // From the checkpoint's files (the converter packs them into the model file as GGUF strings),
    // any of which may be absent (null Json / empty string): vocab.json (parsed), merges.txt (raw
    // text), tokenizer.json (parsed), tokenizer_config.json (parsed). vocab.json + merges.txt
    // (Transformers 4) or tokenizer.json alone (Transformers 5) is enough: an empty vocab / merges
    // falls back to tokenizer.json's model. tokenizer.json, when given, says the pipeline
    // (pre-tokenizer, post-processor, added tokens); without it, RoBERTa's, with the added tokens of
    // tokenizer_config.json's added_tokens_decoder, else the five RoBERTa specials (<mask>
    // lstrip=True). Throws d2v::Error naming the field for anything malformed, out of bounds or not
    // implemented (a non-BPE model, a normalizer, a pre-tokenizer other than ByteLevel, ...).
    BpeTokenizer(const Json& vocab, const std::string& merges_txt, const Json& tokenizer_json,
                 const Json& tokenizer_config);

    Encoding encode(const std::string& text, const EncodeOptions& = {}) const;
    Encoding encode_pair(const std::string& first, const std::string& second, const EncodeOptions& = {}) const;
    // Byte-level back to text (invalid UTF-8 from partial tokens becomes U+FFFD); unknown ids are
    // dropped, special tokens skipped by default.
    std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = true) const;

    int64_t token_to_id(const std::string& token) const;  // -1 if absent (byte-level form: "Ġthe")
    const std::string& id_to_token(int64_t id) const;     // throws d2v::Error if out of range
    int64_t bos_id() const;
    int64_t eos_id() const;
    int64_t pad_id() const;
    int64_t unk_id() const;
    int64_t mask_id() const;
    int64_t cls_id() const;  // first token of every encoding (<s>)
    int64_t sep_id() const;  // closes each sequence (</s>)
    int64_t vocab_size() const;  // largest id + 1, added tokens included
    const std::vector<AddedToken>& added_tokens() const;
    bool is_special(int64_t id) const;

    // The pieces the GPT-2 pattern cuts `text` into, as [start, end) byte ranges (no added-token
    // handling); exposed for tests.
    std::vector<std::pair<size_t, size_t>> pre_tokenize(const std::string& text) const;

    struct Impl;

private:
    std::shared_ptr<const Impl> impl_;
};

// Invalid UTF-8 -> U+FFFD per maximal invalid subpart, exactly like Python
// bytes.decode("utf-8", errors="replace"). had_invalid (optional) says whether anything was replaced.
std::string sanitize_utf8(const std::string& bytes, bool* had_invalid = nullptr);

// Right-pad encodings to the longest with pad_id (attention_mask 0, offsets (0,0), sequence_ids -1).
void pad_to_longest(std::vector<Encoding>& batch, int64_t pad_id);

}  // namespace d2v::text
