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
            const float* bias = c.conv_bias ? file.tensor(name(T::ConvBias, int(i))) : nullptr;
            Layer layer;
            if (i == 0) {
                // One input channel: a direct stencil (see first_layers); weights as [k, C_out], always f32.
                const float* weight = file.tensor(name(T::ConvWeight, int(i)));
                first_taps_ = Matrix(k, c.conv_dim[0]);
                for (int64_t o = 0; o < c.conv_dim[0]; ++o)
                    for (int64_t j = 0; j < k; ++j) first_taps_(j, o) = weight[o * k + j];
                if (bias) first_bias_ = ConstRowVectorMap(bias, c.conv_dim[0]);
            } else {
                // f32, or reduced precision (convert.py --outtype bf16 / q8); the Linear keeps a packed copy.
                layer.conv = conv_linear(file.linear_weight(name(T::ConvWeight, int(i))), c.conv_dim[i], c_in, k, bias);
                file.release_tensor_pages(name(T::ConvWeight, int(i)));
            }
            layer.geometry.kernel = k;
            layer.geometry.stride = c.conv_stride[i];
            layer.norm_w = file.tensor(name(T::ConvNormWeight, int(i)));
            layer.norm_b = file.tensor(name(T::ConvNormBias, int(i)));
            layers_.push_back(std::move(layer));
        }
    }

    // samples: [L, 1] -> features [T, conv_dim[-1]]
    Matrix forward(const Matrix& samples) const {
        struct Buffers {
            Scratch second_layer;
        };
        static thread_local Buffers buf;
        if (samples.cols() != 1) throw Error("the audio feature encoder takes one channel");
        Matrix x;
        size_t next = 1;
        if (layers_.size() == 1) {
            x.resize(layers_[0].geometry.output_length(samples.rows()), first_taps_.cols());
            first_layer_rows(samples.data(), 0, x.rows(), x.data());
            return x;
        }
        // The widest activations (layers 0 and 1) never reach memory whole: layer 0 is computed
        // block by block as layer 1's input, and layer 1's output lives in a buffer kept between calls.
        const int64_t t1 = layers_[1].geometry.output_length(layers_[0].geometry.output_length(samples.rows()));
        const int64_t c1 = layers_[1].conv.out_features();
        float* second = buf.second_layer.get(size_t(t1 * c1));
        first_two_layers(samples, second);
        next = 2;
        const float* in = second;
        int64_t t_in = t1, c_in = c1;
        for (size_t i = next; i < layers_.size(); ++i) {
            const auto& layer = layers_[i];
            Matrix y(layer.geometry.output_length(t_in), layer.conv.out_features());
            const int64_t c_out = y.cols();
            conv1d_into(in, t_in, c_in, layer.conv, layer.geometry, 0, c_in, y.data(), [&](int64_t first, int64_t rows) {
                // nn.LayerNorm's default eps: the conv layers do not use config.layer_norm_eps.
                layer_norm_activation_rows(y.row(first).data(), rows, c_out, layer.norm_w, layer.norm_b, 1e-5f, act_);
            });
            x.swap(y);
            in = x.data();
            t_in = x.rows();
            c_in = x.cols();
        }
        return x;
    }

private:
    struct Layer {
        Linear conv;  // empty for layer 0 (first_taps_)
        Conv1dGeometry geometry;
        const float *norm_w = nullptr, *norm_b = nullptr;
    };

    // Rows [first, first + rows) of layer 0's output (conv, norm, activation) into out[rows, C0]:
    // one input channel makes the conv a stencil of k taps, vectorised over output channels.
    void first_layer_rows(const float* samples, int64_t first, int64_t rows, float* out) const {
        const Layer& l = layers_[0];
        const int64_t c0 = first_taps_.cols(), k = l.geometry.kernel, stride = l.geometry.stride;
#pragma omp parallel for schedule(static) if (rows * c0 > (1 << 15))
        for (int64_t r = 0; r < rows; ++r) {
            Eigen::Map<RowVector> y(out + r * c0, c0);
            const float* in = samples + (first + r) * stride;
            if (first_bias_.size())
                y = first_bias_ + in[0] * first_taps_.row(0);
            else
                y = in[0] * first_taps_.row(0);
            for (int64_t j = 1; j < k; ++j) y += in[j] * first_taps_.row(j);
            layer_norm_row(y.data(), c0, l.norm_w, l.norm_b, 1e-5f);
            apply_activation(act_, y.data(), c0);
        }
    }

    // Layers 0 and 1 into out[T1, C1]: per block of layer-1 rows, the layer-0 rows it reads are
    // computed into a small buffer first.
    void first_two_layers(const Matrix& samples, float* out) const {
        static thread_local Scratch block_buffer;
        const Layer& l1 = layers_[1];
        const int64_t t0 = layers_[0].geometry.output_length(samples.rows()), c0 = first_taps_.cols();
        const int64_t t1 = l1.geometry.output_length(t0), c1 = l1.conv.out_features();
        const int64_t k = l1.geometry.kernel, stride = l1.geometry.stride;
        const int64_t block = std::max<int64_t>(1, std::min<int64_t>(t1, (int64_t(2) << 20) / (k * c0)));  // conv1d_into's block
        float* in = block_buffer.get(size_t(((block - 1) * stride + k) * c0));
        for (int64_t r0 = 0; r0 < t1; r0 += block) {
            const int64_t rows = std::min(block, t1 - r0), in_rows = (rows - 1) * stride + k;
            first_layer_rows(samples.data(), r0 * stride, in_rows, in);
            float* y = out + r0 * c1;
            conv1d_into(in, in_rows, c0, l1.conv, l1.geometry, 0, c0, y, [&](int64_t first, int64_t n) {
                layer_norm_activation_rows(y + first * c1, n, c1, l1.norm_w, l1.norm_b, 1e-5f, act_);
            });
        }
    }

    std::vector<Layer> layers_;
    Matrix first_taps_;     // [k, C0]
    RowVector first_bias_;  // [C0] or empty
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
