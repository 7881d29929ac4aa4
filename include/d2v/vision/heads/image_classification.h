// Data2VecVisionForImageClassification: a linear classifier on the pooled output.
#pragma once
#include "d2v/losses.h"
#include "d2v/vision/model.h"

namespace d2v::vision {

class ImageClassificationHead {
public:
    ImageClassificationHead(const ModelFile& file, const VisionConfig& c)
        : problem_type_(c.problem_type),
          classifier_(load_linear(file, names::kClassifierWeight, names::kClassifierBias, c.num_labels(), c.hidden_size)) {}

    void apply(const VisionModelOutput& base, const NdArray* labels, NamedOutputs& out) const {
        const Matrix logits = classifier_(*base.pooler_output);
        if (labels) out["loss"] = scalar_array(sequence_classification_loss(logits, *labels, problem_type_));
        out["logits"] = matrix_array(logits);
    }

private:
    std::string problem_type_;
    Linear classifier_;
};

}  // namespace d2v::vision
