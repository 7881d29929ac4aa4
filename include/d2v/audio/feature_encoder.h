// The waveform front end: a stack of strided 1-D convolutions, each followed by LayerNorm over
// channels and the activation (data2vec-audio always uses the "layer" norm variant), then the
// feature projection (LayerNorm + Linear to hidden_size).
#pragma once
#include "d2v/audio/tensor_names.h"
#include "d2v/kernels/conv1d.h"

namespace d2v::audio {

class ConvFeatureEncoder {
public:
    ConvFeatureEncoder(const ModelFile& file, const AudioConfig& c) : act_(c.feat_extract_activation) {
        for (size_t i = 0; i < c.conv_dim.size(); ++i) {
            const int64_t c_in = i == 0 ? 1 : c.conv_dim[i - 1], k = c.conv_kernel[i];
            const auto w = conv_weight_tap_major(file.tensor(name(T::ConvWeight, int(i))), c.conv_dim[i], c_in, k);
            Layer layer;
            layer.conv = Linear(w.data(), c.conv_dim[i], k * c_in, c.conv_bias ? file.tensor(name(T::ConvBias, int(i))) : nullptr);
            layer.geometry.kernel = k;
            layer.geometry.stride = c.conv_stride[i];
            layer.norm_w = file.tensor(name(T::ConvNormWeight, int(i)));
            layer.norm_b = file.tensor(name(T::ConvNormBias, int(i)));
            layers_.push_back(std::move(layer));
        }
    }

    // samples: [L, 1] -> features [T, conv_dim[-1]]
    Matrix forward(Matrix x) const {
        for (const auto& layer : layers_) {
            x = conv1d(x, layer.conv, layer.geometry);
            // nn.LayerNorm's default eps: the conv layers do not use config.layer_norm_eps.
            layer_norm_rows(x, layer.norm_w, layer.norm_b, 1e-5f);
            apply_activation(act_, x);
        }
        return x;
    }

private:
    struct Layer {
        Linear conv;
        Conv1dGeometry geometry;
        const float *norm_w = nullptr, *norm_b = nullptr;
    };
    std::vector<Layer> layers_;
    Activation act_;
};

class FeatureProjection {
public:
    FeatureProjection(const ModelFile& file, const AudioConfig& c)
        : norm_w_(file.tensor(name(T::ProjectionNormWeight))),
          norm_b_(file.tensor(name(T::ProjectionNormBias))),
          eps_(c.layer_norm_eps),
          projection_(load_linear(file, name(T::ProjectionWeight), name(T::ProjectionBias), c.hidden_size, c.conv_dim.back())) {}

    // features [T, C] -> normalised features (Transformers' `extract_features`) and hidden [T, H]
    Matrix forward(Matrix& features) const {
        layer_norm_rows(features, norm_w_, norm_b_, eps_);
        return projection_(features);
    }

private:
    const float *norm_w_, *norm_b_;
    float eps_;
    Linear projection_;
};

}  // namespace d2v::audio
