// The one interface every weight-bearing matrix product goes through: y = x W^T + b, with W in
// PyTorch nn.Linear layout [out, in]. Convolutions reach it through im2col (kernels/conv1d.h).
//
// Backends (chosen at build time, D2V_USE_DNNL): oneDNN matmul with the weights reordered once at
// load into the layout its kernels want (measured ~90-100% of FP32 peak on this CPU), or plain
// Eigen products, kept as the simple reference path.
//
// Reduced precision (files from convert.py --outtype bf16 / q8), oneDNN backend only:
//   bf16: activations rounded to bf16 on each call, bf16 x bf16 products accumulated in f32;
//   int8: activations quantized per row (symmetric, scale = max|x_row| / 127) on each call, u8 (q+128)
//         x s8 products accumulated in s32, then y = acc * row_scale * weight_scale[out] + bias in f32.
// Where that is not faster (bf16 without AMX: see supports()) or not possible (int8 without VNNI, as
// oneDNN reports the ISA), and in the Eigen backend, such weights are expanded to f32 at load instead
// (with a one-line notice on stderr).
#pragma once
#include <cstdint>
#include <memory>

#include "d2v/kernels/threads.h"
#include "d2v/tensor.h"

namespace d2v {

enum class WeightType { F32, BF16, I8 };
const char* weight_type_name(WeightType type);

// A weight matrix [out, in] row-major as a file stores it: f32, bf16 (raw 16-bit patterns) or int8
// with one f32 scale per output row (weight = int8 * scale[row]).
struct WeightData {
    WeightType type = WeightType::F32;
    const void* data = nullptr;
    const float* scale = nullptr;  // I8 only: [out]
};

class Linear {
public:
    Linear() = default;
    // Copies (and for oneDNN, re-lays out) the weights; `bias` may be null.
    Linear(const float* weight, int64_t out_features, int64_t in_features, const float* bias)
        : Linear(WeightData{WeightType::F32, weight, nullptr}, out_features, in_features, bias) {}
    Linear(const WeightData& weight, int64_t out_features, int64_t in_features, const float* bias);

    int64_t in_features() const { return in_; }
    int64_t out_features() const { return out_; }
    bool empty() const { return impl_ == nullptr; }

    // x: [rows, in] row-major, y: [rows, out] row-major (distinct buffers).
    void forward(const float* x, int64_t rows, float* y) const;
    Matrix operator()(const Matrix& x) const {
        if (x.cols() != in_) throw Error("Linear: input has " + std::to_string(x.cols()) + " columns, expected " + std::to_string(in_));
        Matrix y(x.rows(), out_);
        forward(x.data(), x.rows(), y.data());
        return y;
    }
    static const char* backend_name();
    // The type the products really run in (F32 when the weights were expanded at load).
    WeightType compute_type() const;
    // Whether this CPU / backend runs products of that type natively.
    static bool supports(WeightType type);
    // oneDNN primitives kept for distinct (row count, thread count) pairs (at most kMaxCachedRowCounts); 0 for Eigen.
    size_t cached_row_counts() const;
    // A server sees every input length; older entries are evicted least-recently-used. 32 covers a
    // batch's distinct lengths many times over, and a miss costs one primitive creation (~50 us).
    static constexpr size_t kMaxCachedRowCounts = 32;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
    int64_t out_ = 0, in_ = 0;
};

}  // namespace d2v
