// The shared transformer block. Families differ only in typed settings, never in code paths:
//   post-norm (wav2vec2 / data2vec-audio, RoBERTa / data2vec-text):
//       x = LN1(x + Attn(x));              x = LN2(x + FFN(x))
//   pre-norm with layer scale (BEiT / data2vec-vision):
//       x = x + lambda1 * Attn(LN1(x));    x = x + lambda2 * FFN(LN2(x))
#pragma once
#include "d2v/core/attention.h"
#include "d2v/model_file.h"

namespace d2v {

enum class NormPosition { Post, Pre };

struct TransformerLayerSettings {
    NormPosition norm = NormPosition::Post;
    float layer_norm_eps = 1e-5f;
    Activation activation = Activation::Gelu;
    int64_t num_heads = 1;
    RelativeKeyEmbedding::Mode relative_mode = RelativeKeyEmbedding::Mode::None;
    int64_t max_positions = 0;  // rows of the relative distance table are 2 * max_positions - 1
};

// Tensor names of one layer in a checkpoint; an empty name means "this model has no such tensor".
struct TransformerLayerNames {
    std::string query_w, query_b, key_w, key_b, value_w, value_b, attn_out_w, attn_out_b;
    std::string norm1_w, norm1_b;  // post-norm: after attention; pre-norm: before attention
    std::string ffn_in_w, ffn_in_b, ffn_out_w, ffn_out_b;
    std::string norm2_w, norm2_b;  // post-norm: after the FFN; pre-norm: before the FFN
    std::string lambda1, lambda2;  // layer scale (pre-norm only)
    std::string relative_distance;  // relative_key(_query) distance embedding [2 * max_positions - 1, head_dim]
};

// Weight matrices may be reduced precision (convert.py --outtype bf16 / q8); biases are always f32.
// Linear keeps its own packed copy, so the file's pages of the matrix are released (goal: one copy of
// the weights resident, not two).
inline Linear load_linear(const ModelFile& file, const std::string& weight, const std::string& bias, int64_t out,
                          int64_t in) {
    Linear linear(file.linear_weight(weight), out, in, bias.empty() ? nullptr : file.tensor(bias));
    file.release_tensor_pages(weight);
    return linear;
}

// Adds the tensors of one layer to an architecture's table (names + shapes implied by the config).
inline void add_layer_specs(TensorTable& table, const TransformerLayerNames& n, int64_t hidden, int64_t intermediate,
                            int64_t distance_rows = 0, int64_t head_dim = 0) {
    auto add = [&](const std::string& name, Shape shape) {
        if (!name.empty()) table.add(name, std::move(shape));
    };
    add(n.query_w, {hidden, hidden}); add(n.query_b, {hidden});
    add(n.key_w, {hidden, hidden});   add(n.key_b, {hidden});
    add(n.value_w, {hidden, hidden}); add(n.value_b, {hidden});
    add(n.attn_out_w, {hidden, hidden}); add(n.attn_out_b, {hidden});
    add(n.norm1_w, {hidden}); add(n.norm1_b, {hidden});
    add(n.ffn_in_w, {intermediate, hidden}); add(n.ffn_in_b, {intermediate});
    add(n.ffn_out_w, {hidden, intermediate}); add(n.ffn_out_b, {hidden});
    add(n.norm2_w, {hidden}); add(n.norm2_b, {hidden});
    add(n.lambda1, {hidden}); add(n.lambda2, {hidden});
    if (distance_rows > 0) add(n.relative_distance, {distance_rows, head_dim});
}

class TransformerLayer {
public:
    TransformerLayer(const ModelFile& file, const TransformerLayerNames& n, const TransformerLayerSettings& s,
                     int64_t hidden, int64_t intermediate)
        : settings_(s) {
        auto opt = [&](const std::string& name) { return name.empty() ? nullptr : file.tensor(name); };
        AttentionWeights aw{load_linear(file, n.query_w, n.query_b, hidden, hidden),
                            load_linear(file, n.key_w, n.key_b, hidden, hidden),
                            load_linear(file, n.value_w, n.value_b, hidden, hidden),
                            load_linear(file, n.attn_out_w, n.attn_out_b, hidden, hidden)};
        RelativeKeyEmbedding relative;
        if (s.relative_mode != RelativeKeyEmbedding::Mode::None) {
            relative = {s.relative_mode, file.tensor(n.relative_distance), s.max_positions};
        }
        attention_ = MultiHeadAttention(std::move(aw), s.num_heads, relative);
        ffn_in_ = load_linear(file, n.ffn_in_w, n.ffn_in_b, intermediate, hidden);
        ffn_out_ = load_linear(file, n.ffn_out_w, n.ffn_out_b, hidden, intermediate);
        norm1_w_ = opt(n.norm1_w); norm1_b_ = opt(n.norm1_b);
        norm2_w_ = opt(n.norm2_w); norm2_b_ = opt(n.norm2_b);
        lambda1_ = opt(n.lambda1); lambda2_ = opt(n.lambda2);
    }

