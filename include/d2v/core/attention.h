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

// RoBERTa/BERT "relative_key" / "relative_key_query" position scores (Shaw et al.): a learned
// embedding per clipped distance l - r, dotted with the query (and the key), added to the scores
// before scaling.
struct RelativeKeyEmbedding {
    enum class Mode { None, Key, KeyQuery } mode = Mode::None;
    const float* table = nullptr;  // [2 * max_positions - 1, head_dim]
    int64_t max_positions = 0;
};

// Keys and values of the positions seen so far (incremental decoding): step t costs O(t).
struct KeyValueCache {
    Matrix keys, values;  // [positions, hidden]
    int64_t length() const { return keys.rows(); }
};

class MultiHeadAttention {
public:
    MultiHeadAttention() = default;
    MultiHeadAttention(AttentionWeights w, int64_t num_heads, RelativeKeyEmbedding relative = {})
        : w_(std::move(w)), heads_(num_heads), relative_(relative) {
        const int64_t hidden = w_.query.out_features();
        if (num_heads <= 0 || hidden % num_heads != 0)
            throw Error("hidden size " + std::to_string(hidden) + " is not divisible by num_attention_heads " +
                        std::to_string(num_heads));
        head_dim_ = hidden / num_heads;
    }

    // x: [T, hidden] (the new positions). With a cache, keys/values of x are appended to it and the
    // queries sit at positions cache.length() .. + T. probs (optional) receives [heads * T, T_keys].
    Matrix forward(const Matrix& x, const AttentionBias& bias, Matrix* probs = nullptr, KeyValueCache* cache = nullptr) const {
        const int64_t T = x.rows();
        const Matrix q = w_.query(x);
        Matrix k = w_.key(x), v = w_.value(x);
        const int64_t past = cache ? cache->length() : 0;
        if (cache) {
            append_rows(cache->keys, k);
            append_rows(cache->values, v);
        }
        const Matrix& keys = cache ? cache->keys : k;
        const Matrix& values = cache ? cache->values : v;
        const int64_t Tk = keys.rows();
        if (relative_.mode != RelativeKeyEmbedding::Mode::None && Tk > relative_.max_positions)
            throw Error("sequence of " + std::to_string(Tk) + " tokens is longer than max_position_embeddings (" +
                        std::to_string(relative_.max_positions) + ") that relative position embeddings cover");
        Matrix context(T, q.cols());
        if (probs) probs->resize(heads_ * T, Tk);
        const float scaling = 1.0f / std::sqrt(float(head_dim_));
        // Query rows per work item: bounds the score buffer for long audio.
        const int64_t block = std::max<int64_t>(1, std::min<int64_t>(T, (int64_t(4) << 20) / std::max<int64_t>(Tk, 1)));
        const int64_t blocks = (T + block - 1) / block;
#pragma omp parallel for schedule(dynamic) collapse(2)
        for (int64_t h = 0; h < heads_; ++h) {
            for (int64_t b = 0; b < blocks; ++b) {
                const int64_t r0 = b * block, rows = std::min(block, T - r0);
                const auto qh = q.block(r0, h * head_dim_, rows, head_dim_);
                const auto kh = keys.middleCols(h * head_dim_, head_dim_);
                Matrix scores = qh * kh.transpose();
                if (relative_.mode != RelativeKeyEmbedding::Mode::None) add_relative_scores(scores, qh, kh, past + r0);
                scores *= scaling;
                if (bias.per_head) scores += bias.per_head->block(h * T + r0, 0, rows, Tk);
                if (bias.key_padding) scores.rowwise() += ConstRowVectorMap(bias.key_padding, Tk);
                if (bias.causal)
                    for (int64_t r = 0; r < rows; ++r)
                        for (int64_t c = past + r0 + r + 1; c < Tk; ++c) scores(r, c) = std::numeric_limits<float>::lowest();
                for (int64_t r = 0; r < rows; ++r) softmax_inplace(scores.row(r).data(), Tk);
                context.block(r0, h * head_dim_, rows, head_dim_).noalias() = scores * values.middleCols(h * head_dim_, head_dim_);
                if (probs) probs->block(h * T + r0, 0, rows, Tk) = scores;
            }
        }
        return w_.output(context);
    }

    int64_t num_heads() const { return heads_; }

private:
    static void append_rows(Matrix& m, const Matrix& rows) {
        if (m.size() == 0) {
            m = rows;
            return;
        }
        Matrix grown(m.rows() + rows.rows(), m.cols());
        grown << m, rows;
        m.swap(grown);
    }

    // scores(l, r) += q_l . E[d] (+ k_r . E[d]) with d = (first_query + l) - r + max_positions - 1.
    template <typename Q, typename K>
    void add_relative_scores(Matrix& scores, const Q& qh, const K& kh, int64_t first_query) const {
        const int64_t M = relative_.max_positions;
        const Eigen::Map<const Matrix> table(relative_.table, 2 * M - 1, head_dim_);
        const Matrix by_query = qh * table.transpose();  // [rows, 2M-1]
        Matrix by_key;
        if (relative_.mode == RelativeKeyEmbedding::Mode::KeyQuery) by_key = kh * table.transpose();  // [Tk, 2M-1]
        for (int64_t l = 0; l < scores.rows(); ++l)
            for (int64_t r = 0; r < scores.cols(); ++r) {
                const int64_t d = first_query + l - r + M - 1;
                scores(l, r) += by_query(l, d) + (by_key.size() ? by_key(r, d) : 0.0f);
            }
    }

    AttentionWeights w_;
    int64_t heads_ = 1, head_dim_ = 1;
    RelativeKeyEmbedding relative_;
};

}  // namespace d2v
