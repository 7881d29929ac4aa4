// Greedy CTC decoding as Wav2Vec2CTCTokenizer.decode does it: argmax per frame, collapse repeats,
// drop the pad (blank) token, word delimiter -> space, strip. Special tokens other than pad are
// kept (skip_special_tokens defaults to false).
#pragma once
#include <algorithm>

#include "d2v/model_file.h"

namespace d2v::audio {

class CtcDecoder {
public:
    // vocab: {"token": id}; tokenizer_config: tokenizer_config.json (may be null).
    CtcDecoder(const Json& vocab, const Json& tokenizer_config, int64_t vocab_size) {
        if (!vocab.is_object() || vocab.empty())
            throw Error("model file has no CTC vocabulary (vocab.json was not in the checkpoint folder)");
        tokens_.assign(size_t(vocab_size), "");
        for (auto& [token, id] : vocab.items()) {
            const int64_t i = id.get<int64_t>();
            if (i < 0 || i >= vocab_size) throw Error("vocab.json id " + std::to_string(i) + " for '" + token + "' is outside the model's vocab_size");
            tokens_[size_t(i)] = token;
        }
        auto text = [&](const char* key, const std::string& fallback) {
            if (!tokenizer_config.is_object()) return fallback;
            auto it = tokenizer_config.find(key);
            if (it == tokenizer_config.end() || it->is_null()) return fallback;
            if (it->is_object()) return it->value("content", fallback);  // AddedToken form
            return it->get<std::string>();
        };
        pad_ = text("pad_token", "<pad>");
        delimiter_ = text("word_delimiter_token", "|");
        replacement_ = text("replace_word_delimiter_char", " ");
    }

    // ids of the blank (pad) token and the word delimiter; -1 if the vocabulary lacks them
    int64_t pad_id() const { return id_of(pad_); }
    int64_t delimiter_id() const { return id_of(delimiter_); }

    std::string decode(const std::vector<int64_t>& ids) const {
        std::string out;
        int64_t previous = -1;
        for (int64_t id : ids) {
            if (id == previous) continue;
            previous = id;
            const std::string& token = tokens_.at(size_t(id));
            if (token == pad_) continue;
            out += token == delimiter_ ? replacement_ : token;
        }
        const auto first = out.find_first_not_of(" \t\n\r\f\v");
        if (first == std::string::npos) return "";
        return out.substr(first, out.find_last_not_of(" \t\n\r\f\v") - first + 1);
    }

    // Wav2Vec2CTCTokenizer.decode(ids, output_word_offsets=True)["word_offsets"]: a word spans from
    // the first frame of its first character's run to the end of its last character's run (blanks
    // between characters inside the word count to it; blanks around it do not). Frames, end exclusive.
    struct WordOffset {
        std::string word;
        int64_t start = 0, end = 0;
    };
    std::vector<WordOffset> word_offsets(const std::vector<int64_t>& ids) const {
        std::vector<WordOffset> words;
        bool in_word = false;
        for (size_t i = 0; i < ids.size();) {
            size_t j = i;
            while (j < ids.size() && ids[j] == ids[i]) ++j;  // one run of a repeated id = one character
            const std::string& token = tokens_.at(size_t(ids[i]));
            const int64_t start = int64_t(i), end = int64_t(j);
            i = j;
            if (token == pad_) continue;
            const std::string ch = token == delimiter_ ? replacement_ : token;
            if (ch == replacement_) {
                in_word = false;
            } else if (in_word) {
                words.back().word += ch;
                words.back().end = end;
            } else {
                words.push_back({ch, start, end});
                in_word = true;
            }
        }
        return words;
    }

    // Text -> label ids for the CTC loss (spaces -> word delimiter), one id per character.
    std::vector<int64_t> encode(const std::string& text) const {
        std::vector<int64_t> ids;
        for (size_t i = 0; i < text.size();) {
            size_t len = 1;
            const unsigned char c = static_cast<unsigned char>(text[i]);
            if (c >= 0xF0) len = 4; else if (c >= 0xE0) len = 3; else if (c >= 0xC0) len = 2;
            std::string ch = text.substr(i, len);
            if (ch == " ") ch = delimiter_;
            const int64_t id = id_of(ch);
            if (id < 0) throw Error("character '" + ch + "' is not in the CTC vocabulary");
            ids.push_back(id);
            i += len;
        }
        return ids;
    }

private:
    int64_t id_of(const std::string& token) const {
        auto it = std::find(tokens_.begin(), tokens_.end(), token);
        return it == tokens_.end() ? -1 : int64_t(it - tokens_.begin());
    }

    std::vector<std::string> tokens_;
    std::string pad_, delimiter_, replacement_;
};

}  // namespace d2v::audio
