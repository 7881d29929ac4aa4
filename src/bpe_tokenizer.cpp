// RoBERTa byte-level BPE, natively (see include/d2v/text/tokenizer.h for the pipeline; reading
// the checkpoint's files into a TokenizerSpec is tokenizer_spec.cpp).
//
// Facts this follows (from the `tokenizers` library that RobertaTokenizerFast runs):
//  * Added tokens are cut out before anything else, in two passes: tokens with normalized=false
//    over the whole text, then tokens with normalized=true over each remaining piece (there is no
//    normalizer in RoBERTa, so only the pass order matters). Matching is leftmost-longest and
//    non-overlapping; lstrip / rstrip widen the match over Unicode White_Space (never over text an
//    earlier match took); single_word drops a match touching a word character.
//  * The GPT-2 pattern runs on each remaining piece separately (its look-ahead stops at the
//    piece's end). `tokenizers` uses Oniguruma, whose \s is the Unicode White_Space property;
//    PCRE2's UCP \s differs (it takes U+180E), so the pattern below spells the White_Space set out.
//  * BPE merges the lowest-ranked adjacent pair, the leftmost on ties, until none applies.
//  * A token's offsets cover whole characters (a token holding some bytes of a multi-byte character
//    spans the character). trim_offsets then drops leading / trailing spaces the token carries:
//    'Ġ' (byte 0x20) in a BPE token, White_Space or U+0120 in an added token's matched text,
//    counted in characters, after truncation and before the special tokens are added.
//  * add_prefix_space puts a space before every piece (not only the text's first) that does not
//    start with one; it stands at the piece's first character, so trimming it from any token but
//    a sequence's first moves the start past that character (as `tokenizers` reports it).
//  * Truncation (`tokenizers`' truncate_encodings) shares out m = max_length - special tokens.
//    longest_first on a pair: if the shorter side (n1 tokens, the first on a tie) has
//    n1 <= m - n1, the longer keeps m - n1; otherwise the shorter keeps floor(m/2) and the longer
//    ceil(m/2) (so with equal lengths the second side keeps the odd token, where the slow Python
//    tokenizer's one-at-a-time removal gives it to the first). only_first / only_second cut that
//    side alone and fail if it is too short.
#include "d2v/text/tokenizer.h"

#include "tokenizer_spec.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <queue>
#include <unordered_map>

#include "d2v/tensor.h"

namespace d2v::text {

namespace {

// ----------------------------------------------------------------------------------------- UTF-8

// Length of a well-formed sequence at s[i] (the text is already sanitised).
inline size_t utf8_len(unsigned char c) {
    if (c < 0x80) return 1;
    if (c < 0xE0) return 2;
    if (c < 0xF0) return 3;
    return 4;
}

inline uint32_t decode_at(const std::string& s, size_t i, size_t* len = nullptr) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + i;
    const size_t n = utf8_len(p[0]);
    uint32_t cp = n == 1 ? p[0] : n == 2 ? (p[0] & 0x1F) : n == 3 ? (p[0] & 0x0F) : (p[0] & 0x07);
    for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (p[k] & 0x3F);
    if (len) *len = n;
    return cp;
}

// Start of the character that ends just before byte i (i > 0).
inline size_t prev_char_start(const std::string& s, size_t i) {
    size_t j = i - 1;
    while (j > 0 && (static_cast<unsigned char>(s[j]) & 0xC0) == 0x80) --j;
    return j;
}

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += char(0xE0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    } else {
        out += char(0xF0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3F));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    }
}

// Unicode White_Space (what Rust's char::is_whitespace, Rust regex \s and Oniguruma \s use).
inline bool is_white_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

// ------------------------------------------------------------------------------ byte-level map

// GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the others to U+0100...
struct ByteLevelMap {
    std::array<uint32_t, 256> to_cp{};
    std::array<int, 324> to_byte{};  // code point -> byte, -1 if not a byte-level character
    ByteLevelMap() {
        to_byte.fill(-1);
        auto keeps = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
        uint32_t n = 0;
        for (int b = 0; b < 256; ++b) {
            to_cp[b] = keeps(b) ? uint32_t(b) : 256 + n++;
            to_byte[to_cp[b]] = b;
        }
    }
};
const ByteLevelMap& byte_level() {
    static const ByteLevelMap m;
    return m;
}

