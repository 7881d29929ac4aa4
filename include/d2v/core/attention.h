// Multi-head self-attention shared by the audio, text and vision encoders.
#pragma once
#include <cmath>
#include <limits>

#include "d2v/kernels/linear.h"
#include "d2v/kernels/ops.h"

namespace d2v {

// One additive bias carries everything that shapes attention scores: padded keys, BEiT's relative
// position bias, a causal mask.
struct AttentionBias {
    const float* key_padding = nullptr;  // [T_k]: 0 for a real key, lowest() for padding (as Transformers adds finfo.min)
    const Matrix* per_head = nullptr;    // [heads * T_q, T_k] added to each head's scores
    bool causal = false;
};

inline std::vector<float> key_padding_bias(int64_t total, int64_t valid) {
    std::vector<float> bias(size_t(total), 0.0f);
    for (int64_t t = valid; t < total; ++t) bias[size_t(t)] = std::numeric_limits<float>::lowest();
    return bias;
}

struct AttentionWeights {
    Linear query, key, value, output;
};

class MultiHeadAttention {
public:
    MultiHeadAttention() = default;
    MultiHeadAttention(AttentionWeights w, int64_t num_heads) : w_(std::move(w)), heads_(num_heads) {
        const int64_t hidden = w_.query.out_features();
        if (num_heads <= 0 || hidden % num_heads != 0)
            throw Error("hidden size " + std::to_string(hidden) + " is not divisible by num_attention_heads " +
                        std::to_string(num_heads));
        head_dim_ = hidden / num_heads;
    }

    // x: [T, hidden]. probs (optional) receives the softmax weights as [heads * T, T].
    Matrix forward(const Matrix& x, const AttentionBias& bias, Matrix* probs = nullptr) const {
        const int64_t T = x.rows();
        const Matrix q = w_.query(x), k = w_.key(x), v = w_.value(x);
        Matrix context(T, q.cols());
        if (probs) probs->resize(heads_ * T, T);
        const float scaling = 1.0f / std::sqrt(float(head_dim_));
        // Query rows per work item: bounds the score buffer for long audio.
        const int64_t block = std::max<int64_t>(1, std::min<int64_t>(T, (int64_t(4) << 20) / std::max<int64_t>(T, 1)));
        const int64_t blocks = (T + block - 1) / block;
#pragma omp parallel for schedule(dynamic) collapse(2)
        for (int64_t h = 0; h < heads_; ++h) {
            for (int64_t b = 0; b < blocks; ++b) {
                const int64_t r0 = b * block, rows = std::min(block, T - r0);
                Matrix scores = q.block(r0, h * head_dim_, rows, head_dim_) * k.middleCols(h * head_dim_, head_dim_).transpose();
                scores *= scaling;
                if (bias.per_head) scores += bias.per_head->block(h * T + r0, 0, rows, T);
                if (bias.key_padding) scores.rowwise() += ConstRowVectorMap(bias.key_padding, T);
                if (bias.causal)
                    for (int64_t r = 0; r < rows; ++r)
                        for (int64_t c = r0 + r + 1; c < T; ++c) scores(r, c) = std::numeric_limits<float>::lowest();
                for (int64_t r = 0; r < rows; ++r) softmax_inplace(scores.row(r).data(), T);
                context.block(r0, h * head_dim_, rows, head_dim_).noalias() = scores * v.middleCols(h * head_dim_, head_dim_);
                if (probs) probs->block(h * T + r0, 0, rows, T) = scores;
            }
        }
        return w_.output(context);
    }

    int64_t num_heads() const { return heads_; }

private:
    AttentionWeights w_;
    int64_t heads_ = 1, head_dim_ = 1;
};

}  // namespace d2v
