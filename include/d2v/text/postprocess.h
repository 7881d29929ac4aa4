// From logits to what a user wants: the best answer span of a QA model (mapped back to the
// context through the tokenizer's offsets) and one label per word for token classification.
#pragma once
#include <cmath>

#include "d2v/text/tokenizer.h"

namespace d2v::text {

struct AnswerSpan {
    int64_t start_token = -1, end_token = -1;
    double score = -INFINITY;         // start_logit + end_logit
    int64_t start_byte = 0, end_byte = 0;  // into the context
    std::string text;
};

// Best span inside the second sequence (the context): start <= end, at most max_answer_length
// tokens, maximal start + end logit (first such span on ties).
inline AnswerSpan best_answer_span(const float* start_logits, const float* end_logits, const Encoding& e,
                                   const std::string& context, int64_t max_answer_length) {
    AnswerSpan best;
    const size_t n = e.input_ids.size();
    for (size_t s = 0; s < n; ++s) {
        if (e.sequence_ids[s] != 1) continue;
        for (size_t t = s; t < n && t < s + size_t(max_answer_length) && e.sequence_ids[t] == 1; ++t) {
            const double score = double(start_logits[s]) + end_logits[t];
            if (score > best.score) {
                best.score = score;
                best.start_token = int64_t(s);
                best.end_token = int64_t(t);
            }
        }
    }
    if (best.start_token < 0) throw Error("the context is empty after truncation; no answer span possible");
    best.start_byte = e.offsets[size_t(best.start_token)].first;
    best.end_byte = e.offsets[size_t(best.end_token)].second;
    best.text = context.substr(size_t(best.start_byte), size_t(std::max<int64_t>(0, best.end_byte - best.start_byte)));
    return best;
}

struct WordLabel {
    std::string word;
    int64_t label = 0;
    int64_t start_byte = 0, end_byte = 0;
};

// Words are runs of tokens of `sequence` whose offsets touch (no gap); a word takes the label
// (argmax) of its first token — Transformers' "first sub-token" convention. Tokens with empty
// offsets (a lone space) belong to no word.
inline std::vector<WordLabel> word_labels(const float* logits, int64_t num_labels, const Encoding& e, const std::string& text,
                                          int sequence = 0) {
    std::vector<WordLabel> words;
    int64_t end = -1;
    for (size_t i = 0; i < e.input_ids.size(); ++i) {
        const auto [s, t] = e.offsets[i];
        if (e.sequence_ids[i] != sequence || s == t) continue;
        if (words.empty() || s > end) {
            const float* row = logits + i * size_t(num_labels);
            words.push_back({"", int64_t(std::max_element(row, row + num_labels) - row), s, t});
        }
        words.back().end_byte = end = t;
    }
    for (auto& w : words) w.word = text.substr(size_t(w.start_byte), size_t(w.end_byte - w.start_byte));
    return words;
}

}  // namespace d2v::text