// A byte-level token string ("Ġthe") -> raw bytes (" the"); false if some character is not one of
// the 256 byte characters.
bool byte_level_to_bytes(const std::string& token, std::string& out) {
    out.clear();
    const auto& m = byte_level();
    const std::string valid = sanitize_utf8(token);
    if (valid != token) return false;
    for (size_t i = 0; i < token.size();) {
        size_t n;
        const uint32_t cp = decode_at(token, i, &n);
        if (cp >= m.to_byte.size() || m.to_byte[cp] < 0) return false;
        out += char(m.to_byte[cp]);
        i += n;
    }
    return true;
}

// -------------------------------------------------------------------------------------- PCRE2

struct Regex {
    pcre2_code* code = nullptr;
    Regex(const char* pattern, uint32_t options) {
        int err = 0;
        PCRE2_SIZE at = 0;
        code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED, options, &err, &at, nullptr);
        if (!code) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(err, msg, sizeof msg);
            throw Error(std::string("tokenizer: cannot compile pattern: ") + reinterpret_cast<char*>(msg));
        }
        pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional: falls back to the interpreter
    }
    ~Regex() { pcre2_code_free(code); }
    Regex(const Regex&) = delete;
    Regex& operator=(const Regex&) = delete;
};

struct MatchData {
    pcre2_match_data* md;
    explicit MatchData(const Regex& re) : md(pcre2_match_data_create_from_pattern(re.code, nullptr)) {
        if (!md) throw Error("tokenizer: out of memory");
    }
    ~MatchData() { pcre2_match_data_free(md); }
    MatchData(const MatchData&) = delete;
    MatchData& operator=(const MatchData&) = delete;
};

// \s spelled out as the Unicode White_Space set (Oniguruma's \s): PCRE2's own UCP \s also takes
// U+180E (MONGOLIAN VOWEL SEPARATOR, no longer a space since Unicode 6.3).
#define D2V_WS "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
const char* kGpt2Pattern = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" D2V_WS "\\p{L}\\p{N}]+|[" D2V_WS
                           "]+(?![^" D2V_WS "])|[" D2V_WS "]+";
#undef D2V_WS
// Rust regex \w (what single_word tests): Alphabetic, marks, decimal digits, connector punctuation,
// Join_Control. PCRE2 >= 10.40 knows the binary properties; older ones get plain UCP \w.
const char* kWordChar = "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]";

struct Tok {
    int64_t id;
    int64_t start, end;   // bytes into the sanitised text
    int32_t lead, trail;  // characters of leading / trailing space the token carries (trim_offsets drops them)
};

}  // namespace

// ------------------------------------------------------------------------------------ sanitize

std::string sanitize_utf8(const std::string& bytes, bool* had_invalid) {
    std::string out;
    out.reserve(bytes.size());
    bool bad = false;
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const size_t n = bytes.size();
    size_t i = 0;
    while (i < n) {
        const unsigned char c = p[i];
        if (c < 0x80) {
            out += char(c);
            ++i;
            continue;
        }
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0) lo = 0xA0;        // no overlongs
            if (c == 0xED) hi = 0x9F;        // no surrogates
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0) lo = 0x90;        // no overlongs
            if (c == 0xF4) hi = 0x8F;        // <= U+10FFFF
        } else {
            out += "\xEF\xBF\xBD";  // 80..C1, F5..FF never start a character
            bad = true;
            ++i;
            continue;
        }
        // The maximal subpart: the lead byte plus every continuation byte that is still valid.
        size_t k = 1;
        for (; k <= need && i + k < n; ++k) {
            const unsigned char b = p[i + k];
            const unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
            if (b < l || b > h) break;
        }
        if (k == need + 1) {
            out.append(bytes, i, k);
        } else {
            out += "\xEF\xBF\xBD";
            bad = true;
        }
        i += k;
    }
    if (had_invalid) *had_invalid = bad;
    return out;
}

