// Training losses, computed as Transformers computes them, for when labels are given.
#pragma once
#include <cmath>
#include <limits>

#include "d2v/kernels/ops.h"
#include "d2v/ndarray.h"

namespace d2v {

// Sum of -log softmax(logits)[target] over targets != ignore_index, and how many there were.
struct CrossEntropySum {
    double sum = 0;
    int64_t count = 0;
    float mean() const { return count ? float(sum / double(count)) : std::numeric_limits<float>::quiet_NaN(); }
};

inline CrossEntropySum cross_entropy_sum(const Matrix& logits, const std::vector<int64_t>& targets, int64_t ignore_index = -100) {
    if (int64_t(targets.size()) != logits.rows()) throw Error("cross_entropy: label count does not match logits");
    CrossEntropySum r;
    for (int64_t i = 0; i < logits.rows(); ++i) {
        const int64_t t = targets[size_t(i)];
        if (t == ignore_index) continue;
        if (t < 0 || t >= logits.cols())
            throw Error("label " + std::to_string(t) + " is outside 0.." + std::to_string(logits.cols() - 1));
        RowVector row = logits.row(i);
        log_softmax_inplace(row.data(), row.size());
        r.sum -= row(t);
        ++r.count;
    }
    return r;
}

// torch.nn.CrossEntropyLoss (mean over targets != ignore_index). logits [N, C].
inline float cross_entropy(const Matrix& logits, const std::vector<int64_t>& targets, int64_t ignore_index = -100) {
    return cross_entropy_sum(logits, targets, ignore_index).mean();
}

// torch.nn.functional.ctc_loss for one sequence: -log p(target | log_probs[0:T]), in double.
inline double ctc_negative_log_likelihood(const Matrix& log_probs, int64_t T, const std::vector<int64_t>& target,
                                          int64_t blank) {
    const int64_t S = 2 * int64_t(target.size()) + 1;
    const double neg_inf = -std::numeric_limits<double>::infinity();
    auto label = [&](int64_t s) { return s % 2 == 0 ? blank : target[size_t(s / 2)]; };
    auto log_add = [&](double a, double b) {
        if (a == neg_inf) return b;
        if (b == neg_inf) return a;
        const double m = std::max(a, b);
        return m + std::log(std::exp(a - m) + std::exp(b - m));
    };
    if (T <= 0) return std::numeric_limits<double>::infinity();
    std::vector<double> alpha(size_t(S), neg_inf);
    std::vector<double> next(static_cast<size_t>(S), neg_inf);
    alpha[0] = log_probs(0, blank);
    if (S > 1) alpha[1] = log_probs(0, label(1));
    for (int64_t t = 1; t < T; ++t) {
        for (int64_t s = 0; s < S; ++s) {
            double a = alpha[size_t(s)];
            if (s >= 1) a = log_add(a, alpha[size_t(s - 1)]);
            if (s >= 2 && label(s) != blank && label(s) != label(s - 2)) a = log_add(a, alpha[size_t(s - 2)]);
            next[size_t(s)] = a == neg_inf ? neg_inf : a + log_probs(t, label(s));
        }
        alpha.swap(next);
    }
    const double end = S > 1 ? log_add(alpha[size_t(S - 1)], alpha[size_t(S - 2)]) : alpha[0];
    return -end;
}

// AMSoftmaxLoss of the x-vector head: additive margin on the target class' cosine, then CE.
inline float am_softmax_loss(const Matrix& embeddings, const Matrix& weight /*[D, C]*/, const std::vector<int64_t>& labels,
                             float scale = 30.0f, float margin = 0.4f) {
    if (int64_t(labels.size()) != embeddings.rows()) throw Error("x-vector labels: one per item is needed");
    Matrix w = weight;
    for (int64_t c = 0; c < w.cols(); ++c) w.col(c) /= std::max(w.col(c).norm(), 1e-12f);
    Matrix h = embeddings;
    for (int64_t r = 0; r < h.rows(); ++r) h.row(r) /= std::max(h.row(r).norm(), 1e-12f);
    Matrix logits = h * w;
    for (int64_t r = 0; r < logits.rows(); ++r) {
        if (labels[size_t(r)] < 0 || labels[size_t(r)] >= logits.cols()) throw Error("x-vector label out of range");
        logits(r, labels[size_t(r)]) -= margin;
    }
    logits *= scale;
    return cross_entropy(logits, labels);
}

inline std::vector<int64_t> labels_as_ids(const NdArray& labels) {
    std::vector<int64_t> ids;
    for (float v : labels.data) ids.push_back(int64_t(v));
    return ids;
}

// The loss of Transformers' ForSequenceClassification-style heads (text and image classification).
// Problem type when problem_type is unset: 1 label -> regression; integer labels ->
// single-label; otherwise multi-label.
inline float sequence_classification_loss(const Matrix& logits, const NdArray& labels, const std::string& problem_type) {
    std::string kind = problem_type;
    if (kind.empty()) kind = logits.cols() == 1 ? "regression" : labels.is_integer ? "single_label_classification" : "multi_label_classification";
    if (kind == "regression") {
        if (labels.data.size() != size_t(logits.size())) throw Error("regression labels must match the logits' shape");
        double sum = 0;
        for (int64_t i = 0; i < logits.size(); ++i) sum += std::pow(double(logits.data()[i]) - labels.data[size_t(i)], 2);
        return float(sum / double(logits.size()));
    }
    if (kind == "single_label_classification") return cross_entropy(logits, labels_as_ids(labels));
    if (kind == "multi_label_classification") {
        if (labels.data.size() != size_t(logits.size())) throw Error("multi-label labels must be [batch, num_labels]");
        double sum = 0;  // BCEWithLogitsLoss, mean
        for (int64_t i = 0; i < logits.size(); ++i) {
            const double x = logits.data()[i], y = labels.data[size_t(i)];
            sum += std::max(x, 0.0) - x * y + std::log1p(std::exp(-std::fabs(x)));
        }
        return float(sum / double(logits.size()));
    }
    throw Error("config problem_type '" + problem_type + "' is not supported");
}

}  // namespace d2v
