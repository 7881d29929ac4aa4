// Data2VecAudioForCTC: per-frame vocabulary logits; CTC loss with the config's blank (pad_token_id),
// reduction and zero_infinity.
#pragma once
#include "d2v/audio/heads/head.h"

namespace d2v::audio {

class CtcHead : public AudioHeadModule {
public:
    CtcHead(const ModelFile& file, const AudioConfig& c)
        : config_(c), lm_head_(load_linear(file, name(T::LmHeadWeight), name(T::LmHeadBias), c.vocab_size,
                                           c.add_adapter ? c.output_hidden_size : c.hidden_size)) {}

    void apply(const AudioBatch& batch, const AudioModelOutput& base, const NdArray* labels, NamedOutputs& out) const override {
        std::vector<Matrix> logits;
        for (const auto& h : base.last_hidden_state) logits.push_back(lm_head_(h));
        if (labels) out["loss"] = scalar_array(loss(batch, logits, *labels));
        out["logits"] = stack_items(logits);
    }

private:
    float loss(const AudioBatch& batch, const std::vector<Matrix>& logits, const NdArray& labels) const {
        if (labels.shape.size() != 2 || labels.shape[0] != int64_t(logits.size()) ||
            labels.data.size() != size_t(labels.shape[0] * labels.shape[1]))
            throw Error("CTC labels must be [batch, max_target_length]");
        const int64_t frames = logits[0].rows();
        // Transformers counts lengths through the adapter here, from the un-clamped formula.
        std::vector<int64_t> lengths(logits.size(), 0);
        for (size_t b = 0; b < logits.size(); ++b)
            lengths[b] = std::min(frames, feature_length(config_, batch.lengths ? (*batch.lengths)[b] : batch.input_values.cols(),
                                                         config_.add_adapter));
        const int64_t U = labels.shape[1];
        double total = 0;
        for (size_t b = 0; b < logits.size(); ++b) {
            std::vector<int64_t> target;
            for (int64_t u = 0; u < U; ++u) {
                const int64_t id = int64_t(labels.data[b * size_t(U) + size_t(u)]);
                if (id == -100 || id == config_.pad_token_id) continue;
                if (id < 0 || id >= config_.vocab_size) throw Error("CTC label " + std::to_string(id) + " outside the vocabulary");
                target.push_back(id);
            }
            Matrix log_probs = logits[b];
            for (int64_t t = 0; t < log_probs.rows(); ++t) log_softmax_inplace(log_probs.row(t).data(), log_probs.cols());
            double nll = ctc_negative_log_likelihood(log_probs, lengths[b], target, config_.pad_token_id);
            if (std::isinf(nll) && config_.ctc_zero_infinity) nll = 0;
            if (config_.ctc_loss_reduction == "mean") nll /= double(std::max<size_t>(target.size(), 1));
            total += nll;
        }
        if (config_.ctc_loss_reduction == "mean") total /= double(logits.size());
        if (config_.ctc_loss_reduction == "none")
            throw Error("ctc_loss_reduction='none' gives one loss per item; use 'sum' or 'mean' for a scalar loss");
        return float(total);
    }

    AudioConfig config_;
    Linear lm_head_;
};

}  // namespace d2v::audio