void pad_to_longest(std::vector<Encoding>& batch, int64_t pad_id) {
    size_t longest = 0;
    for (const auto& e : batch) longest = std::max(longest, e.input_ids.size());
    for (auto& e : batch) {
        const size_t n = longest - e.input_ids.size();
        e.input_ids.insert(e.input_ids.end(), n, pad_id);
        e.attention_mask.insert(e.attention_mask.end(), n, 0);
        e.token_type_ids.insert(e.token_type_ids.end(), n, 0);
        e.offsets.insert(e.offsets.end(), n, {0, 0});
        e.sequence_ids.insert(e.sequence_ids.end(), n, -1);
    }
}

// ---------------------------------------------------------------------------------------- Impl

struct BpeTokenizer::Impl {
    std::unordered_map<std::string, int64_t> token_to_id;  // byte-level strings and added tokens
    std::vector<std::string> id_to_token;                  // "" where no token has that id
    std::vector<std::string> id_bytes;                     // what decode() writes for the id
    std::vector<char> id_valid, id_special;
    std::unordered_map<std::string, int64_t> bytes_to_id;  // raw bytes of vocab tokens (ignore_merges)
    std::array<int64_t, 256> byte_id{};                     // the single-byte token of each byte
    struct Merge {
        int32_t rank;
        int32_t id;
    };
    std::unordered_map<uint64_t, Merge> merges;  // (left id << 32 | right id) -> rank, merged id
    std::vector<AddedToken> added;
    // The added tokens of each pass as a byte trie, so finding the longest one at a position costs
    // at most its length, however many there are.
    struct AddedTrie {
        std::unordered_map<uint64_t, int32_t> edges;  // (node << 8 | byte) -> node
        std::vector<int64_t> token{-1};                // node -> index into `added` ending there, or -1
        void insert(const std::string& content, int64_t index) {
            int32_t node = 0;
            for (unsigned char c : content) {
                auto [it, fresh] = edges.emplace(uint64_t(node) << 8 | c, int32_t(token.size()));
                if (fresh) token.push_back(-1);
                node = it->second;
            }
            token[size_t(node)] = index;
        }
        // The longest token that text[i, pe) starts with: its index, and its length in `len`.
        int64_t longest(const std::string& text, size_t i, size_t pe, size_t& len) const {
            int64_t best = -1;
            int32_t node = 0;
            for (size_t k = i; k < pe; ++k) {
                auto it = edges.find(uint64_t(node) << 8 | static_cast<unsigned char>(text[k]));
                if (it == edges.end()) break;
                node = it->second;
                if (token[size_t(node)] >= 0) best = token[size_t(node)], len = k + 1 - i;
            }
            return best;
        }
        bool empty() const { return edges.empty(); }
    };
    AddedTrie added_raw, added_norm;  // normalized=false / normalized=true
    int64_t bos = -1, eos = -1, pad = -1, unk = -1, mask = -1, cls = -1, sep = -1;
    int64_t model_unk = -1;  // BPE's own unk_token (none in RoBERTa: unknown bytes are dropped)
    bool ignore_merges = false, use_regex = true, add_prefix_space = false;
    PostProcessorSpec post;
    std::unique_ptr<Regex> pattern, word_char;

    static uint64_t key(int64_t a, int64_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

    void set_token(int64_t id, const std::string& token, const std::string& bytes) {
        if (id < 0) throw Error("tokenizer: negative token id for '" + token + "'");
        if (id >= int64_t(id_to_token.size())) {
            id_to_token.resize(size_t(id) + 1);
            id_bytes.resize(size_t(id) + 1);
            id_valid.resize(size_t(id) + 1, 0);
            id_special.resize(size_t(id) + 1, 0);
        }
        id_to_token[size_t(id)] = token;
        id_bytes[size_t(id)] = bytes;
        id_valid[size_t(id)] = 1;
    }

    int64_t find(const std::string& token) const {
        auto it = token_to_id.find(token);
        return it == token_to_id.end() ? -1 : it->second;
    }

    // ---- added tokens -----------------------------------------------------------------------

    bool word_char_at(const std::string& s, size_t i) const {
        MatchData m(*word_char);
        return pcre2_match(word_char->code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), i,
                           PCRE2_ANCHORED | PCRE2_NO_UTF_CHECK, m.md, nullptr) >= 0;
    }

