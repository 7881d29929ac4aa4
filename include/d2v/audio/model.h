// Data2VecAudioModel: conv feature encoder -> feature projection -> positional conv -> LayerNorm
// -> post-norm transformer layers (the shared core) -> optional adapter.
//
// A padded batch is run the way Transformers runs it: every item at the padded length, with the
// sample lengths shrunk through the conv stack to frame lengths, padded frames zeroed before the
// positional conv and excluded as attention keys. Outputs on padded frames therefore equal
// Transformers' too.
#pragma once
#include <memory>
#include <optional>

#include "d2v/audio/adapter.h"
#include "d2v/audio/feature_encoder.h"
#include "d2v/audio/positional_conv.h"

namespace d2v::audio {

struct AudioBatch {
    Matrix input_values;                  // [B, L] (padded, normalised)
    std::optional<std::vector<int64_t>> lengths;  // samples per item: Transformers' attention_mask.sum(-1)
};

struct RunOptions {
    bool hidden_states = false;
    bool attentions = false;
};

struct AudioModelOutput {
    std::vector<Matrix> last_hidden_state;                 // per item [T, H] (or adapter output)
    std::vector<Matrix> extract_features;                  // per item [T, conv_dim[-1]]
    std::vector<std::vector<Matrix>> hidden_states;        // [num_layers + 1][item] [T, H]
    std::vector<std::vector<Matrix>> attentions;           // [num_layers][item] [heads * T, T]
};

class AudioModel {
public:
    AudioModel(std::shared_ptr<const ModelFile> file, const AudioConfig& config)
        : file_(std::move(file)), config_(config), features_(*file_, config_), projection_(*file_, config_),
          positional_(*file_, config_) {
        norm_w_ = file_->tensor(name(T::EncoderNormWeight));
        norm_b_ = file_->tensor(name(T::EncoderNormBias));
        TransformerLayerSettings s;
        s.norm = NormPosition::Post;
        s.layer_norm_eps = config_.layer_norm_eps;
        s.activation = config_.hidden_act;
        s.num_heads = config_.num_attention_heads;
        for (int64_t i = 0; i < config_.num_hidden_layers; ++i)
            layers_.emplace_back(*file_, encoder_layer_names(int(i)), s, config_.hidden_size, config_.intermediate_size);
        if (config_.add_adapter) adapter_.emplace(*file_, config_);
    }

    const AudioConfig& config() const { return config_; }

    AudioModelOutput forward(const AudioBatch& batch, const RunOptions& options) const {
        const int64_t B = batch.input_values.rows();
        if (batch.lengths && int64_t(batch.lengths->size()) != B) throw Error("one length per audio item is needed");
        AudioModelOutput out;
        const size_t n_states = size_t(config_.num_hidden_layers + 1);
        if (options.hidden_states) out.hidden_states.assign(n_states, std::vector<Matrix>(size_t(B)));
        if (options.attentions) out.attentions.assign(size_t(config_.num_hidden_layers), std::vector<Matrix>(size_t(B)));
        for (int64_t b = 0; b < B; ++b) {
            Matrix samples = batch.input_values.row(b).transpose();  // [L, 1]
            Matrix features = features_.forward(std::move(samples));
            Matrix hidden = projection_.forward(features);
            const int64_t T = hidden.rows();
            std::vector<float> key_bias;
            AttentionBias bias;
            if (batch.lengths) {
                const int64_t valid = std::clamp<int64_t>(feature_length(config_, (*batch.lengths)[size_t(b)], false), 0, T);
                hidden.bottomRows(T - valid).setZero();
                key_bias = key_padding_bias(T, valid);
                bias.key_padding = key_bias.data();
            }
            hidden += positional_.forward(hidden);
            layer_norm_rows(hidden, norm_w_, norm_b_, config_.layer_norm_eps);
            for (size_t l = 0; l < layers_.size(); ++l) {
                if (options.hidden_states) out.hidden_states[l][size_t(b)] = hidden;
                layers_[l].forward(hidden, bias, options.attentions ? &out.attentions[l][size_t(b)] : nullptr);
            }
            // The last hidden state is the encoder output, before the adapter (as Transformers reports it).
            if (options.hidden_states) out.hidden_states.back()[size_t(b)] = hidden;
            if (adapter_) hidden = adapter_->forward(std::move(hidden));
            out.last_hidden_state.push_back(std::move(hidden));
            out.extract_features.push_back(std::move(features));
        }
        return out;
    }

private:
    std::shared_ptr<const ModelFile> file_;  // owns the mapped weights the layers point into
    AudioConfig config_;
    ConvFeatureEncoder features_;
    FeatureProjection projection_;
    PositionalConvEmbedding positional_;
    const float *norm_w_ = nullptr, *norm_b_ = nullptr;
    std::vector<TransformerLayer> layers_;
    std::optional<Adapter> adapter_;
};

}  // namespace d2v::audio
