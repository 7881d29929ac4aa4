// Element-wise and row-wise kernels used between the matrix products.
#pragma once
#include <unsupported/Eigen/SpecialFunctions>
#include <cmath>
#include <memory>
#include <string>
#include <utility>

#include "d2v/tensor.h"

namespace d2v {

// Every activation Transformers' ACT2FN offers that has no learned parameters (prelu and xielu have
// some, which no Data2Vec checkpoint carries). Each is computed as Transformers computes it: "gelu" is
// the erf GELU, the tanh forms are the tanh approximation (off from "gelu" by up to 4.7e-4).
enum class Activation {
    Gelu, GeluClip10, GeluTanh, QuickGelu, Hardswish, Laplace, LeakyRelu, Linear, Mish,
    Relu, Relu2, Relu6, Sigmoid, Silu, SqrtSoftplus, Tanh,
};

// ACT2FN's names (transformers/activations.py, ACT2CLS) and what computes each.
inline const std::pair<const char*, Activation> kActivationNames[] = {
    {"gelu", Activation::Gelu},
    {"gelu_python", Activation::Gelu},  // the same erf formula written in Python
    {"gelu_10", Activation::GeluClip10},
    {"gelu_new", Activation::GeluTanh},
    {"gelu_fast", Activation::GeluTanh},  // same formula, sqrt(2/pi) rounded to 10 digits
    {"gelu_accurate", Activation::GeluTanh},
    {"gelu_pytorch_tanh", Activation::GeluTanh},
    {"gelu_python_tanh", Activation::GeluTanh},
    {"quick_gelu", Activation::QuickGelu},
    {"hardswish", Activation::Hardswish},
    {"laplace", Activation::Laplace},
    {"leaky_relu", Activation::LeakyRelu},
    {"linear", Activation::Linear},
    {"mish", Activation::Mish},
    {"relu", Activation::Relu},
    {"relu2", Activation::Relu2},
    {"relu6", Activation::Relu6},
    {"sigmoid", Activation::Sigmoid},
    {"silu", Activation::Silu},
    {"swish", Activation::Silu},
    {"sqrtsoftplus", Activation::SqrtSoftplus},
    {"tanh", Activation::Tanh},
};

// `field` is the config field that named the activation (hidden_act, feat_extract_activation, ...).
inline Activation parse_activation(const std::string& field, const std::string& name) {
    for (const auto& [known, act] : kActivationNames)
        if (name == known) return act;
    if (name == "prelu" || name == "xielu")
        throw Error("config field '" + field + "': activation '" + name +
                    "' has learned parameters, which Data2Vec checkpoints do not carry; not supported");
    std::string all;
    for (const auto& [known, act] : kActivationNames) all += std::string(all.empty() ? "" : ", ") + known;
    throw Error("config field '" + field + "': unsupported activation '" + name.substr(0, 64) + "' (supported: " + all + ")");
}

inline void apply_activation(Activation act, float* x, int64_t n) {
    Eigen::Map<Eigen::ArrayXf> a(x, n);
    // torch.nn.functional.softplus(beta=1, threshold=20): linear above 20.
    auto softplus = [](const Eigen::ArrayXf& v) -> Eigen::ArrayXf { return (v > 20.0f).select(v, v.exp().log1p()); };
    switch (act) {
        case Activation::Gelu: a = 0.5f * a * (1.0f + (a * float(M_SQRT1_2)).erf()); break;
        case Activation::GeluClip10: a = (0.5f * a * (1.0f + (a * float(M_SQRT1_2)).erf())).min(10.0f).max(-10.0f); break;
        case Activation::GeluTanh:
            a = 0.5f * a * (1.0f + (float(std::sqrt(2.0 / M_PI)) * (a + 0.044715f * a.cube())).tanh());
            break;
        case Activation::QuickGelu: a = a / (1.0f + (-1.702f * a).exp()); break;
        case Activation::Hardswish: a = a * (a + 3.0f).max(0.0f).min(6.0f) / 6.0f; break;
        case Activation::Laplace:  // MEGA's: 0.5 * (1 + erf((x - mu) / (sigma * sqrt(2))))
            a = 0.5f * (1.0f + ((a - 0.707107f) / float(0.282095 * M_SQRT2)).erf());
            break;
        case Activation::LeakyRelu: a = (a >= 0.0f).select(a, 0.01f * a); break;
        case Activation::Linear: break;
        case Activation::Mish: a = a * softplus(a).tanh(); break;
        case Activation::Relu: a = a.max(0.0f); break;
        case Activation::Relu2: a = a.max(0.0f).square(); break;
        case Activation::Relu6: a = a.max(0.0f).min(6.0f); break;
        case Activation::Sigmoid: a = 1.0f / (1.0f + (-a).exp()); break;
        case Activation::Silu: a = a / (1.0f + (-a).exp()); break;
        case Activation::SqrtSoftplus: a = softplus(a).sqrt(); break;
        case Activation::Tanh: a = a.tanh(); break;
    }
}

inline void apply_activation(Activation act, Matrix& x) {
    const int64_t rows = x.rows(), cols = x.cols();
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 16))
    for (int64_t r = 0; r < rows; ++r) apply_activation(act, x.row(r).data(), cols);
}