    struct Piece {
        size_t start, end;
        int64_t added = -1;  // index into `added`, or -1 for plain text
    };

    // One pass of `tokenizers`' find_matches over text[ps, pe) with the tokens `which`.
    void split_added(const std::string& text, size_t ps, size_t pe, const AddedTrie& which, std::vector<Piece>& out) const {
        if (which.empty() || ps == pe) {
            out.push_back({ps, pe, -1});
            return;
        }
        size_t taken = ps;  // end of the previous match
        size_t pos = ps;
        while (pos < pe) {
            // leftmost-longest match at or after pos
            size_t best_at = pe, best_len = 0;
            int64_t best = -1;
            for (size_t i = pos; i < pe && best < 0; ++i) {
                best = which.longest(text, i, pe, best_len);
                best_at = i;
            }
            if (best < 0) break;
            const AddedToken& tok = added[size_t(best)];
            size_t start = best_at, stop = best_at + best_len;
            pos = stop;  // the search goes on after this match even if it is discarded
            if (tok.single_word) {
                const bool start_ok = start == ps || !word_char_at(text, prev_char_start(text, start));
                const bool stop_ok = stop == pe || !word_char_at(text, stop);
                if (!start_ok || !stop_ok) continue;
            }
            if (tok.lstrip) {
                size_t s = start;
                while (s > ps) {
                    const size_t p = prev_char_start(text, s);
                    if (!is_white_space(decode_at(text, p))) break;
                    s = p;
                }
                start = std::max(s, taken);
            }
            if (tok.rstrip) {
                while (stop < pe) {
                    size_t n;
                    if (!is_white_space(decode_at(text, stop, &n))) break;
                    stop += n;
                }
                pos = stop;
            }
            if (taken < start) out.push_back({taken, start, -1});
            out.push_back({start, stop, best});
            taken = stop;
        }
        if (taken < pe) out.push_back({taken, pe, -1});
    }

    std::vector<Piece> split_all_added(const std::string& text) const {
        std::vector<Piece> first, second;
        split_added(text, 0, text.size(), added_raw, first);
        for (const Piece& p : first) {
            if (p.added >= 0)
                second.push_back(p);
            else
                split_added(text, p.start, p.end, added_norm, second);
        }
        return second;
    }

    // ---- pre-tokenizer ----------------------------------------------------------------------

