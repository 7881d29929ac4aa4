// Data2VecVisionModel (BEiT): patch embeddings -> pre-norm transformer layers with layer scale and
// relative position bias (the shared core; the bias rides in the attention's additive bias) ->
// final LayerNorm (only without mean pooling) -> optional pooler (LayerNorm of the mean patch token,
// or the CLS token).
#pragma once
#include <memory>
#include <mutex>
#include <optional>

#include "d2v/ndarray.h"
#include "d2v/vision/patch_embeddings.h"
#include "d2v/vision/relative_position_bias.h"

namespace d2v::vision {

struct VisionBatch {
    NdArray pixel_values;                             // [B, 3, H, W]
    std::vector<std::vector<bool>> bool_masked_pos;   // empty, or [B][patches]
    bool interpolate_pos_encoding = false;            // accepted for API parity: position tables are resized whenever needed
    int64_t size() const { return pixel_values.shape.empty() ? 0 : pixel_values.shape[0]; }
    int64_t height() const { return pixel_values.shape[2]; }
    int64_t width() const { return pixel_values.shape[3]; }
};

struct VisionRunOptions {
    bool hidden_states = false;
    bool attentions = false;
    bool auxiliary_logits = false;  // segmentation: also report the FCN auxiliary head's logits
};

struct VisionModelOutput {
    int64_t grid_height = 0, grid_width = 0;
    std::vector<Matrix> last_hidden_state;           // per item [1 + patches, H]
    std::optional<Matrix> pooler_output;             // [B, H]
    std::vector<std::vector<Matrix>> hidden_states;  // [layers + 1][item], before the final LayerNorm
    std::vector<std::vector<Matrix>> attentions;     // [layers][item] [heads * T, T]
};

class VisionModel {
public:
    VisionModel(std::shared_ptr<const ModelFile> file, const VisionConfig& c, bool with_pooler)
        : file_(std::move(file)), config_(c), embeddings_(*file_, c), with_pooler_(with_pooler) {
        TransformerLayerSettings s;
        s.norm = NormPosition::Pre;
        s.layer_norm_eps = c.layer_norm_eps;
        s.activation = c.hidden_act;
        s.num_heads = c.num_attention_heads;
        const bool layer_scale = c.layer_scale_init_value > 0;
        for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
            layers_.emplace_back(*file_, vision_layer_names(int(i), layer_scale), s, c.hidden_size, c.intermediate_size);
            if (c.use_relative_position_bias)
                layer_bias_.emplace_back(file_->tensor(names::layer_relative_bias(int(i))), c.grid_height(), c.grid_width(), c.num_attention_heads);
        }
        if (c.use_shared_relative_position_bias)
            shared_bias_.emplace(file_->tensor(names::kSharedRelativeBias), c.grid_height(), c.grid_width(), c.num_attention_heads);
        if (!c.use_mean_pooling) {
            final_norm_w_ = file_->tensor(names::kFinalNormWeight);
            final_norm_b_ = file_->tensor(names::kFinalNormBias);
        } else if (with_pooler) {
            pooler_norm_w_ = file_->tensor(names::kPoolerNormWeight);
            pooler_norm_b_ = file_->tensor(names::kPoolerNormBias);
        }
    }

    const VisionConfig& config() const { return config_; }