// LayerNorm of one row in place (two-pass variance, as torch computes it). gamma/beta may be null.
inline void layer_norm_row(float* x, int64_t cols, const float* gamma, const float* beta, float eps) {
    Eigen::Map<Eigen::ArrayXf> v(x, cols);
    const float mean = v.mean();
    v -= mean;
    const float var = v.square().mean();
    v *= 1.0f / std::sqrt(var + eps);
    if (gamma) v *= Eigen::Map<const Eigen::ArrayXf>(gamma, cols);
    if (beta) v += Eigen::Map<const Eigen::ArrayXf>(beta, cols);
}

// LayerNorm over each row (the channel axis). gamma/beta may be null (elementwise_affine=False).
inline void layer_norm_rows(Matrix& x, const float* gamma, const float* beta, float eps) {
    const int64_t rows = x.rows(), cols = x.cols();
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 16))
    for (int64_t r = 0; r < rows; ++r) layer_norm_row(x.row(r).data(), cols, gamma, beta, eps);
}

// x = LayerNorm(x + update) row by row: the residual add and the norm in one sweep over memory
// (post-norm blocks). update: [x.rows(), x.cols()] row-major.
inline void add_layer_norm_rows(Matrix& x, const float* update, const float* gamma, const float* beta, float eps) {
    const int64_t rows = x.rows(), cols = x.cols();
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 15))
    for (int64_t r = 0; r < rows; ++r) {
        float* row = x.row(r).data();
        Eigen::Map<Eigen::ArrayXf>(row, cols) += Eigen::Map<const Eigen::ArrayXf>(update + r * cols, cols);
        layer_norm_row(row, cols, gamma, beta, eps);
    }
}

// LayerNorm then activation on each row of x[rows, cols] while the row is in cache (the audio
// conv stack's norm + activation).
inline void layer_norm_activation_rows(float* x, int64_t rows, int64_t cols, const float* gamma, const float* beta,
                                       float eps, Activation act) {
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 15))
    for (int64_t r = 0; r < rows; ++r) {
        layer_norm_row(x + r * cols, cols, gamma, beta, eps);
        apply_activation(act, x + r * cols, cols);
    }
}

// A grow-only float buffer kept between calls. Activations that come from fresh allocations of
// this size are served by mmap and cost a page fault per 4 KiB on every forward; a reused buffer
// costs none once the largest input has been seen (and holds that much until it is destroyed).
class Scratch {
public:
    float* get(size_t n) {
        if (n > capacity_) {
            data_.reset(static_cast<float*>(Eigen::internal::aligned_malloc(n * sizeof(float))));
            capacity_ = n;
        }
        return data_.get();
    }
    Eigen::Map<Matrix> matrix(int64_t rows, int64_t cols) { return {get(size_t(rows * cols)), rows, cols}; }

private:
    struct Free {
        void operator()(float* p) const { Eigen::internal::aligned_free(p); }
    };
    std::unique_ptr<float, Free> data_;
    size_t capacity_ = 0;
};

// Numerically stable softmax of one row in place.
inline void softmax_inplace(float* x, int64_t n) {
    Eigen::Map<Eigen::ArrayXf> v(x, n);
    v = (v - v.maxCoeff()).exp();
    v /= v.sum();
}

inline void log_softmax_inplace(float* x, int64_t n) {
    Eigen::Map<Eigen::ArrayXf> v(x, n);
    const float m = v.maxCoeff();
    const float lse = m + std::log((v - m).exp().sum());
    v -= lse;
}

}  // namespace d2v
