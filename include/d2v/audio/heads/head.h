// A head = the backbone's outputs in, Transformers' output fields out (plus the loss when labels
// are given). Each head lives in its own header next to this one.
#pragma once
#include "d2v/audio/model.h"
#include "d2v/losses.h"
#include "d2v/ndarray.h"

namespace d2v::audio {

class AudioHeadModule {
public:
    virtual ~AudioHeadModule() = default;
    // Whether the head needs every layer's hidden state (use_weighted_layer_sum).
    virtual bool needs_hidden_states() const { return false; }
    virtual void apply(const AudioBatch& batch, const AudioModelOutput& base, const NdArray* labels,
                       NamedOutputs& out) const = 0;
};

// Frames of each item that are not padding, after the conv stack (+ adapter when with_adapter):
// Transformers' _get_feature_vector_attention_mask, as a count per item.
inline std::vector<int64_t> valid_frames(const AudioConfig& c, const AudioBatch& batch, int64_t frames, bool with_adapter) {
    std::vector<int64_t> n(size_t(batch.input_values.rows()), frames);
    if (batch.lengths)
        for (size_t b = 0; b < n.size(); ++b)
            n[b] = std::clamp<int64_t>(feature_length(c, (*batch.lengths)[b], with_adapter), 0, frames);
    return n;
}

// use_weighted_layer_sum: softmax(layer_weights)-weighted sum of the num_layers + 1 hidden states.
class LayerSum {
public:
    LayerSum(const ModelFile& file, const AudioConfig& c) {
        if (!c.use_weighted_layer_sum) return;
        RowVector w = ConstRowVectorMap(file.tensor(name(T::LayerWeights)), c.num_hidden_layers + 1);
        softmax_inplace(w.data(), w.size());
        weights_ = w;
    }
    bool enabled() const { return weights_.size() > 0; }
    Matrix item(const AudioModelOutput& base, size_t b) const {
        if (!enabled()) return base.last_hidden_state[b];
        Matrix sum = base.hidden_states[0][b] * weights_(0);
        for (int64_t l = 1; l < weights_.size(); ++l) sum += base.hidden_states[size_t(l)][b] * weights_(l);
        return sum;
    }

private:
    RowVector weights_;
};


}  // namespace d2v::audio
