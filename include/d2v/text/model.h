// Data2VecTextModel: text embeddings -> post-norm transformer layers (the shared core) -> optional
// pooler (tanh(dense(first token))). is_decoder makes attention causal; a key/value cache makes
// incremental decoding cost O(t) per step.
#pragma once
#include <memory>
#include <optional>

#include "d2v/ndarray.h"
#include "d2v/text/embeddings.h"

namespace d2v::text {

// One row per sequence; all rows the same length (right-padded), attention_mask 1 = real token.
struct TextBatch {
    std::vector<std::vector<int64_t>> input_ids, attention_mask, token_type_ids;
    int64_t choices = 0;  // multiple choice: rows are B examples x `choices` consecutive rows
    int64_t size() const { return int64_t(input_ids.size()); }
};

struct TextRunOptions {
    bool hidden_states = false;
    bool attentions = false;
};

struct TextModelOutput {
    std::vector<Matrix> last_hidden_state;           // per item [T, H]
    std::optional<Matrix> pooler_output;             // [B, H] when the checkpoint has a pooler
    std::vector<std::vector<Matrix>> hidden_states;  // [layers + 1][item]
    std::vector<std::vector<Matrix>> attentions;     // [layers][item] [heads * T, T]
};

// Incremental decoding state of one sequence.
struct DecoderState {
    std::vector<KeyValueCache> layers;
    int64_t tokens_seen = 0;  // non-pad tokens so far (for position ids)
    int64_t positions_fed = 0;  // all tokens so far
};

class TextModel {
public:
    TextModel(std::shared_ptr<const ModelFile> file, const TextConfig& c, bool use_pooler)
        : file_(std::move(file)), config_(c), embeddings_(*file_, c) {
        TransformerLayerSettings s;
        s.norm = NormPosition::Post;
        s.layer_norm_eps = c.layer_norm_eps;
        s.activation = c.hidden_act;
        s.num_heads = c.num_attention_heads;
        s.relative_mode = c.position_embedding;
        s.max_positions = c.max_position_embeddings;
        for (int64_t i = 0; i < c.num_hidden_layers; ++i)
            layers_.emplace_back(*file_, text_layer_names(int(i)), s, c.hidden_size, c.intermediate_size);
        if (use_pooler) pooler_ = load_linear(*file_, names::kPoolerWeight, names::kPoolerBias, c.hidden_size, c.hidden_size);
    }

    const TextConfig& config() const { return config_; }
    bool has_pooler() const { return !pooler_.empty(); }
    const TextEmbeddings& embeddings() const { return embeddings_; }

    TextModelOutput forward(const TextBatch& batch, const TextRunOptions& options) const {
        const size_t B = size_t(batch.size());
        TextModelOutput out;
        if (options.hidden_states) out.hidden_states.assign(layers_.size() + 1, std::vector<Matrix>(B));
        if (options.attentions) out.attentions.assign(layers_.size(), std::vector<Matrix>(B));
        Matrix first_tokens(int64_t(B), config_.hidden_size);
        if (B == 0) throw Error("empty text batch");
        if ((!batch.attention_mask.empty() && batch.attention_mask.size() != B) ||
            (!batch.token_type_ids.empty() && batch.token_type_ids.size() != B))
            throw Error("attention_mask / token_type_ids must have one row per input_ids row");
        for (size_t b = 0; b < B; ++b) {
            const auto& ids = batch.input_ids[b];
            if (ids.empty()) throw Error("text batch row " + std::to_string(b) + " has no tokens");
            if ((!batch.attention_mask.empty() && batch.attention_mask[b].size() != ids.size()) ||
                (!batch.token_type_ids.empty() && batch.token_type_ids[b].size() != ids.size()))
                throw Error("attention_mask / token_type_ids rows must be as long as their input_ids row");
            const std::vector<int64_t> no_types;
            Matrix x = embeddings_.forward(ids, batch.token_type_ids.empty() ? no_types : batch.token_type_ids[b],
                                           embeddings_.position_ids(ids));
            std::vector<float> key_bias;
            AttentionBias bias;
            bias.causal = config_.is_decoder;
            if (!batch.attention_mask.empty()) {
                key_bias.resize(ids.size());
                for (size_t t = 0; t < ids.size(); ++t)
                    key_bias[t] = batch.attention_mask[b][t] ? 0.0f : std::numeric_limits<float>::lowest();
                bias.key_padding = key_bias.data();
            }
            for (size_t l = 0; l < layers_.size(); ++l) {
                if (options.hidden_states) out.hidden_states[l][b] = x;
                layers_[l].forward(x, bias, options.attentions ? &out.attentions[l][b] : nullptr);
            }
            if (options.hidden_states) out.hidden_states.back()[b] = x;
            first_tokens.row(int64_t(b)) = x.row(0);
            out.last_hidden_state.push_back(std::move(x));
        }
        if (!pooler_.empty()) {
            Matrix pooled = pooler_(first_tokens);
            apply_activation(Activation::Tanh, pooled);
            out.pooler_output = std::move(pooled);
        }
        return out;
    }

    // Feeds `new_ids` of one sequence after what `state` has seen; returns their final hidden states.
    // Position ids are the model's own (RoBERTa: from padding_idx + 1), or with `index_positions`
    // the plain token index 0, 1, 2, ... that Transformers' generate() passes to this model.
    Matrix forward_incremental(const std::vector<int64_t>& new_ids, DecoderState& state, bool index_positions = false) const {
        if (state.layers.empty()) state.layers.resize(layers_.size());
        std::vector<int64_t> positions = embeddings_.position_ids(new_ids, state.tokens_seen);
        if (index_positions)
            for (size_t i = 0; i < positions.size(); ++i) positions[i] = state.positions_fed + int64_t(i);
        state.positions_fed += int64_t(new_ids.size());
        Matrix x = embeddings_.forward(new_ids, {}, positions);
        for (int64_t id : new_ids) state.tokens_seen += id != config_.pad_token_id ? 1 : 0;
        AttentionBias bias;
        bias.causal = true;
        for (size_t l = 0; l < layers_.size(); ++l) layers_[l].forward(x, bias, nullptr, &state.layers[l]);
        return x;
    }

private:
    std::shared_ptr<const ModelFile> file_;
    TextConfig config_;
    TextEmbeddings embeddings_;
    std::vector<TransformerLayer> layers_;
    Linear pooler_;
};

}  // namespace d2v::text
