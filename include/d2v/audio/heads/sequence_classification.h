// Data2VecAudioForSequenceClassification: (weighted) hidden states -> projector -> mean over the
// unpadded frames -> classifier. Transformers' loss here is always cross-entropy, even for
// num_labels == 1 (where it is identically 0).
#pragma once
#include "d2v/audio/heads/head.h"

namespace d2v::audio {

class SequenceClassificationHead : public AudioHeadModule {
public:
    SequenceClassificationHead(const ModelFile& file, const AudioConfig& c)
        : config_(c), layer_sum_(file, c),
          projector_(load_linear(file, name(T::ProjectorWeight), name(T::ProjectorBias), c.classifier_proj_size, c.hidden_size)),
          classifier_(load_linear(file, name(T::ClassifierWeight), name(T::ClassifierBias), c.num_labels(), c.classifier_proj_size)) {}

    bool needs_hidden_states() const override { return layer_sum_.enabled(); }

    void apply(const AudioBatch& batch, const AudioModelOutput& base, const NdArray* labels, NamedOutputs& out) const override {
        const auto frames = valid_frames(config_, batch, base.last_hidden_state[0].rows(), config_.add_adapter);
        Matrix pooled(int64_t(frames.size()), config_.classifier_proj_size);
        for (size_t b = 0; b < frames.size(); ++b) {
            Matrix h = projector_(layer_sum_.item(base, b));
            pooled.row(int64_t(b)) = h.topRows(frames[b]).colwise().sum() / float(frames[b]);
        }
        Matrix logits = classifier_(pooled);
        if (labels) out["loss"] = scalar_array(cross_entropy(logits, labels_as_ids(*labels)));
        out["logits"] = stack_items({logits});
        out["logits"].shape = {logits.rows(), logits.cols()};
    }

private:
    AudioConfig config_;
    LayerSum layer_sum_;
    Linear projector_, classifier_;
};

}  // namespace d2v::audio
