// Data2VecText parity with Transformers: every fixture variant (tiny random models made by
// weights_tools/make_text_fixtures.py; relative_key(_query) by Transformers 4.x) must reproduce every
// saved output field. Tolerance as for audio: 1e-4 max abs diff (fp32 both sides), losses
// 1e-4 * max(1, |loss|).
#include <nlohmann/json.hpp>

#include "d2v/text/generation.h"
#include "d2v/text/pipeline.h"
#include "d2v/text/postprocess.h"
#include "test_util.h"

using namespace d2v::text;
using d2v::Json;

namespace {

constexpr double kTolerance = 1e-4;

std::string text_fixtures() { return fixtures_dir() + "/text"; }

std::vector<std::string> variants() { return fixture_variants(text_fixtures()); }

std::vector<std::vector<int64_t>> rows_of(const d2v::NdArray& a) {
    const int64_t T = a.shape.back();
    std::vector<std::vector<int64_t>> rows(a.data.size() / size_t(T));
    for (size_t r = 0; r < rows.size(); ++r)
        for (int64_t t = 0; t < T; ++t) rows[r].push_back(int64_t(a.data[r * size_t(T) + size_t(t)]));
    return rows;
}

TextBatch load_input_set(const std::string& set) {
    const std::string dir = text_fixtures() + "/inputs/" + set;
    TextBatch batch;
    const d2v::NdArray ids = d2v::read_npy(dir + "/input_ids.npy");
    batch.input_ids = rows_of(ids);
    if (ids.shape.size() == 3) batch.choices = ids.shape[1];
    if (fs::exists(dir + "/attention_mask.npy")) batch.attention_mask = rows_of(d2v::read_npy(dir + "/attention_mask.npy"));
    if (fs::exists(dir + "/token_type_ids.npy")) batch.token_type_ids = rows_of(d2v::read_npy(dir + "/token_type_ids.npy"));
    return batch;
}

class TextParity : public ::testing::TestWithParam<std::string> {};

TEST_P(TextParity, EveryOutputEqualsTransformers) {
    const std::string dir = text_fixtures() + "/" + GetParam();
    TextPipeline pipe(dir + "/model.gguf");
    size_t compared = 0;
    for (const auto& set_entry : fs::directory_iterator(dir)) {
        if (!set_entry.is_directory() || !fs::exists(text_fixtures() + "/inputs/" + set_entry.path().filename().string())) continue;
        const std::string set = set_entry.path().filename().string();
        SCOPED_TRACE("input set " + set);
        const TextBatch batch = load_input_set(set);
        std::vector<std::string> fields;
        d2v::NamedOutputs labels;
        for (const auto& f : fs::directory_iterator(set_entry.path())) {
            if (f.path().extension() != ".npy") continue;
            const std::string stem = f.path().stem().string();
            if (stem == "labels" || stem == "start_positions" || stem == "end_positions") labels[stem] = d2v::read_npy(f.path().string());
            else fields.push_back(stem);
        }
        TextRunOptions options;
        for (const auto& f : fields) {
            options.hidden_states |= f.rfind("hidden_states.", 0) == 0;
            options.attentions |= f.rfind("attentions.", 0) == 0;
        }
        const d2v::NamedOutputs out = pipe.run(batch, options, labels.empty() ? nullptr : &labels);
        for (const auto& field : fields) {
            SCOPED_TRACE("field " + field);
            const d2v::NdArray expected = d2v::read_npy((set_entry.path() / (field + ".npy")).string());
            ASSERT_TRUE(out.count(field)) << "we did not produce " << field;
            const double tol = field == "loss" ? kTolerance * std::max(1.0, std::fabs(double(expected.data[0]))) : kTolerance;
            EXPECT_TRUE(AllClose(out.at(field), expected, tol));
            std::printf("  %s/%s/%s: max abs diff %.3g\n", GetParam().c_str(), set.c_str(), field.c_str(), max_abs_diff(out.at(field), expected));
            ++compared;
        }
    }
    EXPECT_GT(compared, 0u);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TextParity, ::testing::ValuesIn(variants()), [](const auto& info) { return info.param; });

// Whatever files the checkpoint's tokenizer came in (vocab.json + merges.txt, tokenizer.json alone
// from a Transformers 5 layout, ...), the packed tokenizer gives the ids Transformers fed the model.
TEST_P(TextParity, PackedTokenizerGivesTheFixtureIds) {
    TextPipeline pipe(text_fixtures() + "/" + GetParam() + "/model.gguf");
    const Json texts = Json::parse(read_text(text_fixtures() + "/inputs/wiki/texts.json"));
    const TextBatch batch = load_input_set("wiki");
    EncodeOptions enc;
    enc.max_length = 32;  // texts.json's tokenizer_call
    for (size_t b = 0; b < texts["texts"].size(); ++b) {
        const Encoding e = pipe.tokenizer().encode(texts["texts"][b].get<std::string>(), enc);
        std::vector<int64_t> unpadded(batch.input_ids[b].begin(), batch.input_ids[b].begin() + int64_t(e.size()));
        EXPECT_EQ(e.input_ids, unpadded) << "text " << b;
    }
}

TEST(TextFixtures, AllVariantsPresent) {
    const auto names = variants();
    for (const char* v : {"model_absolute", "model_no_pooler", "model_relative_key", "model_relative_key_query", "masked_lm",
                          "causal_lm", "seqcls_single", "seqcls_multi", "seqcls_regression", "multiple_choice",
                          "token_classification", "question_answering"})
        EXPECT_NE(std::find(names.begin(), names.end(), v), names.end()) << "missing fixture " << v;
}

// ---- what users read: QA answer strings and NER word labels ----

// Our tokenizer must give the fixture's ids for the fixture's texts, so offsets line up.
void expect_same_ids(const Encoding& e, const std::vector<int64_t>& fixture_row) {
    std::vector<int64_t> unpadded;
    for (size_t t = 0; t < e.input_ids.size(); ++t) unpadded.push_back(fixture_row[t]);
    ASSERT_EQ(e.input_ids, unpadded);
}

TEST(QuestionAnswering, AnswerStringsEqualThoseFromTheReferenceLogits) {
    const std::string dir = text_fixtures() + "/question_answering";
    TextPipeline pipe(dir + "/model.gguf");
    const Json texts = Json::parse(read_text(text_fixtures() + "/inputs/squad/texts.json"));
    const TextBatch batch = load_input_set("squad");
    const auto out = pipe.run(batch);
    const auto ref_start = d2v::read_npy(dir + "/squad/start_logits.npy"), ref_end = d2v::read_npy(dir + "/squad/end_logits.npy");
    const int64_t T = ref_start.shape[1];
    EncodeOptions enc;
    enc.max_length = 64;
    enc.truncation = "only_second";
    for (size_t b = 0; b < texts["pairs"].size(); ++b) {
        const std::string question = texts["pairs"][b][0], context = texts["pairs"][b][1];
        const Encoding e = pipe.tokenizer().encode_pair(question, context, enc);
        expect_same_ids(e, batch.input_ids[b]);
        const size_t at = b * size_t(T);
        const AnswerSpan ours = best_answer_span(out.at("start_logits").data.data() + at, out.at("end_logits").data.data() + at, e, context, 30);
        const AnswerSpan ref = best_answer_span(ref_start.data.data() + at, ref_end.data.data() + at, e, context, 30);
        EXPECT_EQ(ours.text, ref.text) << "pair " << b;
        EXPECT_EQ(context.substr(size_t(ours.start_byte), ours.text.size()), ours.text);
        std::printf("  squad pair %zu: answer '%s'\n", b, ours.text.c_str());
    }
}

TEST(TokenClassification, WordLabelsEqualThoseFromTheReferenceLogits) {
    const std::string dir = text_fixtures() + "/token_classification";
    TextPipeline pipe(dir + "/model.gguf");
    const Json texts = Json::parse(read_text(text_fixtures() + "/inputs/conll/texts.json"));
    const TextBatch batch = load_input_set("conll");
    const auto out = pipe.run(batch);
    const auto ref = d2v::read_npy(dir + "/conll/logits.npy");
    const int64_t T = ref.shape[1], C = ref.shape[2];
    EncodeOptions enc;
    enc.max_length = 64;
    for (size_t b = 0; b < texts["texts"].size(); ++b) {
        const std::string text = texts["texts"][b];
        const Encoding e = pipe.tokenizer().encode(text, enc);
        expect_same_ids(e, batch.input_ids[b]);
        const size_t at = b * size_t(T * C);
        const auto ours = word_labels(out.at("logits").data.data() + at, C, e, text);
        const auto theirs = word_labels(ref.data.data() + at, C, e, text);
        ASSERT_EQ(ours.size(), texts["words"][b].size()) << "words of sentence " << b;
        for (size_t w = 0; w < ours.size(); ++w) {
            EXPECT_EQ(ours[w].word, texts["words"][b][w].get<std::string>());
            EXPECT_EQ(ours[w].label, theirs[w].label) << "word " << ours[w].word;
        }
    }
}

// ---- causal LM: generation with the cache, and causality ----

std::string causal_dir() { return text_fixtures() + "/causal_lm"; }

TEST(CausalLM, GreedyGenerationWithCacheEqualsTransformersGenerate) {
    TextPipeline pipe(causal_dir() + "/model.gguf");
    const auto prompt = d2v::read_npy(causal_dir() + "/generate/prompt_ids.npy");
    const auto expected = d2v::read_npy(causal_dir() + "/generate/output_ids.npy");
    const auto prompt_ids = rows_of(prompt)[0], expected_ids = rows_of(expected)[0];
    GenerationOptions o;
    o.max_new_tokens = int64_t(expected_ids.size() - prompt_ids.size());
    EXPECT_GE(o.max_new_tokens, 20);
    EXPECT_EQ(generate(pipe.model(), *pipe.language_model(), prompt_ids, o), expected_ids);
}

TEST(CausalLM, GreedyGenerationWithModelPositionsEqualsAFullGreedyRerun) {
    // Transformers' own greedy loop over full forward passes (the model's RoBERTa position ids).
    TextPipeline pipe(causal_dir() + "/model.gguf");
    const auto prompt_ids = rows_of(d2v::read_npy(causal_dir() + "/generate/prompt_ids.npy"))[0];
    const auto expected_ids = rows_of(d2v::read_npy(causal_dir() + "/generate/output_ids_default_positions.npy"))[0];
    GenerationOptions o;
    o.max_new_tokens = int64_t(expected_ids.size() - prompt_ids.size());
    o.model_positions = true;
    EXPECT_EQ(generate(pipe.model(), *pipe.language_model(), prompt_ids, o), expected_ids);
}

TEST(CausalLM, CachedStepLogitsEqualAFullRerun) {
    TextPipeline pipe(causal_dir() + "/model.gguf");
    const auto ids = rows_of(d2v::read_npy(causal_dir() + "/generate/output_ids.npy"))[0];
    DecoderState state;
    d2v::Matrix stepwise(int64_t(ids.size()), pipe.config().vocab_size);
    for (size_t t = 0; t < ids.size(); ++t)
        stepwise.row(int64_t(t)) = pipe.language_model()->logits(pipe.model().forward_incremental({ids[t]}, state));
    TextBatch full;
    full.input_ids = {ids};
    const d2v::NdArray rerun = pipe.run(full).at("logits");
    d2v::NdArray step{{1, stepwise.rows(), stepwise.cols()}, std::vector<float>(stepwise.data(), stepwise.data() + stepwise.size())};
    EXPECT_TRUE(AllClose(step, rerun, kTolerance));
}

TEST(CausalLM, ChangingALaterTokenLeavesEarlierLogitsUnchanged) {
    TextPipeline pipe(causal_dir() + "/model.gguf");
    auto ids = rows_of(d2v::read_npy(causal_dir() + "/generate/output_ids.npy"))[0];
    TextBatch a, b;
    a.input_ids = {ids};
    ids.back() = (ids.back() + 7) % pipe.config().vocab_size;
    if (ids.back() == pipe.config().pad_token_id) ids.back() = (ids.back() + 1) % pipe.config().vocab_size;
    b.input_ids = {ids};
    const auto la = pipe.run(a).at("logits"), lb = pipe.run(b).at("logits");
    const size_t earlier = (ids.size() - 1) * size_t(pipe.config().vocab_size);
    double worst = 0;
    for (size_t i = 0; i < earlier; ++i) worst = std::max(worst, double(std::fabs(la.data[i] - lb.data[i])));
    EXPECT_EQ(worst, 0.0);
    // ...and the reference was checked the same way when the fixture was made.
    const Json meta = Json::parse(read_text(causal_dir() + "/meta.json"));
    EXPECT_TRUE(meta.value("reference_is_causal", false)) << "the Transformers reference for this fixture was not causal";
}

// ---- relative_key decoder: Transformers 4.x's cached forward is not a full forward pass ----

std::string relative_causal_dir() { return text_fixtures() + "/causal_lm_relative_key"; }

TEST(CausalLM, RelativeKeyGenerationEqualsTransformersUncachedForward) {
    TextPipeline pipe(relative_causal_dir() + "/model.gguf");
    const std::string g = relative_causal_dir() + "/generate/";
    const auto prompt_ids = rows_of(d2v::read_npy(g + "prompt_ids.npy"))[0];
    const auto expected_ids = rows_of(d2v::read_npy(g + "output_ids_uncached.npy"))[0];
    for (bool model_positions : {false, true}) {  // relative_key adds no absolute position: no difference
        GenerationOptions o;
        o.max_new_tokens = int64_t(expected_ids.size() - prompt_ids.size());
        o.model_positions = model_positions;
        EXPECT_EQ(generate(pipe.model(), *pipe.language_model(), prompt_ids, o), expected_ids) << model_positions;
    }
    // Fed as generate() feeds it (the prompt at once, then a token per step), every position's
    // logits equal Transformers' one full uncached pass over the same ids.
    DecoderState state;
    const d2v::Matrix prefill = pipe.model().forward_incremental(prompt_ids, state);
    d2v::Matrix stepwise(int64_t(expected_ids.size()), pipe.config().vocab_size);
    stepwise.topRows(prefill.rows()) = pipe.language_model()->logits(prefill);
    for (size_t t = prompt_ids.size(); t < expected_ids.size(); ++t)
        stepwise.row(int64_t(t)) = pipe.language_model()->logits(pipe.model().forward_incremental({expected_ids[t]}, state));
    const d2v::NdArray step{{1, stepwise.rows(), stepwise.cols()},
                            std::vector<float>(stepwise.data(), stepwise.data() + stepwise.size())};
    const d2v::NdArray reference = d2v::read_npy(g + "logits_uncached.npy");
    EXPECT_TRUE(AllClose(step, reference, kTolerance));
    std::printf("  causal_lm_relative_key/generate: cached steps vs Transformers' full pass, max abs diff %.3g\n",
                max_abs_diff(step, reference));
    // ...while Transformers' own cache was off by far more than the tolerance when the fixture was made
    const Json diff = Json::parse(read_text(relative_causal_dir() + "/meta.json"))["generate_relative_key"]
                                 ["cached_forward_vs_full_forward_max_abs_logit_diff"];
    EXPECT_GT(diff["prompt positions (prefill)"].get<double>(), 1000 * kTolerance);
}

}  // namespace