    // x: [T, hidden] in place. With a cache, x holds only the new positions (incremental decoding).
    // Intermediates live in buffers of the calling thread, reused by every layer and every call.
    void forward(Matrix& x, const AttentionBias& bias, Matrix* attention_probs = nullptr, KeyValueCache* cache = nullptr) const {
        struct Buffers {
            Scratch update, intermediate;
        };
        static thread_local Buffers buf;
        const float eps = settings_.layer_norm_eps;
        const int64_t T = x.rows(), H = x.cols();
        float* update = buf.update.get(size_t(T * H));
        if (settings_.norm == NormPosition::Post) {
            attention_.forward_into(x, bias, update, attention_probs, cache);
            add_layer_norm_rows(x, update, norm1_w_, norm1_b_, eps);
            feed_forward(x, update, buf.intermediate);
            add_layer_norm_rows(x, update, norm2_w_, norm2_b_, eps);
        } else {
            // The attention input must be a Matrix (the cache path reads it as one); it is reused.
            thread_local Matrix normed;
            normed = x;
            layer_norm_rows(normed, norm1_w_, norm1_b_, eps);
            attention_.forward_into(normed, bias, update, attention_probs, cache);
            add_scaled(x, update, lambda1_);
            normed = x;
            layer_norm_rows(normed, norm2_w_, norm2_b_, eps);
            feed_forward(normed, update, buf.intermediate);
            add_scaled(x, update, lambda2_);
        }
    }

private:
    // out[T, hidden] = W2 act(W1 x + b1) + b2
    void feed_forward(const Matrix& x, float* out, Scratch& intermediate) const {
        const int64_t T = x.rows(), I = ffn_in_.out_features();
        float* h = intermediate.get(size_t(T * I));
        ffn_in_.forward(x.data(), T, h);
        const Activation act = settings_.activation;
#pragma omp parallel for schedule(static) if (T * I > (1 << 15))
        for (int64_t r = 0; r < T; ++r) apply_activation(act, h + r * I, I);
        ffn_out_.forward(h, T, out);
    }
    // x += scale * update (scale per channel, or 1 when null)
    static void add_scaled(Matrix& x, const float* update, const float* scale) {
        const int64_t rows = x.rows(), cols = x.cols();
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 15))
        for (int64_t r = 0; r < rows; ++r) {
            Eigen::Map<Eigen::ArrayXf> row(x.row(r).data(), cols);
            const Eigen::Map<const Eigen::ArrayXf> u(update + r * cols, cols);
            if (scale)
                row += u * Eigen::Map<const Eigen::ArrayXf>(scale, cols);
            else
                row += u;
        }
    }

    TransformerLayerSettings settings_;
    MultiHeadAttention attention_;
    Linear ffn_in_, ffn_out_;
    const float *norm1_w_ = nullptr, *norm1_b_ = nullptr, *norm2_w_ = nullptr, *norm2_b_ = nullptr;
    const float *lambda1_ = nullptr, *lambda2_ = nullptr;
};

}  // namespace d2v