    void pre_tokenize(const std::string& text, size_t ps, size_t pe, MatchData& m,
                      std::vector<std::pair<size_t, size_t>>& out, bool whole = false) const {
        if (!use_regex || whole) {
            if (ps < pe) out.emplace_back(ps, pe);
            return;
        }
        const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data() + ps);
        const size_t len = pe - ps;
        size_t at = 0;
        while (at < len) {
            const int rc = pcre2_match(pattern->code, subject, len, at, PCRE2_NO_UTF_CHECK, m.md, nullptr);
            if (rc < 0) {
                if (rc != PCRE2_ERROR_NOMATCH) throw Error("tokenizer: pattern match failed (" + std::to_string(rc) + ")");
                break;
            }
            const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(m.md);
            size_t s = ov[0], e = ov[1];
            if (s > at) out.emplace_back(ps + at, ps + s);  // text between matches stays a piece
            if (e == s) {                                     // cannot happen with this pattern
                size_t n;
                decode_at(text, ps + s, &n);
                e = s + n;
            }
            out.emplace_back(ps + s, ps + e);
            at = e;
        }
        if (at < len) out.emplace_back(ps + at, pe);
    }

    // ---- BPE --------------------------------------------------------------------------------

    // BPE of the word `word`[ws, we); a token's [start, end) are positions in `word`.
    void bpe(const std::string& word, size_t ws, size_t we, std::vector<Tok>& out) const {
        const std::string& text = word;
        if (ignore_merges) {
            auto it = bytes_to_id.find(text.substr(ws, we - ws));
            if (it != bytes_to_id.end()) {
                out.push_back({it->second, int64_t(ws), int64_t(we), 0, 0});
                return;
            }
        }
        struct Sym {
            int64_t id;
            size_t start, end;
            int prev, next;
            bool alive;
        };
        std::vector<Sym> sym;
        sym.reserve(we - ws);
        for (size_t i = ws; i < we; ++i) {
            int64_t id = byte_id[static_cast<unsigned char>(text[i])];
            if (id < 0) id = model_unk;
            if (id < 0) continue;  // no token for this byte and no unk: `tokenizers` drops it
            sym.push_back({id, i, i + 1, int(sym.size()) - 1, int(sym.size()) + 1, true});
        }
        if (sym.empty()) return;
        sym.back().next = -1;
        if (sym.size() > 1) {
            struct Cand {
                int32_t rank;
                int pos;
                int32_t id;
                bool operator<(const Cand& o) const {  // min-heap on (rank, pos)
                    return rank != o.rank ? rank > o.rank : pos > o.pos;
                }
            };
            std::priority_queue<Cand> heap;
            auto push = [&](int left) {
                const int right = sym[size_t(left)].next;
                if (right < 0) return;
                auto it = merges.find(key(sym[size_t(left)].id, sym[size_t(right)].id));
                if (it != merges.end()) heap.push({it->second.rank, left, it->second.id});
            };
            for (int i = 0; i + 1 < int(sym.size()); ++i) push(i);
            while (!heap.empty()) {
                const Cand c = heap.top();
                heap.pop();
                Sym& l = sym[size_t(c.pos)];
                if (!l.alive || l.next < 0) continue;
                Sym& r = sym[size_t(l.next)];
                auto it = merges.find(key(l.id, r.id));
                if (it == merges.end() || it->second.rank != c.rank || it->second.id != c.id) continue;  // stale
                l.id = c.id;
                l.end = r.end;
                r.alive = false;
                l.next = r.next;
                if (r.next >= 0) sym[size_t(r.next)].prev = c.pos;
                if (l.prev >= 0) push(l.prev);
                push(c.pos);
            }
        }
        for (int i = 0; i >= 0; i = sym[size_t(i)].next)
            out.push_back({sym[size_t(i)].id, int64_t(sym[size_t(i)].start), int64_t(sym[size_t(i)].end), 0, 0});
    }

    // ---- one sequence -----------------------------------------------------------------------

    std::vector<Tok> tokenize(const std::string& text) const {
        std::vector<Tok> toks;
        MatchData m(*pattern);
        std::vector<std::pair<size_t, size_t>> words;
        std::string prefixed;
        for (const Piece& p : split_all_added(text)) {
            if (p.added >= 0) {  // the token's text is the matched text, stripped spaces included
                Tok t{added[size_t(p.added)].id, int64_t(p.start), int64_t(p.end), 0, 0};
                size_t i = p.start;
                for (size_t n; i < p.end && is_trimmed_space(decode_at(text, i, &n)); i += n) ++t.lead;
                for (size_t j = p.end; j > p.start && is_trimmed_space(decode_at(text, prev_char_start(text, j)));
                     j = prev_char_start(text, j))
                    ++t.trail;
                toks.push_back(t);
                continue;
            }
            if (p.start == p.end) continue;
            // add_prefix_space: the piece is cut and BPE'd as " " + piece, the space standing at the
            // piece's first character (`tokenizers` aligns a prepended character with the next one).
            const bool prefix = add_prefix_space && text[p.start] != ' ';
            if (prefix) prefixed = " " + text.substr(p.start, p.end - p.start);
            const std::string& word = prefix ? prefixed : text;
            const size_t base = p.start;
            words.clear();
            pre_tokenize(word, prefix ? 0 : p.start, prefix ? prefixed.size() : p.end, m, words);
            for (const auto& w : words) {
                const size_t first = toks.size();
                bpe(word, w.first, w.second, toks);
                for (size_t k = first; k < toks.size(); ++k) {
                    Tok& t = toks[k];
                    // spaces of the token's own bytes ('Ġ' is the only byte-level character that is one)
                    while (t.start + t.lead < t.end && word[size_t(t.start + t.lead)] == ' ') ++t.lead;
                    while (t.end - t.trail > t.start && word[size_t(t.end - 1 - t.trail)] == ' ') ++t.trail;
                    if (prefix) {
                        t.start = t.start == 0 ? int64_t(base) : int64_t(base) + t.start - 1;
                        t.end = std::max(int64_t(base) + t.end - 1, t.start + 1);
                    }
                    // widen to whole characters
                    size_t s = size_t(t.start), e = size_t(t.end);
                    while (s > 0 && (static_cast<unsigned char>(text[s]) & 0xC0) == 0x80) --s;
                    while (e < text.size() && (static_cast<unsigned char>(text[e]) & 0xC0) == 0x80) ++e;
                    t.start = int64_t(s);
                    t.end = int64_t(e);
                }
            }
        }
        return toks;
    }

    static bool is_trimmed_space(uint32_t cp) { return is_white_space(cp) || cp == 0x120; }

    // `tokenizers`' process_offsets on one sequence's tokens: drop the leading / trailing spaces
    // (counted in characters) from the offsets, except the single space add_prefix_space put
    // before the sequence's first token.
    void trim_offsets(const std::string& text, std::vector<Tok>& toks) const {
        for (size_t k = 0; k < toks.size(); ++k) {
            Tok& t = toks[k];
            int32_t lead = t.lead;
            if (lead == 1 && post.keep_first_prefix_space && (k == 0 || t.start == 0)) lead = 0;
            int64_t s = t.start, e = t.end;
            for (int32_t i = 0; i < lead && s < e; ++i) s += int64_t(utf8_len(static_cast<unsigned char>(text[size_t(s)])));
            s = std::min(s, e);
            for (int32_t i = 0; i < t.trail && e > s; ++i) e = int64_t(prev_char_start(text, size_t(e)));
            t.start = s;
            t.end = std::max(e, s);
        }
    }
};

