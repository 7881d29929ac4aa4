// Data2VecAudio parity with Transformers: every fixture variant (a tiny random model made by
// weights_tools/make_fixtures.py) on every input set must reproduce every output field that
// Transformers saved.
//
// Tolerance: 1e-4 max abs diff (fp32 on both sides; what differs is summation order inside the
// matrix products, worth ~1e-6 on these O(1) activations). Losses are sums over frames and
// classes, so their bound scales with the value: 1e-4 * max(1, |loss|).
#include <nlohmann/json.hpp>
#include <thread>

#include "d2v/audio/audio_io.h"
#include "d2v/audio/pipeline.h"
#include "test_util.h"

using namespace d2v::audio;
using d2v::Json;

namespace {

constexpr double kOutputTolerance = 1e-4;
constexpr double kFeatureTolerance = 1e-5;

std::string audio_fixtures() { return fixtures_dir() + "/audio"; }

std::vector<std::string> variants() { return fixture_variants(audio_fixtures()); }

AudioBatch load_input_set(const std::string& set) {
    const std::string dir = audio_fixtures() + "/inputs/" + set;
    const d2v::NdArray iv = d2v::read_npy(dir + "/input_values.npy");
    AudioBatch batch;
    batch.input_values = d2v::ConstMatrixMap(iv.data.data(), iv.shape[0], iv.shape[1]);
    if (fs::exists(dir + "/attention_mask.npy")) {
        const d2v::NdArray mask = d2v::read_npy(dir + "/attention_mask.npy");
        std::vector<int64_t> lengths;
        for (int64_t b = 0; b < mask.shape[0]; ++b) {
            int64_t n = 0;
            for (int64_t t = 0; t < mask.shape[1]; ++t) n += int64_t(mask.data[size_t(b * mask.shape[1] + t)]);
            lengths.push_back(n);
        }
        batch.lengths = lengths;
    }
    return batch;
}

class AudioParity : public ::testing::TestWithParam<std::string> {};

TEST_P(AudioParity, EveryOutputEqualsTransformers) {
    const std::string dir = audio_fixtures() + "/" + GetParam();
    const Json meta = Json::parse(read_text(dir + "/meta.json"));
    AudioPipeline pipe(dir + "/model.gguf");
    EXPECT_EQ(pipe.file().model_class(), meta.at("model_class").get<std::string>());
    size_t compared = 0;
    for (const auto& set_entry : fs::directory_iterator(dir)) {
        if (!set_entry.is_directory()) continue;
        const std::string set = set_entry.path().filename().string();
        SCOPED_TRACE("input set " + set);
        const AudioBatch batch = load_input_set(set);
        std::vector<std::string> fields;
        for (const auto& f : fs::directory_iterator(set_entry.path()))
            if (f.path().extension() == ".npy" && f.path().stem() != "labels") fields.push_back(f.path().stem().string());
        RunOptions options;
        for (const auto& f : fields) {
            options.hidden_states |= f.rfind("hidden_states.", 0) == 0;
            options.attentions |= f.rfind("attentions.", 0) == 0;
        }
        std::optional<d2v::NdArray> labels;
        if (fs::exists(set_entry.path() / "labels.npy")) labels = d2v::read_npy((set_entry.path() / "labels.npy").string());
        const d2v::NamedOutputs out = pipe.run(batch, options, labels ? &*labels : nullptr);
        for (const auto& field : fields) {
            SCOPED_TRACE("field " + field);
            const d2v::NdArray expected = d2v::read_npy((set_entry.path() / (field + ".npy")).string());
            ASSERT_TRUE(out.count(field)) << "we did not produce " << field;
            const double tol = field == "loss" ? kOutputTolerance * std::max(1.0, std::fabs(double(expected.data[0])))
                                               : kOutputTolerance;
            EXPECT_TRUE(AllClose(out.at(field), expected, tol));
            std::printf("  %s/%s/%s: max abs diff %.3g\n", GetParam().c_str(), set.c_str(), field.c_str(),
                        max_abs_diff(out.at(field), expected));
            ++compared;
        }
        if (fs::exists(set_entry.path() / "transcripts.json")) {
            const Json expected = Json::parse(read_text((set_entry.path() / "transcripts.json").string()));
            ASSERT_NE(pipe.decoder(), nullptr);
            const auto& logits = out.at("logits");
            const int64_t B = logits.shape[0], T = logits.shape[1], V = logits.shape[2];
            const Json& decoded = expected.at("batch_decode");  // Transformers' default decode of the argmax ids
            ASSERT_EQ(int64_t(decoded.size()), B);
            for (int64_t b = 0; b < B; ++b) {
                // Transformers' batch_decode runs over all frames of the padded logits.
                std::vector<int64_t> ids;
                for (int64_t t = 0; t < T; ++t) {
                    const float* row = logits.data.data() + (b * T + t) * V;
                    ids.push_back(int64_t(std::max_element(row, row + V) - row));
                }
                EXPECT_EQ(pipe.decoder()->decode(ids), decoded[size_t(b)].get<std::string>()) << "item " << b;
            }
            ++compared;
        }
    }
    EXPECT_GT(compared, 0u) << "fixture " << GetParam() << " has no outputs";
}

INSTANTIATE_TEST_SUITE_P(Fixtures, AudioParity, ::testing::ValuesIn(variants()),
                         [](const auto& info) { return info.param; });

TEST(AudioFixtures, AllVariantsPresent) {
    // Guards against a fixture directory silently vanishing (the parameterised suite would just shrink).
    const auto names = variants();
    for (const char* v : {"model_base", "model_conv_bias_bin", "ctc", "ctc_adapter", "seqcls",
                          "seqcls_weighted_regression", "frame", "xvector"})
        EXPECT_NE(std::find(names.begin(), names.end(), v), names.end()) << "missing fixture " << v;
}

// ---- Wav2Vec2FeatureExtractor parity ----

TEST(FeatureExtractor, JfkInputValuesEqualTransformers) {
    const auto audio = read_audio(shared_data("speech/jfk.wav"), 16000);
    EXPECT_TRUE(audio.notes.empty()) << audio.notes;
    const AudioBatch batch = prepare_batch({audio.samples}, FeatureExtractorConfig{});
    const d2v::NdArray expected = d2v::read_npy(audio_fixtures() + "/inputs/jfk/input_values.npy");
    d2v::NdArray ours{{1, batch.input_values.cols()}, std::vector<float>(batch.input_values.data(), batch.input_values.data() + batch.input_values.size())};
    EXPECT_TRUE(AllClose(ours, expected, kFeatureTolerance));
}

TEST(FeatureExtractor, FsddBatchPaddingAndNormalisationEqualTransformers) {
    // Same resampled signals as Transformers was fed (so this isolates padding + normalisation).
    const std::string dir = audio_fixtures() + "/inputs/fsdd_batch";
    const Json meta = Json::parse(read_text(dir + "/meta.json"));
    std::vector<std::vector<float>> waves;
    for (size_t k = 0; k < meta.at("files").size(); ++k) waves.push_back(d2v::read_npy(dir + "/resampled." + std::to_string(k) + ".npy").data);
    const AudioBatch batch = prepare_batch(waves, FeatureExtractorConfig{});
    const d2v::NdArray expected = d2v::read_npy(dir + "/input_values.npy");
    d2v::NdArray ours{{batch.input_values.rows(), batch.input_values.cols()}, std::vector<float>(batch.input_values.data(), batch.input_values.data() + batch.input_values.size())};
    EXPECT_TRUE(AllClose(ours, expected, kFeatureTolerance));
    const d2v::NdArray mask = d2v::read_npy(dir + "/attention_mask.npy");
    for (size_t b = 0; b < waves.size(); ++b) {
        int64_t n = 0;
        for (int64_t t = 0; t < mask.shape[1]; ++t) n += int64_t(mask.data[b * size_t(mask.shape[1]) + size_t(t)]);
        EXPECT_EQ(n, (*batch.lengths)[b]);
    }
}

TEST(FeatureExtractor, OurResamplerMatchesTheFixtureResampler) {
    // read_audio resamples the 8 kHz FSDD clips with libsoxr HQ; the fixtures used python-soxr HQ.
    // Same algorithm and settings: agreement to float rounding is expected.
    const std::string dir = audio_fixtures() + "/inputs/fsdd_batch";
    const Json meta = Json::parse(read_text(dir + "/meta.json"));
    for (size_t k = 0; k < meta.at("files").size(); ++k) {
        const auto audio = read_audio(shared_data("speech/" + meta["files"][k].get<std::string>()), 16000);
        const d2v::NdArray expected = d2v::read_npy(dir + "/resampled." + std::to_string(k) + ".npy");
        d2v::NdArray ours{{int64_t(audio.samples.size())}, audio.samples};
        EXPECT_TRUE(AllClose(ours, expected, 1e-6)) << meta["files"][k];
    }
}

TEST(Resampler, SineAccuracy8kTo16k) {
    // A 440 Hz sine sampled at 8 kHz, resampled to 16 kHz, against the analytic sine at 16 kHz
    // (edges excluded: the filter's transient). HQ soxr is specified at ~-100 dB aliasing.
    std::vector<float> in(8000);
    for (size_t i = 0; i < in.size(); ++i) in[i] = float(0.5 * std::sin(2 * M_PI * 440.0 * double(i) / 8000.0));
    const auto out = resample(in, 8000, 16000);
    ASSERT_EQ(out.size(), 16000u);
    double worst = 0;
    for (size_t i = 400; i < out.size() - 400; ++i)
        worst = std::max(worst, std::fabs(double(out[i]) - 0.5 * std::sin(2 * M_PI * 440.0 * double(i) / 16000.0)));
    RecordProperty("max_abs_error", std::to_string(worst));
    std::printf("resampler 8k->16k sine max abs error: %.3g\n", worst);
    EXPECT_LT(worst, 1e-5);  // measured 2.4e-7
}


TEST(Pipeline, RunFromSeveralThreadsAtOnceGivesTheSameOutputs) {
    // The documented promise: a pipeline is immutable; run() may be called concurrently.
    const AudioPipeline pipe(audio_fixtures() + "/ctc/model.gguf");
    const AudioBatch batch = load_input_set("fsdd_batch");
    const d2v::NdArray reference = pipe.run(batch).at("logits");
    std::vector<d2v::NdArray> results(4);
    std::vector<std::thread> threads;
    for (size_t i = 0; i < results.size(); ++i)
        threads.emplace_back([&, i] {
            for (int repeat = 0; repeat < 3; ++repeat) results[i] = pipe.run(batch).at("logits");
        });
    for (auto& t : threads) t.join();
    for (const auto& r : results) EXPECT_TRUE(AllClose(r, reference, 0.0));
}

}  // namespace
