// CTC decoding constrained to a word list: the most probable frame path (Viterbi over per-frame
// log-softmax scores) whose text is a sequence of listed words, separated by the word delimiter.
// A greedy decode of a small model can spell a word that does not exist ("FONE"); this one can
// only choose among the words. It returns one token id per frame, a path that a CTC model could
// emit, so CtcDecoder::decode and word_offsets (transcript, timestamps) apply to it unchanged.
// Meant for small vocabularies (digits, commands): the cost is frames x letters of all words.
#pragma once
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "d2v/audio/ctc_decoder.h"
#include "d2v/kernels/ops.h"

namespace d2v::audio {

class LexiconDecoder {
public:
    static constexpr size_t kMaxLetters = 100000;  // all words together; beyond it, use a real LM decoder

    // words: as the user wrote them; a word whose letters the vocabulary lacks is tried in upper,
    // then lower case (CTC vocabularies are often upper-case only), else refused.
    LexiconDecoder(const CtcDecoder& ctc, const std::vector<std::string>& words) {
        blank_ = ctc.pad_id();
        delimiter_ = ctc.delimiter_id();
        if (blank_ < 0) throw Error("the CTC vocabulary has no pad (blank) token; a word list cannot be used");
        if (delimiter_ < 0) throw Error("the CTC vocabulary has no word delimiter token; a word list cannot be used");
        if (words.empty()) throw Error("the word list is empty");
        size_t letters = 0;
        for (const auto& word : words) {
            std::vector<int64_t> ids = spell(ctc, word);
            letters += ids.size();
            if (letters > kMaxLetters) throw Error("the word list has more than " + std::to_string(kMaxLetters) + " letters; it is meant for small vocabularies");
            for (int64_t i : ids) max_id_ = std::max(max_id_, i);
            words_.push_back({int64_t(states_), ids});
            states_ += 2 * ids.size() - 1;
        }
    }

