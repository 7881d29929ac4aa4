// Training losses, computed as Transformers computes them, for when labels are given.
#pragma once
#include <cmath>
#include <limits>

#include "d2v/kernels/ops.h"

namespace d2v {

// torch.nn.CrossEntropyLoss (mean over targets != ignore_index). logits [N, C].
inline float cross_entropy(const Matrix& logits, const std::vector<int64_t>& targets, int64_t ignore_index = -100) {
    if (int64_t(targets.size()) != logits.rows()) throw Error("cross_entropy: label count does not match logits");
    double total = 0;
    int64_t count = 0;
    for (int64_t i = 0; i < logits.rows(); ++i) {
        if (targets[size_t(i)] == ignore_index) continue;
        if (targets[size_t(i)] < 0 || targets[size_t(i)] >= logits.cols())
            throw Error("label " + std::to_string(targets[size_t(i)]) + " is outside 0.." + std::to_string(logits.cols() - 1));
        RowVector row = logits.row(i);
        log_softmax_inplace(row.data(), row.size());
        total -= row(targets[size_t(i)]);
        ++count;
    }
    return count ? float(total / double(count)) : std::numeric_limits<float>::quiet_NaN();
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

}  // namespace d2v