// --------------------------------------------------------------------------------- construction

BpeTokenizer::BpeTokenizer(const Json& vocab, const std::string& merges_txt, const Json& tokenizer_json,
                           const Json& tokenizer_config) {
    TokenizerSpec spec = read_tokenizer_spec(vocab, merges_txt, tokenizer_json, tokenizer_config);
    auto impl = std::make_shared<Impl>();
    Impl& t = *impl;
    t.token_to_id = std::move(spec.token_to_id);
    std::string bytes;
    for (const auto& [token, id] : spec.vocab) {
        const bool plain = byte_level_to_bytes(token, bytes);
        t.set_token(id, token, plain ? bytes : token);
        if (plain) t.bytes_to_id.emplace(bytes, id);
    }
    const auto& bl = byte_level();
    for (int b = 0; b < 256; ++b) {
        std::string ch;
        append_utf8(ch, bl.to_cp[size_t(b)]);
        t.byte_id[size_t(b)] = t.find(ch);
    }
    if (!spec.model_unk.empty()) t.model_unk = t.find(spec.model_unk);
    for (size_t r = 0; r < spec.merges.size(); ++r) {
        const auto& [a, b] = spec.merges[r];
        t.merges[Impl::key(t.find(a), t.find(b))] = {int32_t(r), int32_t(t.find(a + b))};  // a repeated merge keeps its last rank
    }
    for (const AddedToken& a : spec.added) {
        t.set_token(a.id, a.content, a.content);
        std::string raw;
        if (byte_level_to_bytes(a.content, raw)) t.id_bytes[size_t(a.id)] = raw;  // decoded like any token
        t.id_special[size_t(a.id)] = a.special;
        (a.normalized ? t.added_norm : t.added_raw).insert(a.content, int64_t(t.added.size()));
        t.added.push_back(a);
    }
    t.ignore_merges = spec.ignore_merges;
    t.use_regex = spec.use_regex;
    t.add_prefix_space = spec.add_prefix_space;
    t.post = std::move(spec.post);
    t.bos = spec.bos;
    t.eos = spec.eos;
    t.pad = spec.pad;
    t.unk = spec.unk;
    t.mask = spec.mask;
    t.cls = spec.cls;
    t.sep = spec.sep;

    t.pattern = std::make_unique<Regex>(kGpt2Pattern, PCRE2_UTF | PCRE2_UCP);
    try {
        t.word_char = std::make_unique<Regex>(kWordChar, PCRE2_UTF | PCRE2_UCP);
    } catch (const Error&) {
        t.word_char = std::make_unique<Regex>("\\w", PCRE2_UTF | PCRE2_UCP);
    }
    impl_ = std::move(impl);
}

