// Checkpoint layouts (weights_tools/make_layout_fixtures.py): tiny models saved the way Transformers 5
// saves them by default (processor_config.json, tokenizer.json only, tied tensors omitted) and the
// way Transformers 4.57 does (preprocessor_config.json, vocab.json + merges.txt, both tied tensors in
// pytorch_model.bin). Their model outputs are checked by the parity suites, where they are ordinary
// variants; here: what each file packs for preprocessing reproduces what Transformers 5 loads from
// the saved folder -- audio input_values and pixel_values to 1e-5 (float32 arithmetic in another
// order, the README's preprocessing bound), token ids exactly.
#include <nlohmann/json.hpp>

#include "d2v/audio/pipeline.h"
#include "d2v/text/pipeline.h"
#include "d2v/vision/image_io.h"
#include "d2v/vision/pipeline.h"
#include "test_util.h"

using d2v::Json;

namespace {

constexpr double kPreprocessingTolerance = 1e-5;

// Every fixture directory (under audio/, text/, vision/models/) that carries a layout_check.json.
std::vector<std::string> layout_fixtures() {
    std::vector<std::string> out;
    for (const char* modality : {"audio", "text", "vision/models"})
        for (const auto& v : fixture_variants(fixtures_dir() + "/" + modality))
            if (fs::exists(fixtures_dir() + "/" + modality + "/" + v + "/layout_check.json")) out.push_back(std::string(modality) + "/" + v);
    return out;
}

class CheckpointLayout : public ::testing::TestWithParam<std::string> {};

TEST_P(CheckpointLayout, PackedPreprocessingEqualsTransformers) {
    const std::string dir = fixtures_dir() + "/" + GetParam();
    const Json check = Json::parse(read_text(dir + "/layout_check.json"));
    const std::string modality = check.at("modality");
    if (modality == "audio") {
        const d2v::audio::AudioPipeline pipe(dir + "/model.gguf");
        const d2v::NdArray raw = d2v::read_npy(fixtures_dir() + "/audio/" + check.at("raw").get<std::string>());
        const size_t n = check.at("raw_samples").get<size_t>();
        ASSERT_LE(n, raw.data.size());
        const auto batch = pipe.prepare({std::vector<float>(raw.data.begin(), raw.data.begin() + int64_t(n))});
        const d2v::NdArray ours{{1, batch.input_values.cols()},
                                std::vector<float>(batch.input_values.data(), batch.input_values.data() + batch.input_values.size())};
        const d2v::NdArray expected = d2v::read_npy(dir + "/" + check.at("expected").get<std::string>());
        EXPECT_TRUE(AllClose(ours, expected, kPreprocessingTolerance));
        if (!check.at("do_normalize").get<bool>()) {  // the Transformers 5 layout saves do_normalize=false
            EXPECT_TRUE(AllClose(ours, d2v::NdArray{{1, int64_t(n)}, std::vector<float>(raw.data.begin(), raw.data.begin() + int64_t(n))}, 0.0));
        }
    } else if (modality == "vision") {
        const d2v::vision::VisionPipeline pipe(dir + "/model.gguf");
        std::vector<d2v::vision::Image> images;
        for (const auto& f : check.at("images")) images.push_back(d2v::vision::read_image(shared_data(f.get<std::string>())));
        const d2v::NdArray expected = d2v::read_npy(dir + "/" + check.at("expected").get<std::string>());
        EXPECT_TRUE(AllClose(pipe.prepare(images).pixel_values, expected, kPreprocessingTolerance));
    } else {
        ASSERT_EQ(modality, "text");
        const d2v::text::TextPipeline pipe(dir + "/model.gguf");
        const auto& texts = check.at("texts");
        for (size_t i = 0; i < texts.size(); ++i) {
            SCOPED_TRACE(texts[i].get<std::string>());
            EXPECT_EQ(pipe.tokenizer().encode(texts[i].get<std::string>()).input_ids,
                      check.at("input_ids")[i].get<std::vector<int64_t>>());
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CheckpointLayout, ::testing::ValuesIn(layout_fixtures()), [](const auto& info) {
    std::string name = info.param;
    std::replace(name.begin(), name.end(), '/', '_');
    return name;
});

TEST(CheckpointLayoutFixtures, AllPresent) {
    // Guards against a layout fixture silently vanishing (the parameterised suite would just shrink).
    const auto names = layout_fixtures();
    for (const char* v : {"audio/ctc_v5_layout", "audio/ctc_v4_layout", "text/masked_lm_v5_layout",
                          "text/masked_lm_v4_layout", "vision/models/model_base_v5_layout"})
        EXPECT_NE(std::find(names.begin(), names.end(), v), names.end()) << "missing fixture " << v;
}

TEST(CheckpointLayoutFixtures, TiedDecoderIsStoredOnce) {
    // Both layouts hold the masked-LM decoder tied to the word embeddings: the file stores it once.
    for (const char* v : {"masked_lm_v5_layout", "masked_lm_v4_layout"}) {
        const d2v::ModelFile file(fixtures_dir() + "/text/" + v + "/model.gguf");
        EXPECT_FALSE(file.has_tensor(d2v::text::names::kLmDecoderWeight)) << v;
        EXPECT_TRUE(file.has_tensor(d2v::text::names::kWordEmbeddings)) << v;
    }
}

}  // namespace
