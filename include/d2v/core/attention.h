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
    // Or the per-head bias read through a table: row (h, q) is table[h * table_cols + index[q * T_k + k]]
    // over k. BEiT's relative position bias at 640^2 would take 123 MB per layer as a [heads * T, T] matrix.
    struct Gathered {
        const float* table = nullptr;   // [heads, table_cols]
        int64_t table_cols = 0;
        const int32_t* index = nullptr;  // [T_q * T_k], each < table_cols
    } gathered;
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
        Matrix out(x.rows(), w_.output.out_features());
        forward_into(x, bias, out.data(), probs, cache);
        return out;
    }

    // As forward(), writing [T, hidden] to `out` (not aliasing x). Intermediates live in buffers of
    // the calling thread that later calls reuse.
    void forward_into(const Matrix& x, const AttentionBias& bias, float* out, Matrix* probs = nullptr,
                      KeyValueCache* cache = nullptr) const {
        struct Buffers {
            Scratch q, k, v, context;
        };
        static thread_local Buffers buf;
        const int64_t T = x.rows(), hidden = w_.query.out_features();
        auto q = buf.q.matrix(T, hidden);
        w_.query.forward(x.data(), T, q.data());
        const int64_t past = cache ? cache->length() : 0;
        const float* keys;
        const float* values;
        if (cache) {
            append_rows(cache->keys, w_.key(x));
            append_rows(cache->values, w_.value(x));
            keys = cache->keys.data();
            values = cache->values.data();
        } else {
            auto k = buf.k.matrix(T, hidden), v = buf.v.matrix(T, hidden);
            w_.key.forward(x.data(), T, k.data());
            w_.value.forward(x.data(), T, v.data());
            keys = k.data();
            values = v.data();
        }
        const int64_t Tk = past + T;
        if (relative_.mode != RelativeKeyEmbedding::Mode::None && Tk > relative_.max_positions)
            throw Error("sequence of " + std::to_string(Tk) + " tokens is longer than max_position_embeddings (" +
                        std::to_string(relative_.max_positions) + ") that relative position embeddings cover");
        auto context = buf.context.matrix(T, hidden);
        if (probs) probs->resize(heads_ * T, Tk);
        attend(q.data(), keys, values, T, Tk, past, bias, context.data(), probs);
        w_.output.forward(context.data(), T, out);
    }

    int64_t num_heads() const { return heads_; }

private:
    using Strided = Eigen::Map<const Matrix, 0, Eigen::OuterStride<>>;

    // softmax(scale * q k^T + bias) v per head, reading each head's columns of q/k/v in place (no
    // per-head copies). Work items are (head, block of query rows); a block's scores stay in a
    // buffer of the executing thread, sized to stay in L2 (~1 MiB), so the scale/bias/max pass, the
    // exp/sum pass and the product with v all hit cache.
    void attend(const float* q, const float* keys, const float* values, int64_t T, int64_t Tk, int64_t past,
                const AttentionBias& bias, float* context, Matrix* probs) const {
        const int64_t hidden = heads_ * head_dim_, D = head_dim_;
        const float scaling = 1.0f / std::sqrt(float(D));
        const int64_t widest = std::max<int64_t>(1, std::min<int64_t>(T, std::max<int64_t>(16, (int64_t(1) << 18) / std::max<int64_t>(Tk, 1))));
        const int64_t blocks = (T + widest - 1) / widest;
        const int64_t block = (T + blocks - 1) / blocks;  // equal blocks: no short tail item
        const bool relative = relative_.mode != RelativeKeyEmbedding::Mode::None;
#pragma omp parallel for schedule(dynamic) collapse(2) if (heads_ * blocks > 1 && T * Tk * D > (1 << 16))
        for (int64_t h = 0; h < heads_; ++h) {
            for (int64_t b = 0; b < blocks; ++b) {
                static thread_local Scratch score_buffer, sum_buffer, bias_row;
                const int64_t r0 = b * block, rows = std::min(block, T - r0);
                const Strided qh(q + r0 * hidden + h * D, rows, D, Eigen::OuterStride<>(hidden));
                const Strided kh(keys + h * D, Tk, D, Eigen::OuterStride<>(hidden));
                const Strided vh(values + h * D, Tk, D, Eigen::OuterStride<>(hidden));
                auto scores = score_buffer.matrix(rows, Tk);
                scores.noalias() = qh * kh.transpose();
                if (relative) add_relative_scores(scores, qh, kh, past + r0);
                float* inv_sum = sum_buffer.get(size_t(rows));
                for (int64_t r = 0; r < rows; ++r) {
                    const float* head_bias = bias.per_head ? bias.per_head->row(h * T + r0 + r).data() : nullptr;
                    if (bias.gathered.table) head_bias = gather_row(bias.gathered, h, r0 + r, Tk, bias_row);
                    const int64_t visible = bias.causal ? std::min(Tk, past + r0 + r + 1) : Tk;
                    inv_sum[r] = softmax_row(scores.row(r).data(), Tk, visible, scaling, head_bias, bias.key_padding);
                }
                Eigen::Map<Matrix, 0, Eigen::OuterStride<>> ctx(context + r0 * hidden + h * D, rows, D, Eigen::OuterStride<>(hidden));
                if (probs) {
                    // Callers that read the probabilities get them normalised, and the context from them.
                    for (int64_t r = 0; r < rows; ++r) scores.row(r) *= inv_sum[r];
                    ctx.noalias() = scores * vh;
                    probs->block(h * T + r0, 0, rows, Tk) = scores;
                } else {
                    // Normalising the [rows, D] context costs D / Tk of normalising the scores.
                    ctx.noalias() = scores * vh;
                    for (int64_t r = 0; r < rows; ++r) ctx.row(r) *= inv_sum[r];
                }
            }
        }
    }

    // One row of scores: s = s * scale (+ head_bias) (+ key_bias), keys at or past `visible` masked
    // (causal), then s = exp(s - max). Returns 1 / sum(s). Adding lowest() for a padded key keeps
    // Transformers' semantics: a row with every key padded comes out uniform, as there.
    static float softmax_row(float* s, int64_t n, int64_t visible, float scale, const float* head_bias, const float* key_bias) {
        using Row = Eigen::Map<const Eigen::ArrayXf>;
        Eigen::Map<Eigen::ArrayXf> visible_part(s, visible);
        if (head_bias && key_bias)
            visible_part = visible_part * scale + Row(head_bias, visible) + Row(key_bias, visible);
        else if (head_bias || key_bias)
            visible_part = visible_part * scale + Row(head_bias ? head_bias : key_bias, visible);
        else
            visible_part *= scale;
        const float m = visible_part.maxCoeff();
        for (int64_t c = visible; c < n; ++c) s[c] = std::numeric_limits<float>::lowest();
        Eigen::Map<Eigen::ArrayXf> v(s, n);
        v = (v - m).exp();
        return 1.0f / v.sum();
    }

    static const float* gather_row(const AttentionBias::Gathered& g, int64_t head, int64_t query, int64_t Tk, Scratch& buffer) {
        float* row = buffer.get(size_t(Tk));
        const float* table = g.table + head * g.table_cols;
        const int32_t* index = g.index + query * Tk;
        for (int64_t k = 0; k < Tk; ++k) row[k] = table[index[k]];
        return row;
    }

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
    template <typename S, typename Q, typename K>
    void add_relative_scores(S& scores, const Q& qh, const K& kh, int64_t first_query) const {
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
