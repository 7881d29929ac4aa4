// Data2VecAudioForAudioFrameClassification: a label distribution per frame. The loss takes
// one-hot-like float labels [B, T, num_labels] and uses their argmax as the target, as Transformers does.
#pragma once
#include "d2v/audio/heads/head.h"

namespace d2v::audio {

class FrameClassificationHead : public AudioHeadModule {
public:
    FrameClassificationHead(const ModelFile& file, const AudioConfig& c)
        : layer_sum_(file, c),
          classifier_(load_linear(file, name(T::ClassifierWeight), name(T::ClassifierBias), c.num_labels(), c.hidden_size)) {}

    bool needs_hidden_states() const override { return layer_sum_.enabled(); }

    void apply(const AudioBatch&, const AudioModelOutput& base, const NdArray* labels, NamedOutputs& out) const override {
        std::vector<Matrix> logits;
        for (size_t b = 0; b < base.last_hidden_state.size(); ++b) logits.push_back(classifier_(layer_sum_.item(base, b)));
        if (labels) {
            const int64_t C = classifier_.out_features();
            const size_t rows = labels->data.size() / size_t(C);
            Matrix all(int64_t(rows), C);
            std::vector<int64_t> targets(rows);
            if (labels->data.size() != size_t(logits.size()) * size_t(logits[0].size()))
                throw Error("frame labels must be [batch, frames, num_labels]");
            for (size_t r = 0; r < rows; ++r) {
                const float* l = labels->data.data() + r * size_t(C);
                targets[r] = int64_t(std::max_element(l, l + C) - l);
            }
            int64_t r = 0;
            for (const auto& m : logits) { all.middleRows(r, m.rows()) = m; r += m.rows(); }
            out["loss"] = scalar_array(cross_entropy(all, targets));
        }
        out["logits"] = stack_items(logits);
    }

private:
    LayerSum layer_sum_;
    Linear classifier_;
};

}  // namespace d2v::audio
