// What a byte-level BPE tokenizer is, read from the checkpoint's files (internal to the library):
// the vocabulary, the merges by rank, the added tokens with the ids `tokenizers` gives them, the
// ByteLevel pre-tokenizer's settings and the post-processor as a template. read_tokenizer_spec()
// does every check (types, id ranges, sizes, unsupported components); BpeTokenizer only runs it.
#pragma once
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "d2v/text/tokenizer.h"

namespace d2v::text {

// Bounds on what a tokenizer file may declare; real vocabularies are far below them (RoBERTa:
// 50265 tokens, 50000 merges, longest token 128 characters).
constexpr size_t kMaxVocabEntries = size_t(1) << 22;
constexpr size_t kMaxMerges = size_t(1) << 22;
constexpr size_t kMaxTokenBytes = 1024;

// The post-processor as `tokenizers` applies it, reduced to a template per input kind.
struct PostProcessorSpec {
    struct Item {
        int64_t special_id = -1;  // a special token, or
        int sequence = -1;        // 0 / 1: the first / second sequence's tokens
        int64_t type_id = 0;
    };
    std::vector<Item> single, pair;  // with add_special_tokens
    int64_t second_type_id = 0;      // type id of the second sequence without special tokens
    bool trim_offsets = false;       // drop the spaces a token carries from its offsets
    bool keep_first_prefix_space = false;  // ...except the one add_prefix_space put before the first token
};

struct TokenizerSpec {
    std::vector<std::pair<std::string, int64_t>> vocab;       // byte-level token -> id
    std::vector<std::pair<std::string, std::string>> merges;  // by rank
    std::vector<AddedToken> added;                            // ids resolved
    std::unordered_map<std::string, int64_t> token_to_id;     // vocab and added tokens
    std::string model_unk;                                    // BPE's own unk_token ("" for none)
    bool ignore_merges = false;
    bool add_prefix_space = false;  // ByteLevel pre-tokenizer: a space before every piece that lacks one
    bool use_regex = true;          // ByteLevel pre-tokenizer: split with the GPT-2 pattern
    PostProcessorSpec post;
    int64_t bos = -1, eos = -1, pad = -1, unk = -1, mask = -1, cls = -1, sep = -1;
};

// See BpeTokenizer's constructor for what each argument is; throws d2v::Error naming the field.
TokenizerSpec read_tokenizer_spec(const Json& vocab, const std::string& merges_txt, const Json& tokenizer_json,
                                  const Json& tokenizer_config);

}  // namespace d2v::text
