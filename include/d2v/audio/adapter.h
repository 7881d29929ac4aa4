// Optional adapter after the encoder (add_adapter): down-projection when output_hidden_size differs
// from hidden_size, then strided conv + GLU layers that shorten the sequence.
#pragma once
#include "d2v/audio/tensor_names.h"
#include "d2v/kernels/conv1d.h"

namespace d2v::audio {

class Adapter {
public:
    Adapter(const ModelFile& file, const AudioConfig& c) : out_(c.output_hidden_size) {
        if (c.output_hidden_size != c.hidden_size) {
            proj_ = load_linear(file, name(T::AdapterProjWeight), name(T::AdapterProjBias), out_, c.hidden_size);
            proj_norm_w_ = file.tensor(name(T::AdapterProjNormWeight));
            proj_norm_b_ = file.tensor(name(T::AdapterProjNormBias));
        }
        geometry_.kernel = c.adapter_kernel_size;
        geometry_.stride = c.adapter_stride;
        geometry_.pad_left = geometry_.pad_right = 1;  // fixed padding=1 in Transformers
        for (int64_t i = 0; i < c.num_adapter_layers; ++i) {
            const auto w = conv_weight_tap_major(file.tensor(name(T::AdapterConvWeight, int(i))), 2 * out_, out_, c.adapter_kernel_size);
            convs_.emplace_back(w.data(), 2 * out_, c.adapter_kernel_size * out_, file.tensor(name(T::AdapterConvBias, int(i))));
        }
    }

    Matrix forward(Matrix x) const {
        if (!proj_.empty()) {
            x = proj_(x);
            layer_norm_rows(x, proj_norm_w_, proj_norm_b_, 1e-5f);
        }
        for (const auto& conv : convs_) {
            Matrix y = conv1d(x, conv, geometry_);
            // GLU over channels: first half * sigmoid(second half)
            x = y.leftCols(out_).array() * (1.0f / (1.0f + (-y.rightCols(out_).array()).exp()));
        }
        return x;
    }

private:
    int64_t out_;
    Linear proj_;
    const float *proj_norm_w_ = nullptr, *proj_norm_b_ = nullptr;
    Conv1dGeometry geometry_;
    std::vector<Linear> convs_;
};

}  // namespace d2v::audio
