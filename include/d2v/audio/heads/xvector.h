// Data2VecAudioForXVector: projector -> TDNN (dilated convs + ReLU) -> mean and std statistics
// pooling -> embedding -> classifier; AMSoftmax loss.
#pragma once
#include "d2v/audio/heads/head.h"
#include "d2v/kernels/conv1d.h"

namespace d2v::audio {

class XVectorHead : public AudioHeadModule {
public:
    XVectorHead(const ModelFile& file, const AudioConfig& c)
        : config_(c), layer_sum_(file, c),
          projector_(load_linear(file, name(T::ProjectorWeight), name(T::ProjectorBias), c.tdnn_dim[0], c.hidden_size)),
          embedding_(load_linear(file, name(T::XvectorFeatureWeight), name(T::XvectorFeatureBias), c.xvector_output_dim, 2 * c.tdnn_dim.back())),
          classifier_(load_linear(file, name(T::ClassifierWeight), name(T::ClassifierBias), c.xvector_output_dim, c.xvector_output_dim)),
          am_weight_(ConstMatrixMap(file.tensor(name(T::AmSoftmaxWeight)), c.xvector_output_dim, c.num_labels())) {
        for (size_t i = 0; i < c.tdnn_dim.size(); ++i) {
            const int64_t in = i == 0 ? c.tdnn_dim[0] : c.tdnn_dim[i - 1];
            // The TDNN kernel is an nn.Linear over [k, C_in] windows: already our tap-major conv layout.
            tdnn_.push_back(load_linear(file, name(T::TdnnWeight, int(i)), name(T::TdnnBias, int(i)), c.tdnn_dim[i], in * c.tdnn_kernel[i]));
            Conv1dGeometry g;
            g.kernel = c.tdnn_kernel[i];
            g.dilation = c.tdnn_dilation[i];
            geometry_.push_back(g);
        }
    }

    bool needs_hidden_states() const override { return layer_sum_.enabled(); }

    void apply(const AudioBatch& batch, const AudioModelOutput& base, const NdArray* labels, NamedOutputs& out) const override {
        const size_t B = base.last_hidden_state.size();
        const int64_t D = config_.tdnn_dim.back();
        Matrix stats(int64_t(B), 2 * D);
        for (size_t b = 0; b < B; ++b) {
            Matrix h = projector_(layer_sum_.item(base, b));
            for (size_t i = 0; i < tdnn_.size(); ++i) {
                h = conv1d(h, tdnn_[i], geometry_[i]);
                h = h.cwiseMax(0.0f);
            }
            // Transformers' TDNN length formula ignores dilation; like it, we pool over
            // min(that length, the real length) frames.
            int64_t n = h.rows();
            if (batch.lengths) {
                n = feature_length(config_, (*batch.lengths)[b], config_.add_adapter);
                for (int64_t k : config_.tdnn_kernel) n = n - k + 1;
                n = std::clamp<int64_t>(n, 0, h.rows());
            }
            if (n < 2) throw Error("audio item " + std::to_string(b) + " is too short for the x-vector head's TDNN");
            const Matrix used = h.topRows(n);
            const RowVector mean = used.colwise().mean();
            const RowVector var = (used.rowwise() - mean).array().square().colwise().sum() / float(n - 1);  // unbiased, as torch.std
            stats.row(int64_t(b)) << mean, var.array().sqrt().matrix();
        }
        Matrix embeddings = embedding_(stats);
        Matrix logits = classifier_(embeddings);
        if (labels) out["loss"] = scalar_array(am_softmax_loss(logits, am_weight_, labels_as_ids(*labels)));
        out["embeddings"] = stack_items({embeddings});
        out["embeddings"].shape = {embeddings.rows(), embeddings.cols()};
        out["logits"] = stack_items({logits});
        out["logits"].shape = {logits.rows(), logits.cols()};
    }

private:
    AudioConfig config_;
    LayerSum layer_sum_;
    Linear projector_, embedding_, classifier_;
    std::vector<Linear> tdnn_;
    std::vector<Conv1dGeometry> geometry_;
    Matrix am_weight_;
};

}  // namespace d2v::audio
