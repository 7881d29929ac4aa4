// ForMaskedLM and ForCausalLM share the LM head: dense -> exact GELU -> LayerNorm -> decoder to the
// vocabulary, whose weight is the word-embedding matrix unless the file stores an untied one.
// Masked LM loss: cross-entropy at labelled positions; causal LM loss: next-token cross-entropy
// (logits at t predict labels at t + 1).
#pragma once
#include "d2v/text/heads/head.h"

namespace d2v::text {

class LanguageModelHead : public TextHeadModule {
public:
    LanguageModelHead(const ModelFile& file, const TextConfig& c, bool causal)
        : causal_(c.is_decoder || causal),
          dense_(load_linear(file, names::kLmDenseWeight, names::kLmDenseBias, c.hidden_size, c.hidden_size)),
          decoder_(load_linear(file, file.has_tensor(names::kLmDecoderWeight) ? names::kLmDecoderWeight : names::kWordEmbeddings,
                               names::kLmDecoderBias, c.vocab_size, c.hidden_size)),
          norm_w_(file.tensor(names::kLmNormWeight)), norm_b_(file.tensor(names::kLmNormBias)), eps_(c.layer_norm_eps) {}

    Matrix logits(const Matrix& hidden) const {
        Matrix x = dense_(hidden);
        apply_activation(Activation::Gelu, x);
        layer_norm_rows(x, norm_w_, norm_b_, eps_);
        return decoder_(x);
    }

    void apply(const TextBatch&, const TextModelOutput& base, const NamedOutputs* labels, NamedOutputs& out) const override {
        std::vector<Matrix> per_item;
        for (const auto& h : base.last_hidden_state) per_item.push_back(logits(h));
        if (const NdArray* l = find_label(labels, "labels")) {
            const std::vector<int64_t> ids = labels_as_ids(*l);
            const int64_t T = per_item[0].rows();
            if (ids.size() != per_item.size() * size_t(T)) throw Error("labels must be [batch, sequence_length]");
            if (!causal_) {
                out["loss"] = scalar_array(cross_entropy(concat_rows(per_item), ids));
            } else {
                std::vector<Matrix> shifted;
                std::vector<int64_t> targets;
                for (size_t b = 0; b < per_item.size(); ++b) {
                    shifted.push_back(per_item[b].topRows(T - 1));
                    targets.insert(targets.end(), ids.begin() + int64_t(b) * T + 1, ids.begin() + int64_t(b + 1) * T);
                }
                out["loss"] = scalar_array(cross_entropy(concat_rows(shifted), targets));
            }
        }
        out["logits"] = stack_items(per_item);
    }

private:
    bool causal_;
    Linear dense_, decoder_;
    const float *norm_w_, *norm_b_;
    float eps_;
};

}  // namespace d2v::text
