// RoBERTa byte-level BPE, natively (see include/d2v/text/tokenizer.h for the pipeline).
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
//    'Ġ' (byte 0x20) in a BPE token, White_Space or U+0120 in an added token's matched text.
//  * Truncation (`tokenizers`' truncate_encodings) shares out m = max_length - special tokens.
//    longest_first on a pair: if the shorter side (n1 tokens, the first on a tie) has
//    n1 <= m - n1, the longer keeps m - n1; otherwise the shorter keeps floor(m/2) and the longer
//    ceil(m/2) (so with equal lengths the second side keeps the odd token, where the slow Python
//    tokenizer's one-at-a-time removal gives it to the first). only_first / only_second cut that
//    side alone and fail if it is too short.
#include "d2v/text/tokenizer.h"

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

std::string token_name(const Json& config, const char* key, const char* fallback) {
    if (config.is_object() && config.contains(key)) {
        const Json& v = config[key];
        if (v.is_string()) return v.get<std::string>();
        if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
        if (v.is_null()) return "";
    }
    return fallback;
}

template <class T>
T json_value(const Json& j, const char* key, const T& fallback) {
    if (j.is_object() && j.contains(key) && !j[key].is_null()) return j[key].get<T>();
    return fallback;
}

struct Tok {
    int64_t id;
    int64_t start, end;  // bytes into the sanitised text
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
    std::vector<size_t> added_raw, added_norm;  // indices into `added`, by pass
    std::array<bool, 256> added_first_byte{};
    int64_t bos = -1, eos = -1, pad = -1, unk = -1, mask = -1, cls = -1, sep = -1;
    int64_t model_unk = -1;  // BPE's own unk_token (none in RoBERTa: unknown bytes are dropped)
    bool trim_offsets = true, ignore_merges = false, use_regex = true;
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
    void split_added(const std::string& text, size_t ps, size_t pe, const std::vector<size_t>& which,
                     std::vector<Piece>& out) const {
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
                if (!added_first_byte[static_cast<unsigned char>(text[i])]) continue;
                for (size_t t : which) {
                    const std::string& c = added[t].content;
                    if (c.size() > best_len && c.size() <= pe - i && text.compare(i, c.size(), c) == 0) {
                        best = int64_t(t);
                        best_len = c.size();
                        best_at = i;
                    }
                }
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
                      std::vector<std::pair<size_t, size_t>>& out) const {
        if (!use_regex) {
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

    void bpe(const std::string& text, size_t ws, size_t we, std::vector<Tok>& out) const {
        if (ignore_merges) {
            auto it = bytes_to_id.find(text.substr(ws, we - ws));
            if (it != bytes_to_id.end()) {
                out.push_back({it->second, int64_t(ws), int64_t(we)});
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
            out.push_back({sym[size_t(i)].id, int64_t(sym[size_t(i)].start), int64_t(sym[size_t(i)].end)});
    }

    // ---- one sequence -----------------------------------------------------------------------

    std::vector<Tok> tokenize(const std::string& text) const {
        std::vector<Tok> toks;
        MatchData m(*pattern);
        std::vector<std::pair<size_t, size_t>> words;
        for (const Piece& p : split_all_added(text)) {
            if (p.added >= 0) {
                int64_t s = int64_t(p.start), e = int64_t(p.end);
                if (trim_offsets) {  // the token's text is the matched text, stripped spaces included
                    int64_t lead = 0, trail = 0;
                    size_t i = p.start;
                    while (i < p.end) {
                        size_t n;
                        const uint32_t cp = decode_at(text, i, &n);
                        if (!(is_white_space(cp) || cp == 0x120)) break;
                        lead += int64_t(n);
                        i += n;
                    }
                    size_t j = p.end;
                    while (j > p.start) {
                        const size_t q = prev_char_start(text, j);
                        const uint32_t cp = decode_at(text, q);
                        if (!(is_white_space(cp) || cp == 0x120)) break;
                        trail += int64_t(j - q);
                        j = q;
                    }
                    trim(s, e, lead, trail);
                }
                toks.push_back({added[size_t(p.added)].id, s, e});
                continue;
            }
            words.clear();
            pre_tokenize(text, p.start, p.end, m, words);
            for (const auto& w : words) {
                const size_t first = toks.size();
                bpe(text, w.first, w.second, toks);
                for (size_t k = first; k < toks.size(); ++k) {
                    Tok& t = toks[k];
                    // leading / trailing spaces of the token's own bytes (before widening)
                    int64_t lead = 0, trail = 0;
                    while (t.start + lead < t.end && text[size_t(t.start + lead)] == ' ') ++lead;
                    while (t.end - trail > t.start && text[size_t(t.end - 1 - trail)] == ' ') ++trail;
                    // widen to whole characters
                    size_t s = size_t(t.start), e = size_t(t.end);
                    while (s > 0 && (static_cast<unsigned char>(text[s]) & 0xC0) == 0x80) --s;
                    while (e < text.size() && (static_cast<unsigned char>(text[e]) & 0xC0) == 0x80) ++e;
                    t.start = int64_t(s);
                    t.end = int64_t(e);
                    if (trim_offsets) trim(t.start, t.end, lead, trail);
                }
            }
        }
        return toks;
    }

    // `tokenizers`' process_offsets (lengths already in bytes; spaces are whole characters)
    static void trim(int64_t& s, int64_t& e, int64_t lead, int64_t trail) {
        if (lead > 0) s = std::min(s + lead, e);
        if (trail > 0 && e >= trail) e = std::max(e - trail, s);
    }
};

// --------------------------------------------------------------------------------- construction

BpeTokenizer::BpeTokenizer(const Json& vocab_in, const std::string& merges_txt, const Json& tokenizer_json,
                           const Json& tokenizer_config) {
    auto impl = std::make_shared<Impl>();
    Impl& t = *impl;
    const Json empty_object = Json::object();
    const Json& tj = tokenizer_json.is_object() ? tokenizer_json : empty_object;
    const Json& cfg = tokenizer_config.is_object() ? tokenizer_config : empty_object;
    const Json& model = tj.contains("model") && tj["model"].is_object() ? tj["model"] : empty_object;

    if (model.contains("type") && model["type"].is_string() && model["type"] != "BPE")
        throw Error("tokenizer: tokenizer.json model type " + model["type"].get<std::string>() + " is not BPE");
    for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
        if (!json_value<std::string>(model, k, "").empty())
            throw Error(std::string("tokenizer: BPE ") + k + " is not supported (not a byte-level BPE)");
    if (json_value<bool>(model, "byte_fallback", false)) throw Error("tokenizer: BPE byte_fallback is not supported");
    if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"].get<double>() > 0)
        throw Error("tokenizer: BPE dropout is not supported at inference");
    t.ignore_merges = json_value<bool>(model, "ignore_merges", false);

    // vocab: vocab.json, else tokenizer.json's model.vocab
    const Json* vocab = &vocab_in;
    if (!vocab->is_object() || vocab->empty()) {
        if (model.contains("vocab") && model["vocab"].is_object())
            vocab = &model["vocab"];
        else
            throw Error("tokenizer: no vocabulary (vocab.json or tokenizer.json model.vocab)");
    }
    std::string bytes;
    for (auto it = vocab->begin(); it != vocab->end(); ++it) {
        if (!it.value().is_number_integer()) throw Error("tokenizer: vocab entry '" + it.key() + "' has no integer id");
        const int64_t id = it.value().get<int64_t>();
        const bool plain = byte_level_to_bytes(it.key(), bytes);
        t.set_token(id, it.key(), plain ? bytes : it.key());
        t.token_to_id[it.key()] = id;
        if (plain) t.bytes_to_id.emplace(bytes, id);
    }
    const auto& bl = byte_level();
    for (int b = 0; b < 256; ++b) {
        std::string ch;
        append_utf8(ch, bl.to_cp[size_t(b)]);
        t.byte_id[size_t(b)] = t.find(ch);
    }
    if (model.contains("unk_token") && model["unk_token"].is_string()) t.model_unk = t.find(model["unk_token"].get<std::string>());

    // merges: merges.txt, else tokenizer.json's model.merges
    std::vector<std::pair<std::string, std::string>> merge_list;
    auto split_merge = [&](const std::string& line, size_t lineno) {
        const size_t sp = line.find(' ');
        if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos)
            throw Error("tokenizer: merges line " + std::to_string(lineno) + " is not 'a b': '" + line + "'");
        merge_list.emplace_back(line.substr(0, sp), line.substr(sp + 1));
    };
    if (!merges_txt.empty()) {
        size_t pos = 0, lineno = 0;
        while (pos < merges_txt.size()) {
            size_t nl = merges_txt.find('\n', pos);
            if (nl == std::string::npos) nl = merges_txt.size();
            std::string line = merges_txt.substr(pos, nl - pos);
            pos = nl + 1;
            ++lineno;
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line.empty() || line.rfind("#version", 0) == 0) continue;
            split_merge(line, lineno);
        }
    } else if (model.contains("merges") && model["merges"].is_array()) {
        size_t lineno = 0;
        for (const Json& m : model["merges"]) {
            ++lineno;
            if (m.is_string())
                split_merge(m.get<std::string>(), lineno);
            else if (m.is_array() && m.size() == 2)
                merge_list.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
            else
                throw Error("tokenizer: tokenizer.json merge " + std::to_string(lineno) + " is malformed");
        }
    } else {
        throw Error("tokenizer: no merges (merges.txt or tokenizer.json model.merges)");
    }
    for (size_t r = 0; r < merge_list.size(); ++r) {
        const auto& [a, b] = merge_list[r];
        const int64_t ia = t.find(a), ib = t.find(b), ic = t.find(a + b);
        if (ia < 0 || ib < 0) throw Error("tokenizer: merge '" + a + " " + b + "' uses a token missing from the vocabulary");
        if (ic < 0) throw Error("tokenizer: merge '" + a + " " + b + "' makes a token missing from the vocabulary");
        t.merges[Impl::key(ia, ib)] = {int32_t(r), int32_t(ic)};  // a repeated merge keeps its last rank
    }

    // pre-tokenizer / post-processor settings (RobertaTokenizer: ByteLevel + RobertaProcessing)
    const Json& pre = tj.contains("pre_tokenizer") && tj["pre_tokenizer"].is_object() ? tj["pre_tokenizer"] : empty_object;
    const Json& post = tj.contains("post_processor") && tj["post_processor"].is_object() ? tj["post_processor"] : empty_object;
    const bool add_prefix_space =
        json_value<bool>(cfg, "add_prefix_space", json_value<bool>(pre, "add_prefix_space", false));
    if (add_prefix_space) throw Error("tokenizer: add_prefix_space=true is not supported (RoBERTa uses false)");
    t.use_regex = json_value<bool>(pre, "use_regex", true);
    t.trim_offsets = json_value<bool>(cfg, "trim_offsets", json_value<bool>(post, "trim_offsets", true));

    // special tokens
    const std::string bos = token_name(cfg, "bos_token", "<s>"), eos = token_name(cfg, "eos_token", "</s>"),
                      pad = token_name(cfg, "pad_token", "<pad>"), unk = token_name(cfg, "unk_token", "<unk>"),
                      mask = token_name(cfg, "mask_token", "<mask>"), cls = token_name(cfg, "cls_token", "<s>"),
                      sep = token_name(cfg, "sep_token", "</s>");

    // added tokens: tokenizer.json's list, then tokenizer_config's added_tokens_decoder (whose flags
    // win for the same content), then any named special token still missing (<mask> lstrip=True as
    // RoBERTa's). The post-processor uses cls_token / sep_token by name, as RobertaTokenizer does.
    std::vector<AddedToken> added;
    auto parse_added = [](const Json& j, int64_t id) {
        AddedToken a;
        a.id = id;
        if (!j.is_object() || !j.contains("content") || !j["content"].is_string())
            throw Error("tokenizer: an added token has no content: " + j.dump());
        a.content = j["content"].get<std::string>();
        a.single_word = json_value<bool>(j, "single_word", false);
        a.lstrip = json_value<bool>(j, "lstrip", false);
        a.rstrip = json_value<bool>(j, "rstrip", false);
        a.normalized = json_value<bool>(j, "normalized", true);
        a.special = json_value<bool>(j, "special", false);
        return a;
    };
    auto put = [&](AddedToken a) {
        for (auto& x : added)
            if (x.content == a.content) {
                x = std::move(a);
                return;
            }
        added.push_back(std::move(a));
    };
    if (tj.contains("added_tokens") && tj["added_tokens"].is_array())
        for (const Json& j : tj["added_tokens"]) put(parse_added(j, -1));
    if (cfg.contains("added_tokens_decoder") && cfg["added_tokens_decoder"].is_object())
        for (auto it = cfg["added_tokens_decoder"].begin(); it != cfg["added_tokens_decoder"].end(); ++it)
            put(parse_added(it.value(), -1));
    std::vector<std::string> named = {bos, eos, unk, sep, pad, cls, mask};
    if (cfg.contains("additional_special_tokens") && cfg["additional_special_tokens"].is_array())
        for (const Json& j : cfg["additional_special_tokens"])
            named.push_back(j.is_string() ? j.get<std::string>() : j.value("content", std::string()));
    for (const std::string& name : named) {
        if (name.empty()) continue;
        bool have = false;
        for (const auto& x : added) have = have || x.content == name;
        if (have) continue;
        AddedToken a;
        a.content = name;
        a.special = true;
        if (name == mask) {
            a.lstrip = true;
            const Json& mj = cfg.contains("mask_token") ? cfg["mask_token"] : empty_object;
            if (mj.is_object()) {
                a.lstrip = json_value<bool>(mj, "lstrip", true);
                a.rstrip = json_value<bool>(mj, "rstrip", false);
                a.single_word = json_value<bool>(mj, "single_word", false);
                a.normalized = json_value<bool>(mj, "normalized", true);
            }
        }
        added.push_back(std::move(a));
    }
    // Ids as `tokenizers` gives them when it adds the tokens in order: the id the content already
    // has (vocabulary or an earlier added token), else the next free id after the vocabulary. The
    // ids written in tokenizer.json are not used (`tokenizers` only warns when they differ).
    const int64_t model_size = int64_t(vocab->size());
    int64_t max_added = -1;
    for (auto& a : added) {
        if (a.content.empty()) continue;
        a.id = t.find(a.content);
        if (a.id < 0)
            a.id = max_added < 0 ? model_size : (max_added >= model_size || model_size == 0) ? max_added + 1 : model_size;
        max_added = std::max(max_added, a.id);
        t.set_token(a.id, a.content, a.content);
        std::string raw;
        if (byte_level_to_bytes(a.content, raw)) t.id_bytes[size_t(a.id)] = raw;  // decoded like any token
        t.token_to_id[a.content] = a.id;
        t.id_special[size_t(a.id)] = a.special;
        t.added_first_byte[static_cast<unsigned char>(a.content[0])] = true;
        (a.normalized ? t.added_norm : t.added_raw).push_back(t.added.size());
        t.added.push_back(a);
    }

    t.bos = t.find(bos);
    t.eos = t.find(eos);
    t.pad = t.find(pad);
    t.unk = t.find(unk);
    t.mask = t.find(mask);
    t.cls = t.find(cls);
    t.sep = t.find(sep);
    if (t.cls < 0 || t.sep < 0) throw Error("tokenizer: the cls / sep tokens ('" + cls + "', '" + sep + "') are not in the vocabulary");

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

static Encoding build(const BpeTokenizer::Impl& t, std::vector<Tok> a, std::vector<Tok>* b, const EncodeOptions& o) {
    const std::string& strat = o.truncation;
    if (strat != "longest_first" && strat != "only_first" && strat != "only_second" && strat != "none")
        throw Error("tokenizer: unknown truncation '" + strat + "' (longest_first, only_first, only_second, none)");
    const int64_t n_special = o.add_special_tokens ? (b ? 4 : 2) : 0;
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
    Encoding e;
    e.truncated = truncated;
    auto special = [&](int64_t id) {
        e.input_ids.push_back(id);
        e.offsets.emplace_back(0, 0);
        e.sequence_ids.push_back(-1);
    };
    auto seq = [&](const std::vector<Tok>& toks, int sid) {
        for (const Tok& k : toks) {
            e.input_ids.push_back(k.id);
            e.offsets.emplace_back(k.start, k.end);
            e.sequence_ids.push_back(sid);
        }
    };
    if (o.add_special_tokens) special(t.cls);
    seq(a, 0);
    if (o.add_special_tokens) special(t.sep);
    if (b) {
        if (o.add_special_tokens) special(t.sep);
        seq(*b, 1);
        if (o.add_special_tokens) special(t.sep);
    }
    e.attention_mask.assign(e.input_ids.size(), 1);
    e.token_type_ids.assign(e.input_ids.size(), 0);
    return e;
}

Encoding BpeTokenizer::encode(const std::string& text, const EncodeOptions& o) const {
    return build(*impl_, impl_->tokenize(sanitize_utf8(text)), nullptr, o);
}

Encoding BpeTokenizer::encode_pair(const std::string& first, const std::string& second, const EncodeOptions& o) const {
    std::vector<Tok> b = impl_->tokenize(sanitize_utf8(second));
    return build(*impl_, impl_->tokenize(sanitize_utf8(first)), &b, o);
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