    // logits: [frames, width] row-major; width must be the vocabulary size the decoder was built on.
    std::vector<int64_t> best_path(const float* logits, int64_t frames, int64_t width) const {
        if (frames <= 0) return {};
        if (width <= std::max({max_id_, blank_, delimiter_})) throw Error("CTC logits are narrower than the vocabulary the word list was spelled with");
        const int64_t S = int64_t(states_);
        const float kNone = -std::numeric_limits<float>::infinity();
        std::vector<float> score(static_cast<size_t>(S), kNone), next(static_cast<size_t>(S));
        std::vector<int32_t> from(static_cast<size_t>(frames * S), -1);  // predecessor of each state at each frame
        std::vector<float> logp(static_cast<size_t>(width));

        for (int64_t t = 0; t < frames; ++t) {
            std::copy(logits + t * width, logits + (t + 1) * width, logp.begin());
            log_softmax_inplace(logp.data(), width);
            const float blank = logp[size_t(blank_)], delim = logp[size_t(delimiter_)];
            int32_t* back = from.data() + t * S;
            auto set = [&](int64_t s, float value, int64_t pred, float emit) {
                next[size_t(s)] = value == kNone ? kNone : value + emit;
                back[s] = int32_t(pred);
            };
            auto best_of = [&](std::initializer_list<int64_t> candidates, float& value) {
                int64_t arg = -1;
                value = kNone;
                for (int64_t c : candidates)
                    if (c >= 0 && score[size_t(c)] > value) value = score[size_t(c)], arg = c;
                return arg;
            };
            if (t == 0) {
                std::fill(next.begin(), next.end(), kNone);
                next[kStart] = blank, next[kDelimiter] = delim;
                for (const auto& w : words_) next[size_t(w.first)] = logp[size_t(w.ids[0])];
                score.swap(next);
                continue;
            }
            // the best way into a word's first letter (from before any word or after a delimiter)
            float into_word;
            const int64_t into_word_from = best_of({kStart, kDelimiter, kAfterDelimiter}, into_word);
            // the best word end (a word is done when its last letter is)
            float word_end = kNone;
            int64_t word_end_from = -1;
            for (const auto& w : words_) {
                const int64_t last = w.first + 2 * int64_t(w.ids.size()) - 2;
                if (score[size_t(last)] > word_end) word_end = score[size_t(last)], word_end_from = last;
            }
            float v;
            int64_t p;
            p = best_of({kStart}, v), set(kStart, v, p, blank);
            p = best_of({kAfterWord}, v);
            if (word_end > v) v = word_end, p = word_end_from;
            set(kAfterWord, v, p, blank);
            p = best_of({kDelimiter, kStart, kAfterWord}, v);
            if (word_end > v) v = word_end, p = word_end_from;
            set(kDelimiter, v, p, delim);
            p = best_of({kAfterDelimiter, kDelimiter}, v), set(kAfterDelimiter, v, p, blank);
            for (const auto& w : words_) {
                const int64_t n = int64_t(w.ids.size());
                for (int64_t i = 0; i < n; ++i) {
                    const int64_t letter = w.first + 2 * i;
                    if (i == 0) {
                        p = best_of({letter}, v);
                        if (into_word > v) v = into_word, p = into_word_from;
                    } else {  // from itself, the blank before it, or the previous letter if it differs
                        const bool same = w.ids[size_t(i)] == w.ids[size_t(i - 1)];
                        p = best_of({letter, letter - 1, same ? -1 : letter - 2}, v);
                    }
                    set(letter, v, p, logp[size_t(w.ids[size_t(i)])]);
                    if (i + 1 < n) p = best_of({letter + 1, letter}, v), set(letter + 1, v, p, blank);
                }
            }
            score.swap(next);
        }

        // end before any word, after a word, or after a trailing delimiter (stripped by decode)
        float v = kNone;
        int64_t s = -1;
        for (int64_t c : {kStart, kAfterWord, kDelimiter, kAfterDelimiter})
            if (score[size_t(c)] > v) v = score[size_t(c)], s = c;
        for (const auto& w : words_) {
            const int64_t last = w.first + 2 * int64_t(w.ids.size()) - 2;
            if (score[size_t(last)] > v) v = score[size_t(last)], s = last;
        }
        if (s < 0) throw Error("CTC logits are not finite; cannot decode with a word list");
        std::vector<int64_t> path(static_cast<size_t>(frames));
        for (int64_t t = frames - 1; t >= 0; --t) {
            path[size_t(t)] = token_of(s);
            s = from[size_t(t * S + s)];
        }
        return path;
    }

private:
    // fixed states; each word's states follow: letter, blank, letter, ..., letter
    static constexpr int64_t kStart = 0, kAfterWord = 1, kDelimiter = 2, kAfterDelimiter = 3;
    struct Word {
        int64_t first;              // index of its first letter state
        std::vector<int64_t> ids;   // token id of each letter
    };

    static std::vector<int64_t> spell(const CtcDecoder& ctc, const std::string& word) {
        if (word.empty()) throw Error("the word list has an empty word");
        std::string upper = word, lower = word;
        for (auto& c : upper) c = char(std::toupper(static_cast<unsigned char>(c)));
        for (auto& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
        for (const std::string* form : std::initializer_list<const std::string*>{&word, &upper, &lower}) {
            std::vector<int64_t> ids;
            try {
                ids = ctc.encode(*form);
            } catch (const Error&) {
                continue;
            }
            if (std::find(ids.begin(), ids.end(), ctc.delimiter_id()) != ids.end())
                throw Error("the word list entry '" + word + "' contains the word delimiter");
            return ids;
        }
        throw Error("the word list entry '" + word + "' has a character the CTC vocabulary lacks (tried as written, in upper and in lower case)");
    }

    int64_t token_of(int64_t state) const {
        if (state == kDelimiter) return delimiter_;
        if (state < 4) return blank_;
        // a word's letter states have even offsets from its first state, blanks odd
        auto it = std::upper_bound(words_.begin(), words_.end(), state, [](int64_t s, const Word& w) { return s < w.first; });
        const Word& w = *(it - 1);
        const int64_t offset = state - w.first;
        return offset % 2 ? blank_ : w.ids[size_t(offset / 2)];
    }

    int64_t blank_ = -1, delimiter_ = -1, max_id_ = -1;
    size_t states_ = 4;
    std::vector<Word> words_;
};

}  // namespace d2v::audio
