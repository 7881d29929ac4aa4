// Wav2Vec2FeatureExtractor: pad a batch to its longest item, normalise each item to zero mean and
// unit variance over its own (unpadded) samples when do_normalize, and report the attention mask.
#pragma once
#include <cmath>

#include "d2v/audio/model.h"

namespace d2v::audio {

struct FeatureExtractorConfig {
    int64_t sampling_rate = 16000;
    float padding_value = 0.0f;
    bool do_normalize = true;
    bool return_attention_mask = true;
};

inline FeatureExtractorConfig parse_feature_extractor(const Json& j) {
    FeatureExtractorConfig c;
    if (j.is_null()) return c;  // no preprocessor_config.json: Transformers' defaults for data2vec-audio
    c.sampling_rate = config_value<int64_t>(j, "sampling_rate", 16000);
    c.padding_value = float(config_value<double>(j, "padding_value", 0.0));
    c.do_normalize = config_value<bool>(j, "do_normalize", true);
    c.return_attention_mask = config_value<bool>(j, "return_attention_mask", false);
    if (config_value<int64_t>(j, "feature_size", 1) != 1) throw Error("preprocessor: feature_size must be 1 for raw waveforms");
    if (c.sampling_rate <= 0) throw Error("preprocessor: sampling_rate must be positive");
    return c;
}

// waves: mono float signals already at the model's sampling rate.
inline AudioBatch prepare_batch(const std::vector<std::vector<float>>& waves, const FeatureExtractorConfig& c) {
    if (waves.empty()) throw Error("no audio given");
    size_t longest = 0;
    for (const auto& w : waves) longest = std::max(longest, w.size());
    AudioBatch batch;
    batch.input_values = Matrix::Constant(int64_t(waves.size()), int64_t(longest), c.padding_value);
    std::vector<int64_t> lengths;
    for (size_t b = 0; b < waves.size(); ++b) {
        const auto& w = waves[b];
        const int64_t n = int64_t(w.size());
        lengths.push_back(n);
        auto row = batch.input_values.row(int64_t(b));
        if (!c.do_normalize) {
            for (int64_t i = 0; i < n; ++i) row(i) = w[size_t(i)];
            continue;
        }
        // Statistics in double; numpy's float32 pairwise sums differ by ~1e-7 relative.
        double mean = 0, var = 0;
        for (float v : w) mean += v;
        mean /= double(std::max<int64_t>(n, 1));
        for (float v : w) var += (v - mean) * (v - mean);
        var /= double(std::max<int64_t>(n, 1));
        const double scale = 1.0 / std::sqrt(var + 1e-7);
        for (int64_t i = 0; i < n; ++i) row(i) = float((w[size_t(i)] - mean) * scale);
    }
    // Without return_attention_mask the model sees the padded batch unmasked, as Transformers' pipeline does.
    if (c.return_attention_mask) batch.lengths = lengths;
    return batch;
}

}  // namespace d2v::audio