// ------------------------------------------------------------------------------------- encoding

namespace {

// `tokenizers`' truncate_encodings on the sequences' own tokens; throws where it errors.
bool truncate(std::vector<Tok>& a, std::vector<Tok>* b, int64_t max_len, const std::string& strategy) {
    const size_t n_a = a.size(), n_b = b ? b->size() : 0;
    const size_t max = size_t(std::max<int64_t>(max_len, 0));
    if (max == 0) {
        const bool cut = n_a + n_b > 0;
        a.clear();
        if (b) b->clear();
        return cut;
    }
    if (n_a + n_b <= max) return false;
    const size_t to_remove = n_a + n_b - max;
    if (strategy == "longest_first") {
        if (!b) {
            a.resize(n_a - to_remove);
            return true;
        }
        size_t n1 = n_a, n2 = n_b;
        const bool swap = n1 > n2;
        if (swap) std::swap(n1, n2);
        n2 = n1 > max ? n1 : std::max(n1, max - n1);
        if (n1 + n2 > max) {
            n1 = max / 2;
            n2 = n1 + max % 2;
        }
        if (swap) std::swap(n1, n2);
        if (a.size() > n1) a.resize(n1);
        if (b->size() > n2) b->resize(n2);
        return true;
    }
    std::vector<Tok>* target = strategy == "only_first" ? &a : b;
    if (!target) throw Error("tokenizer: truncation=only_second needs a second sequence");
    if (target->size() <= to_remove)
        throw Error("tokenizer: the " + std::string(target == &a ? "first" : "second") + " sequence (" +
                    std::to_string(target->size()) + " tokens) is too short to cut " + std::to_string(to_remove) +
                    " tokens for max_length " + std::to_string(max_len) + " with truncation=" + strategy);
    target->resize(target->size() - to_remove);
    return true;
}

}  // namespace