    VisionModelOutput forward(const VisionBatch& batch, const VisionRunOptions& options) const {
        const auto& shape = batch.pixel_values.shape;
        if (shape.size() != 4 || shape[1] != config_.num_channels || shape[0] < 1 ||
            batch.pixel_values.data.size() != size_t(shape[0] * shape[1] * shape[2] * shape[3]))
            throw Error("pixel_values must be [batch, 3, height, width]");
        if (!batch.bool_masked_pos.empty() && int64_t(batch.bool_masked_pos.size()) != shape[0])
            throw Error("bool_masked_pos must have one row per image");
        const int64_t B = batch.size(), H = batch.height(), W = batch.width(), P = config_.patch_size;
        VisionModelOutput out;
        out.grid_height = H / P;
        out.grid_width = W / P;
        const std::shared_ptr<const GridBias> grid_bias = bias_for_grid(out.grid_height, out.grid_width);
        if (options.hidden_states) out.hidden_states.assign(layers_.size() + 1, std::vector<Matrix>(size_t(B)));
        if (options.attentions) out.attentions.assign(layers_.size(), std::vector<Matrix>(size_t(B)));
        Matrix pooled(B, config_.hidden_size);
        for (int64_t b = 0; b < B; ++b) {
            const float* pixels = batch.pixel_values.data.data() + b * config_.num_channels * H * W;
            const std::vector<bool>* masked = batch.bool_masked_pos.empty() ? nullptr : &batch.bool_masked_pos[size_t(b)];
            Matrix x = embeddings_.forward(pixels, H, W, masked);
            for (size_t l = 0; l < layers_.size(); ++l) {
                if (options.hidden_states) out.hidden_states[l][size_t(b)] = x;
                const AttentionBias bias = grid_bias ? grid_bias->layer(l) : AttentionBias{};
                layers_[l].forward(x, bias, options.attentions ? &out.attentions[l][size_t(b)] : nullptr);
            }
            if (options.hidden_states) out.hidden_states.back()[size_t(b)] = x;
            if (final_norm_w_) layer_norm_rows(x, final_norm_w_, final_norm_b_, config_.layer_norm_eps);
            if (config_.use_mean_pooling) {
                Matrix mean = x.bottomRows(x.rows() - 1).colwise().mean();
                if (pooler_norm_w_) layer_norm_rows(mean, pooler_norm_w_, pooler_norm_b_, config_.layer_norm_eps);
                pooled.row(b) = mean;
            } else {
                pooled.row(b) = x.row(0);
            }
            out.last_hidden_state.push_back(std::move(x));
        }
        if (with_pooler_) out.pooler_output = std::move(pooled);
        return out;
    }

private:
    // Relative position biases of one patch grid: the per-layer tables (shared table added) and the
    // row index, and, when they are small (224^2: 22 MB for 12 layers), every layer's bias. At 640^2
    // all layers' biases would take 1.48 GB (one layer's 123 MB), so there attention reads each
    // bias row through the table and the index.
    struct GridBias {
        int64_t grid_h = 0, grid_w = 0;
        RelativePositionIndex index;
        std::vector<Matrix> tables;  // [layers] head-major, or one (shared bias only)
        std::vector<Matrix> full;    // empty, or [layers] / one: [heads * T, T]

        AttentionBias layer(size_t l) const {
            const size_t i = std::min(l, tables.size() - 1);
            AttentionBias bias;
            if (!full.empty()) bias.per_head = &full[i];
            else bias.gathered = {tables[i].data(), tables[i].cols(), index.row.data()};
            return bias;
        }
    };
    static constexpr int64_t kKeptBiasBytes = int64_t(64) << 20;
    static constexpr size_t kCachedGrids = 4;

    // Thread-safe: forward() may run from several threads; grids are kept most recent last.
    std::shared_ptr<const GridBias> bias_for_grid(int64_t gh, int64_t gw) const {
        if (layer_bias_.empty() && !shared_bias_) return nullptr;
        std::lock_guard<std::mutex> lock(bias_mutex_);
        for (size_t i = 0; i < bias_cache_.size(); ++i)
            if (bias_cache_[i]->grid_h == gh && bias_cache_[i]->grid_w == gw) {
                auto hit = bias_cache_[i];
                bias_cache_.erase(bias_cache_.begin() + int64_t(i));
                bias_cache_.push_back(hit);
                return hit;
            }
        auto g = std::make_shared<GridBias>();
        g->grid_h = gh;
        g->grid_w = gw;
        g->index = RelativePositionIndex(gh, gw);
        for (const auto& b : layer_bias_) g->tables.push_back(b.table_for_grid(gh, gw));
        if (shared_bias_) {
            const Matrix shared = shared_bias_->table_for_grid(gh, gw);
            if (g->tables.empty()) g->tables.push_back(shared);
            else for (auto& t : g->tables) t += shared;
        }
        const int64_t T = g->index.tokens, heads = g->tables[0].rows();
        if (int64_t(g->tables.size()) * heads * T * T * int64_t(sizeof(float)) <= kKeptBiasBytes) {
            g->full.resize(g->tables.size());
            for (size_t i = 0; i < g->tables.size(); ++i) RelativePositionBias::gather(g->tables[i], g->index, g->full[i]);
        }
        if (bias_cache_.size() == kCachedGrids) bias_cache_.erase(bias_cache_.begin());
        bias_cache_.push_back(g);
        return g;
    }

    std::shared_ptr<const ModelFile> file_;
    VisionConfig config_;
    PatchEmbeddings embeddings_;
    bool with_pooler_;
    std::vector<TransformerLayer> layers_;
    std::vector<RelativePositionBias> layer_bias_;
    std::optional<RelativePositionBias> shared_bias_;
    mutable std::mutex bias_mutex_;
    mutable std::vector<std::shared_ptr<const GridBias>> bias_cache_;
    const float *final_norm_w_ = nullptr, *final_norm_b_ = nullptr, *pooler_norm_w_ = nullptr, *pooler_norm_b_ = nullptr;
};

}  // namespace d2v::vision
