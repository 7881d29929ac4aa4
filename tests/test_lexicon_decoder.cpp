// CTC decoding constrained to a word list (d2v/audio/lexicon_decoder.h): against a brute-force
// search over every frame path on small random inputs, on hand-made cases a greedy decode gets
// wrong, and through d2v-audio --words / --lexicon.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "cli_util.h"
#include "d2v/audio/lexicon_decoder.h"

using d2v::audio::CtcDecoder;
using d2v::audio::LexiconDecoder;

namespace {

// The letters of the demo model's vocabulary, and a few more for the small searches.
const char* kVocab = R"({"<pad>":0,"<s>":1,"</s>":2,"<unk>":3,"|":4,"E":5,"F":6,"N":7,"O":8,"T":9,"H":10,"R":11,"W":12,"A":13,"B":14})";
constexpr int64_t kWidth = 15, kBlank = 0, kDelim = 4;

CtcDecoder decoder() { return CtcDecoder(d2v::Json::parse(kVocab), d2v::Json::object(), kWidth); }

int64_t id(const std::string& ch) { return d2v::Json::parse(kVocab).at(ch).get<int64_t>(); }

// Logits that favour `hot` in each frame by `margin` over everything else (all else equal).
std::vector<float> frames_favouring(const std::vector<int64_t>& hot, float margin) {
    std::vector<float> logits(hot.size() * kWidth, 0.0f);
    for (size_t t = 0; t < hot.size(); ++t) logits[t * kWidth + size_t(hot[t])] = margin;
    return logits;
}

std::vector<int64_t> spell(const std::vector<std::string>& frames) {
    std::vector<int64_t> ids;
    for (const auto& f : frames) ids.push_back(f == "_" ? kBlank : id(f));
    return ids;
}

double path_score(const std::vector<float>& logits, const std::vector<int64_t>& path) {
    double total = 0;
    for (size_t t = 0; t < path.size(); ++t) {
        const float* row = logits.data() + t * kWidth;
        double sum = 0;
        for (int64_t j = 0; j < kWidth; ++j) sum += std::exp(double(row[j]));
        total += double(row[path[t]]) - std::log(sum);
    }
    return total;
}

// The rule the decoder must implement, written independently: the path's CTC label sequence
// (repeats merged, blanks dropped) is [|] word (| word)* [|], or empty, or a lone |; each word listed.
bool allowed(const std::vector<int64_t>& path, const std::vector<std::vector<int64_t>>& words) {
    std::vector<int64_t> labels;
    for (size_t t = 0; t < path.size(); ++t)
        if (path[t] != kBlank && (t == 0 || path[t] != path[t - 1])) labels.push_back(path[t]);
    if (labels.empty() || labels == std::vector<int64_t>{kDelim}) return true;
    size_t a = labels.front() == kDelim ? 1 : 0, b = labels.back() == kDelim ? labels.size() - 1 : labels.size();
    if (a >= b) return false;
    std::vector<int64_t> word;
    for (size_t i = a; i <= b; ++i) {
        if (i == b || labels[i] == kDelim) {
            if (std::find(words.begin(), words.end(), word) == words.end()) return false;  // also rejects an empty word
            word.clear();
        } else {
            word.push_back(labels[i]);
        }
    }
    return true;
}

}  // namespace

TEST(LexiconDecoder, FindsTheBestAllowedPathOfEveryRandomInput) {
    // Every path over 5 letters (blank, |, A, B, E) and 6 frames: 15,625 paths per input.
    const std::vector<int64_t> alphabet = {kBlank, kDelim, id("A"), id("B"), id("E")};
    const std::vector<std::string> words = {"AB", "BA", "A", "EE", "ABBA"};
    std::vector<std::vector<int64_t>> spelled;
    for (const auto& w : words) {
        std::vector<int64_t> s;
        for (char c : w) s.push_back(id(std::string(1, c)));
        spelled.push_back(s);
    }
    const CtcDecoder ctc = decoder();
    const LexiconDecoder lexicon(ctc, words);
    std::mt19937 rng(7);
    std::normal_distribution<float> noise(0.0f, 2.0f);
    const int T = 6;
    for (int trial = 0; trial < 40; ++trial) {
        std::vector<float> logits(size_t(T) * kWidth, -30.0f);  // letters outside the alphabet: never
        for (int t = 0; t < T; ++t)
            for (int64_t a : alphabet) logits[size_t(t) * kWidth + size_t(a)] = noise(rng);
        double best = -INFINITY;
        std::vector<int64_t> path(T);
        for (int64_t code = 0; code < int64_t(std::pow(alphabet.size(), T)); ++code) {
            int64_t c = code;
            for (int t = 0; t < T; ++t, c /= int64_t(alphabet.size())) path[size_t(t)] = alphabet[size_t(c % int64_t(alphabet.size()))];
            if (allowed(path, spelled)) best = std::max(best, path_score(logits, path));
        }
        const std::vector<int64_t> found = lexicon.best_path(logits.data(), T, kWidth);
        ASSERT_EQ(found.size(), size_t(T));
        EXPECT_TRUE(allowed(found, spelled)) << "trial " << trial << ": " << ctc.decode(found);
        // float log-softmax in the decoder vs double here
        EXPECT_NEAR(path_score(logits, found), best, 1e-4) << "trial " << trial;
    }
}

