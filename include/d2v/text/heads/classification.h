// ForSequenceClassification (dense + tanh + out_proj on the <s> token; regression, single- or
// multi-label loss chosen as Transformers chooses it), ForTokenClassification (a label per token),
// ForMultipleChoice (one score per choice from the pooler, softmax across choices) and
// ForQuestionAnswering (start/end logits per token).
#pragma once
#include "d2v/text/heads/head.h"

namespace d2v::text {

class SequenceClassificationHead : public TextHeadModule {
public:
    SequenceClassificationHead(const ModelFile& file, const TextConfig& c)
        : problem_type_(c.problem_type),
          dense_(load_linear(file, names::kClassifierDenseWeight, names::kClassifierDenseBias, c.hidden_size, c.hidden_size)),
          out_(load_linear(file, names::kClassifierOutWeight, names::kClassifierOutBias, c.num_labels(), c.hidden_size)) {}

    void apply(const TextBatch&, const TextModelOutput& base, const NamedOutputs* labels, NamedOutputs& out) const override {
        Matrix first(int64_t(base.last_hidden_state.size()), dense_.in_features());
        for (size_t b = 0; b < base.last_hidden_state.size(); ++b) first.row(int64_t(b)) = base.last_hidden_state[b].row(0);
        Matrix x = dense_(first);
        apply_activation(Activation::Tanh, x);
        Matrix logits = out_(x);
        if (const NdArray* l = find_label(labels, "labels")) out["loss"] = scalar_array(sequence_classification_loss(logits, *l, problem_type_));
        out["logits"] = matrix_array(logits);
    }

private:
    std::string problem_type_;
    Linear dense_, out_;
};

class TokenClassificationHead : public TextHeadModule {
public:
    TokenClassificationHead(const ModelFile& file, const TextConfig& c)
        : classifier_(load_linear(file, names::kClassifierWeight, names::kClassifierBias, c.num_labels(), c.hidden_size)) {}

    void apply(const TextBatch&, const TextModelOutput& base, const NamedOutputs* labels, NamedOutputs& out) const override {
        std::vector<Matrix> logits;
        for (const auto& h : base.last_hidden_state) logits.push_back(classifier_(h));
        if (const NdArray* l = find_label(labels, "labels")) out["loss"] = scalar_array(cross_entropy(concat_rows(logits), labels_as_ids(*l)));
        out["logits"] = stack_items(logits);
    }

private:
    Linear classifier_;
};

class MultipleChoiceHead : public TextHeadModule {
public:
    MultipleChoiceHead(const ModelFile& file, const TextConfig& c)
        : classifier_(load_linear(file, names::kClassifierWeight, names::kClassifierBias, 1, c.hidden_size)) {}

    // The batch holds B * choices rows; batch.choices says how many per example.
    void apply(const TextBatch& batch, const TextModelOutput& base, const NamedOutputs* labels, NamedOutputs& out) const override {
        if (!base.pooler_output) throw Error("multiple choice needs the pooler, which this model file lacks");
        const int64_t choices = std::max<int64_t>(batch.choices, 1);
        Matrix scores = classifier_(*base.pooler_output);  // [B * C, 1]
        Matrix logits = Eigen::Map<Matrix>(scores.data(), scores.rows() / choices, choices);
        if (const NdArray* l = find_label(labels, "labels")) out["loss"] = scalar_array(cross_entropy(logits, labels_as_ids(*l)));
        out["logits"] = matrix_array(logits);
    }

private:
    Linear classifier_;
};

class QuestionAnsweringHead : public TextHeadModule {
public:
    QuestionAnsweringHead(const ModelFile& file, const TextConfig& c)
        : qa_(load_linear(file, names::kQaWeight, names::kQaBias, c.num_labels(), c.hidden_size)) {
        if (c.num_labels() != 2) throw Error("question answering needs num_labels = 2 (start, end)");
    }

    void apply(const TextBatch&, const TextModelOutput& base, const NamedOutputs* labels, NamedOutputs& out) const override {
        const int64_t B = int64_t(base.last_hidden_state.size()), T = base.last_hidden_state[0].rows();
        Matrix start(B, T), end(B, T);
        for (int64_t b = 0; b < B; ++b) {
            Matrix y = qa_(base.last_hidden_state[size_t(b)]);
            start.row(b) = y.col(0).transpose();
            end.row(b) = y.col(1).transpose();
        }
        const NdArray* sp = find_label(labels, "start_positions");
        const NdArray* ep = find_label(labels, "end_positions");
        if (sp && ep) {
            // Positions outside the sequence are clamped to T and then ignored, as Transformers does.
            auto clamp = [&](const NdArray& a) {
                auto ids = labels_as_ids(a);
                for (auto& v : ids) v = std::clamp<int64_t>(v, 0, T);
                return ids;
            };
            out["loss"] = scalar_array((cross_entropy(start, clamp(*sp), T) + cross_entropy(end, clamp(*ep), T)) / 2);
        }
        out["start_logits"] = matrix_array(start);
        out["end_logits"] = matrix_array(end);
    }

private:
    Linear qa_;
};

}  // namespace d2v::text
