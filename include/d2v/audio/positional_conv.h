// Relative positional information for the audio encoder: num_conv_pos_embeddings layers of
// grouped conv (padding k/2, dropping the last frame when k is even so length is kept),
// parameter-free LayerNorm, activation. Its output is added to the encoder input.
#pragma once
#include "d2v/audio/tensor_names.h"
#include "d2v/kernels/conv1d.h"

namespace d2v::audio {

class PositionalConvEmbedding {
public:
    PositionalConvEmbedding(const ModelFile& file, const AudioConfig& c)
        : groups_(c.num_conv_pos_embedding_groups), act_(c.feat_extract_activation) {
        const int64_t H = c.hidden_size, k = c.conv_pos_kernel_size, per_group = H / groups_;
        geometry_.kernel = k;
        geometry_.pad_left = geometry_.pad_right = k / 2;
        for (int64_t i = 0; i < c.num_conv_pos_embeddings; ++i) {
            const float* w = file.tensor(name(T::PosConvWeight, int(i)));
            const float* b = file.tensor(name(T::PosConvBias, int(i)));
            std::vector<Linear> per_group_convs;
            for (int64_t g = 0; g < groups_; ++g) {
                const auto wg = conv_weight_tap_major(w + g * per_group * per_group * k, per_group, per_group, k);
                per_group_convs.emplace_back(wg.data(), per_group, k * per_group, b + g * per_group);
            }
            layers_.push_back(std::move(per_group_convs));
        }
    }

    // x: [T, H] -> positional embedding [T, H]
    Matrix forward(const Matrix& x) const {
        const int64_t T = x.rows(), H = x.cols(), per_group = H / groups_;
        Matrix h = x, out(T, H);
        for (const auto& convs : layers_) {
            // One group per work item, each group's im2col and product on one thread: 16 small
            // products (48 channels) gain nothing from splitting further, and the layer costs one
            // parallel region instead of two per group.
#pragma omp parallel for schedule(dynamic) if (groups_ > 1 && T * H > (1 << 14))
            for (int64_t g = 0; g < groups_; ++g) {
                static thread_local Scratch group_out;
                const int64_t t_out = geometry_.output_length(T);  // T + 1 for even k
                float* y = group_out.get(size_t(t_out * per_group));
                conv1d_into(h.data(), T, H, convs[size_t(g)], geometry_, g * per_group, per_group, y, [](int64_t, int64_t) {});
                // even k: drop the extra last frame
                out.middleCols(g * per_group, per_group) = Eigen::Map<const Matrix>(y, T, per_group);
            }
            layer_norm_activation_rows(out.data(), T, H, nullptr, nullptr, 1e-5f, act_);
            h.swap(out);
        }
        return h;
    }

private:
    int64_t groups_;
    Activation act_;
    Conv1dGeometry geometry_;
    std::vector<std::vector<Linear>> layers_;
};

}  // namespace d2v::audio