TEST(LexiconDecoder, SpellsOnlyListedWords) {
    const CtcDecoder ctc = decoder();
    const LexiconDecoder lexicon(ctc, {"one", "two", "three"});  // lower case: the vocabulary is upper case
    // greedy reads "FONE": the F is a weak first frame
    std::vector<float> logits = frames_favouring(spell({"_", "F", "O", "N", "E", "_"}), 4.0f);
    logits[1 * kWidth + size_t(kBlank)] = 3.5f;
    std::vector<int64_t> greedy;
    for (size_t t = 0; t < 6; ++t) greedy.push_back(std::max_element(&logits[t * kWidth], &logits[t * kWidth] + kWidth) - &logits[t * kWidth]);
    EXPECT_EQ(ctc.decode(greedy), "FONE");
    EXPECT_EQ(ctc.decode(lexicon.best_path(logits.data(), 6, kWidth)), "ONE");

    // a doubled letter needs a blank between its two runs; words need a delimiter between them
    const auto three_one = spell({"T", "H", "R", "E", "_", "E", "|", "O", "N", "E"});
    EXPECT_EQ(ctc.decode(lexicon.best_path(frames_favouring(three_one, 5.0f).data(), 10, kWidth)), "THREE ONE");
    const auto one_one = spell({"_", "O", "N", "E", "_", "O", "N", "E", "_"});  // no delimiter: greedy "ONEONE"
    const auto path = lexicon.best_path(frames_favouring(one_one, 5.0f).data(), 9, kWidth);
    EXPECT_EQ(ctc.decode(path), "ONE ONE");
    const auto offsets = ctc.word_offsets(path);
    ASSERT_EQ(offsets.size(), 2u);
    EXPECT_LE(offsets[0].end, offsets[1].start);

    EXPECT_EQ(ctc.decode(lexicon.best_path(frames_favouring(spell({"_", "_", "_"}), 5.0f).data(), 3, kWidth)), "");
    EXPECT_TRUE(lexicon.best_path(nullptr, 0, kWidth).empty());

    // not-a-number logits, or logits narrower than the vocabulary: an error, not a wild read
    std::vector<float> broken = frames_favouring(spell({"O", "N", "E"}), 5.0f);
    broken[4] = std::nanf("");
    EXPECT_THROW(lexicon.best_path(broken.data(), 3, kWidth), d2v::Error);
    EXPECT_THROW(lexicon.best_path(logits.data(), 6, 8), d2v::Error);
}

TEST(LexiconDecoder, RefusesWordsTheVocabularyCannotSpell) {
    const CtcDecoder ctc = decoder();
    EXPECT_THROW(LexiconDecoder(ctc, {}), d2v::Error);
    EXPECT_THROW(LexiconDecoder(ctc, {"one", "six"}), d2v::Error);  // no S, I, X
    EXPECT_THROW(LexiconDecoder(ctc, {"one|two"}), d2v::Error);
    try {
        LexiconDecoder(ctc, {"zebra"});
        FAIL();
    } catch (const d2v::Error& e) {
        EXPECT_NE(std::string(e.what()).find("'zebra'"), std::string::npos) << e.what();
    }
}

TEST(LexiconDecoder, AudioCliDecodesWithAWordList) {
    const std::string root = D2V_SOURCE_DIR;
    const std::string model = root + "/models/digits-ctc.gguf", sample = root + "/samples/three_one_four.wav";
    const std::string digits = "zero one two three four five six seven eight nine";
    CliResult r = run_program(D2V_AUDIO_CLI, "-m " + model + " --json --timestamps --words '" + digits + "' " + sample);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto out = nlohmann::json::parse(r.output);
    EXPECT_EQ(out["results"][0]["transcript"], "THREE ONE FOUR");
    EXPECT_EQ(out["results"][0]["words"].size(), 3u);

    const std::string list = testing::TempDir() + "/digits.txt";
    std::ofstream(list) << "zero\none\ntwo three\nfour five six seven eight nine\n";
    r = run_program(D2V_AUDIO_CLI, "-m " + model + " --lexicon " + list + " " + sample);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("THREE ONE FOUR"), std::string::npos) << r.output;

    // only "one" and "four" allowed: the sample's THREE must become one of them
    r = run_program(D2V_AUDIO_CLI, "-m " + model + " --json --words 'one four' " + sample);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const std::string text = nlohmann::json::parse(r.output)["results"][0]["transcript"];
    EXPECT_EQ(text.find("THREE"), std::string::npos) << text;

    // bad input: a word the vocabulary cannot spell, a missing list, a model without CTC head
    r = run_program(D2V_AUDIO_CLI, "-m " + model + " --words 'one zebra' " + sample);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("zebra"), std::string::npos) << r.output;
    r = run_program(D2V_AUDIO_CLI, "-m " + model + " --lexicon /nonexistent/words.txt " + sample);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("cannot open the word list"), std::string::npos) << r.output;
    const std::string empty = testing::TempDir() + "/empty_words.txt";
    std::ofstream(empty) << " \n\t\n";
    r = run_program(D2V_AUDIO_CLI, "-m " + model + " --lexicon " + empty + " " + sample);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("the word list is empty"), std::string::npos) << r.output;
    const std::string huge = testing::TempDir() + "/huge_words.txt";  // a word list is a few MB at most
    std::ofstream(huge) << std::string((4 << 20) + 1, 'x');
    r = run_program_bounded(D2V_AUDIO_CLI, "-m " + model + " --lexicon " + huge + " " + sample, 512, 30);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("larger than 4 MB"), std::string::npos) << r.output;
    std::remove(huge.c_str());
    r = run_program(D2V_AUDIO_CLI, "-m " + root + "/models/digits-classify.gguf --words one " + sample);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    r = run_program(D2V_AUDIO_CLI, "-m " + model + " --words one --lexicon " + list + " " + sample);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    r = run_program(D2V_AUDIO_CLI, "-m " + model + " --words ' ' " + sample);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("--words needs at least one word"), std::string::npos) << r.output;
}