// Truncation, offset trimming and the post-processor's template, in `tokenizers`' order.
static Encoding build(const BpeTokenizer::Impl& t, std::vector<Tok> a, const std::string& text_a, std::vector<Tok>* b,
                      const std::string& text_b, const EncodeOptions& o) {
    const std::string& strat = o.truncation;
    if (strat != "longest_first" && strat != "only_first" && strat != "only_second" && strat != "none")
        throw Error("tokenizer: unknown truncation '" + strat + "' (longest_first, only_first, only_second, none)");
    const auto& templ = b ? t.post.pair : t.post.single;
    const int64_t n_special =
        o.add_special_tokens ? int64_t(std::count_if(templ.begin(), templ.end(), [](const auto& i) { return i.sequence < 0; })) : 0;
    bool truncated = false;
    if (o.max_length > 0) {
        const int64_t total = int64_t(a.size() + (b ? b->size() : 0)) + n_special;
        if (strat == "none") {
            if (total > o.max_length)
                throw Error("tokenizer: input is " + std::to_string(total) + " tokens, more than max_length " +
                            std::to_string(o.max_length) + " (truncation=none)");
        } else {
            truncated = truncate(a, b, o.max_length - n_special, strat);
        }
    }
    if (t.post.trim_offsets) {
        t.trim_offsets(text_a, a);
        if (b) t.trim_offsets(text_b, *b);
    }
    Encoding e;
    e.truncated = truncated;
    auto put = [&](int64_t id, std::pair<int64_t, int64_t> offsets, int sequence, int64_t type_id) {
        e.input_ids.push_back(id);
        e.offsets.push_back(offsets);
        e.sequence_ids.push_back(sequence);
        e.token_type_ids.push_back(type_id);
    };
    auto put_sequence = [&](int sequence, int64_t type_id) {
        for (const Tok& k : sequence == 0 ? a : *b) put(k.id, {k.start, k.end}, sequence, type_id);
    };
    if (o.add_special_tokens) {
        for (const auto& item : templ) {
            if (item.sequence < 0)
                put(item.special_id, {0, 0}, -1, item.type_id);
            else
                put_sequence(item.sequence, item.type_id);
        }
    } else {
        put_sequence(0, 0);
        if (b) put_sequence(1, t.post.second_type_id);
    }
    e.attention_mask.assign(e.input_ids.size(), 1);
    return e;
}

Encoding BpeTokenizer::encode(const std::string& text, const EncodeOptions& o) const {
    const std::string clean = sanitize_utf8(text);
    return build(*impl_, impl_->tokenize(clean), clean, nullptr, "", o);
}

Encoding BpeTokenizer::encode_pair(const std::string& first, const std::string& second, const EncodeOptions& o) const {
    const std::string clean_a = sanitize_utf8(first), clean_b = sanitize_utf8(second);
    std::vector<Tok> b = impl_->tokenize(clean_b);
    return build(*impl_, impl_->tokenize(clean_a), clean_a, &b, clean_b, o);
}

std::string BpeTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
    const Impl& t = *impl_;
    std::string bytes;
    for (int64_t id : ids) {
        if (id < 0 || id >= int64_t(t.id_valid.size()) || !t.id_valid[size_t(id)]) continue;
        if (skip_special_tokens && t.id_special[size_t(id)]) continue;
        bytes += t.id_bytes[size_t(id)];
    }
    return sanitize_utf8(bytes);
}

std::vector<std::pair<size_t, size_t>> BpeTokenizer::pre_tokenize(const std::string& text) const {
    std::vector<std::pair<size_t, size_t>> out;
    const std::string clean = sanitize_utf8(text);
    MatchData m(*impl_->pattern);
    impl_->pre_tokenize(clean, 0, clean.size(), m, out);
    return out;
}

int64_t BpeTokenizer::token_to_id(const std::string& token) const { return impl_->find(token); }

const std::string& BpeTokenizer::id_to_token(int64_t id) const {
    if (id < 0 || id >= int64_t(impl_->id_valid.size()) || !impl_->id_valid[size_t(id)])
        throw Error("tokenizer: no token has id " + std::to_string(id));
    return impl_->id_to_token[size_t(id)];
}

int64_t BpeTokenizer::bos_id() const { return impl_->bos; }
int64_t BpeTokenizer::eos_id() const { return impl_->eos; }
int64_t BpeTokenizer::pad_id() const { return impl_->pad; }
int64_t BpeTokenizer::unk_id() const { return impl_->unk; }
int64_t BpeTokenizer::mask_id() const { return impl_->mask; }
int64_t BpeTokenizer::cls_id() const { return impl_->cls; }
int64_t BpeTokenizer::sep_id() const { return impl_->sep; }
int64_t BpeTokenizer::vocab_size() const { return int64_t(impl_->id_to_token.size()); }
const std::vector<AddedToken>& BpeTokenizer::added_tokens() const { return impl_->added; }
bool BpeTokenizer::is_special(int64_t id) const {
    return id >= 0 && id < int64_t(impl_->id_special.size()) && impl_->id_special[size_t(id)];
}

}  // namespace d2v::text
