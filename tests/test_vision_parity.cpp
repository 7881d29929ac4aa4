// Data2VecVision parity with Transformers: every fixture variant (tiny random models made by
// weights_tools/make_vision_fixtures.py: PyTorch classes from Transformers 5, TensorFlow classes
// from Transformers 4.x converted from tf_model.h5) must reproduce every saved output field.
// Tolerance 1e-4 max abs diff (fp32 both sides), losses 1e-4 * max(1, |loss|).
// For the TF segmentation checkpoint the reference is the PyTorch graph on the same weights
// (logits.npy); Transformers 4.x's TF head diverges from it (tf_logits.npy, reported, not asserted).
#include <nlohmann/json.hpp>

#include "d2v/vision/pipeline.h"
#include "test_util.h"

using namespace d2v::vision;
using d2v::Json;

namespace {

constexpr double kTolerance = 1e-4;

std::string model_fixtures() { return fixtures_dir() + "/vision/models"; }

std::vector<std::string> variants() { return fixture_variants(model_fixtures()); }

VisionBatch load_input_set(const std::string& set, const Json& call_kwargs) {
    const std::string dir = model_fixtures() + "/inputs/" + set;
    VisionBatch batch;
    batch.pixel_values = d2v::read_npy(dir + "/pixel_values.npy");
    batch.pixel_values.is_integer = false;
    if (fs::exists(dir + "/bool_masked_pos.npy")) {
        const d2v::NdArray m = d2v::read_npy(dir + "/bool_masked_pos.npy");
        const int64_t N = m.shape[1];
        for (int64_t b = 0; b < m.shape[0]; ++b) {
            std::vector<bool> row;
            for (int64_t i = 0; i < N; ++i) row.push_back(m.data[size_t(b * N + i)] != 0.0f);
            batch.bool_masked_pos.push_back(row);
        }
    }
    batch.interpolate_pos_encoding = call_kwargs.value("interpolate_pos_encoding", false);
    return batch;
}

class VisionParity : public ::testing::TestWithParam<std::string> {};

TEST_P(VisionParity, EveryOutputEqualsTheReference) {
    const std::string dir = model_fixtures() + "/" + GetParam();
    const Json meta = Json::parse(read_text(dir + "/meta.json"));
    VisionPipeline pipe(dir + "/model.gguf");
    size_t compared = 0;
    for (const auto& set_entry : fs::directory_iterator(dir)) {
        const std::string set = set_entry.path().filename().string();
        if (!set_entry.is_directory() || !fs::exists(model_fixtures() + "/inputs/" + set)) continue;
        SCOPED_TRACE("input set " + set);
        Json kwargs = meta.value("call_kwargs", Json::object());
        if (kwargs.contains(set)) kwargs = kwargs[set];
        const VisionBatch batch = load_input_set(set, kwargs);
        std::vector<std::string> fields;
        std::optional<d2v::NdArray> labels;
        for (const auto& f : fs::directory_iterator(set_entry.path())) {
            if (f.path().extension() != ".npy") continue;
            const std::string stem = f.path().stem().string();
            if (stem == "labels") labels = d2v::read_npy(f.path().string());
            else if (stem.rfind("tf_", 0) != 0) fields.push_back(stem);
        }
        VisionRunOptions options;
        for (const auto& f : fields) {
            options.hidden_states |= f.rfind("hidden_states.", 0) == 0;
            options.attentions |= f.rfind("attentions.", 0) == 0;
            options.auxiliary_logits |= f == "auxiliary_logits";
        }
        const d2v::NamedOutputs out = pipe.run(batch, options, labels ? &*labels : nullptr);
        for (const auto& field : fields) {
            SCOPED_TRACE("field " + field);
            const d2v::NdArray expected = d2v::read_npy((set_entry.path() / (field + ".npy")).string());
            ASSERT_TRUE(out.count(field)) << "we did not produce " << field;
            const double tol = field == "loss" ? kTolerance * std::max(1.0, std::fabs(double(expected.data[0]))) : kTolerance;
            EXPECT_TRUE(AllClose(out.at(field), expected, tol));
            std::printf("  %s/%s/%s: max abs diff %.3g\n", GetParam().c_str(), set.c_str(), field.c_str(), max_abs_diff(out.at(field), expected));
            ++compared;
        }
        if (fs::exists(set_entry.path() / "tf_logits.npy"))
            std::printf("  %s/%s: Transformers 4.x TF head vs the PyTorch graph on the same weights: max abs diff %.3g\n",
                        GetParam().c_str(), set.c_str(), max_abs_diff(d2v::read_npy((set_entry.path() / "tf_logits.npy").string()), out.at("logits")));
    }
    EXPECT_GT(compared, 0u);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, VisionParity, ::testing::ValuesIn(variants()), [](const auto& info) { return info.param; });

TEST(VisionFixtures, AllVariantsPresent) {
    const auto names = variants();
    for (const char* v : {"model_base", "model_shared_bias_abs_pos_cls", "model_mask_token", "model_interpolate",
                          "image_classification", "semantic_segmentation", "tf_model", "tf_image_classification", "tf_semantic_segmentation"})
        EXPECT_NE(std::find(names.begin(), names.end(), v), names.end()) << "missing fixture " << v;
}

TEST(SemanticSegmentation, WorksAtAnotherInputSize) {
    // Transformers reshapes features with config.image_size and fails here; we take the grid from the input.
    const std::string dir = model_fixtures() + "/semantic_segmentation";
    VisionPipeline pipe(dir + "/model.gguf");
    const int64_t P = pipe.config().patch_size, H = pipe.config().image_height + 2 * P, W = pipe.config().image_width + 4 * P;
    VisionBatch batch;
    batch.pixel_values = d2v::NdArray{{1, 3, H, W}, std::vector<float>(size_t(3 * H * W), 0.25f)};
    const auto out = pipe.run(batch);
    const auto& logits = out.at("logits");
    EXPECT_EQ(logits.shape, (d2v::Shape{1, pipe.config().num_labels(), 4 * (H / P), 4 * (W / P)}));  // fpn1 scale: 4x the patch grid
    for (float v : logits.data) ASSERT_TRUE(std::isfinite(v));
}

TEST(SemanticSegmentation, RepeatedCallsAtChangingSizesGiveTheSameLogits) {
    // The head keeps buffers between calls (MatrixPool) and reuses them within one: a call after
    // calls at other sizes must give exactly what a fresh model gives.
    const std::string dir = model_fixtures() + "/semantic_segmentation";
    VisionPipeline fresh(dir + "/model.gguf"), reused(dir + "/model.gguf");
    const int64_t P = fresh.config().patch_size, H0 = fresh.config().image_height, W0 = fresh.config().image_width;
    auto batch_of = [](int64_t h, int64_t w, uint32_t seed) {
        VisionBatch batch;
        batch.pixel_values = d2v::NdArray{{1, 3, h, w}, std::vector<float>(size_t(3 * h * w))};
        for (float& v : batch.pixel_values.data) v = float((seed = seed * 1664525u + 1013904223u) >> 9) / float(1u << 23) - 1.0f;
        return batch;
    };
    const VisionBatch first = batch_of(H0, W0, 1), other = batch_of(H0 + 2 * P, W0 + 4 * P, 2);
    const d2v::NdArray expected = fresh.run(first).at("logits");
    reused.run(other);
    reused.run(first);
    reused.run(other);
    EXPECT_TRUE(AllClose(reused.run(first).at("logits"), expected, 0.0));
}

}  // namespace
