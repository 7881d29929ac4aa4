// Element-wise and row-wise kernels used between the matrix products.
#pragma once
#include <unsupported/Eigen/SpecialFunctions>
#include <cmath>
#include <string>

#include "d2v/tensor.h"

namespace d2v {

// Activation names as Transformers' ACT2FN spells them. Only the exact forms are offered where
// Transformers uses them: "gelu" is the erf GELU (the tanh approximation is off by up to 4.7e-4).
enum class Activation { Gelu, GeluTanh, Relu, Silu, Tanh, Linear };

inline Activation parse_activation(const std::string& name) {
    if (name == "gelu") return Activation::Gelu;
    if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") return Activation::GeluTanh;
    if (name == "relu") return Activation::Relu;
    if (name == "silu" || name == "swish") return Activation::Silu;
    if (name == "tanh") return Activation::Tanh;
    if (name == "linear") return Activation::Linear;
    throw Error("unsupported activation function '" + name + "' (supported: gelu, gelu_new, relu, silu, swish, tanh, linear)");
}

inline void apply_activation(Activation act, float* x, int64_t n) {
    Eigen::Map<Eigen::ArrayXf> a(x, n);
    switch (act) {
        case Activation::Gelu: a = 0.5f * a * (1.0f + (a * float(M_SQRT1_2)).erf()); break;
        case Activation::GeluTanh:
            a = 0.5f * a * (1.0f + (float(std::sqrt(2.0 / M_PI)) * (a + 0.044715f * a.cube())).tanh());
            break;
        case Activation::Relu: a = a.max(0.0f); break;
        case Activation::Silu: a = a / (1.0f + (-a).exp()); break;
        case Activation::Tanh: a = a.tanh(); break;
        case Activation::Linear: break;
    }
}

inline void apply_activation(Activation act, Matrix& x) {
    const int64_t rows = x.rows(), cols = x.cols();
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 16))
    for (int64_t r = 0; r < rows; ++r) apply_activation(act, x.row(r).data(), cols);
}

// LayerNorm over each row (the channel axis). gamma/beta may be null (elementwise_affine=False).
inline void layer_norm_rows(Matrix& x, const float* gamma, const float* beta, float eps) {
    const int64_t rows = x.rows(), cols = x.cols();
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 16))
    for (int64_t r = 0; r < rows; ++r) {
        Eigen::Map<Eigen::ArrayXf> v(x.row(r).data(), cols);
        const float mean = v.mean();
        v -= mean;
        const float var = v.square().mean();
        v *= 1.0f / std::sqrt(var + eps);
        if (gamma) v *= Eigen::Map<const Eigen::ArrayXf>(gamma, cols);
        if (beta) v += Eigen::Map<const Eigen::ArrayXf>(beta, cols);
    }
}

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
