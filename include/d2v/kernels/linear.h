// The one interface every weight-bearing matrix product goes through: y = x W^T + b, with W in
// PyTorch nn.Linear layout [out, in]. Convolutions reach it through im2col (kernels/conv1d.h).
//
// Backends (chosen at build time, D2V_USE_DNNL): oneDNN matmul with the weights reordered once at
// load into the layout its kernels want (measured ~90-100% of FP32 peak on this CPU), or plain
// Eigen products, kept as the simple reference path.
#pragma once
#include <cstdint>
#include <memory>

#include "d2v/tensor.h"

namespace d2v {

class Linear {
public:
    Linear() = default;
    // Copies (and for oneDNN, re-lays out) the weights; `bias` may be null.
    Linear(const float* weight, int64_t out_features, int64_t in_features, const float* bias);

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

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
    int64_t out_ = 0, in_ = 0;
};

// Process-wide thread count for every kernel (OpenMP, used by both oneDNN and Eigen here).
void set_num_threads(int n);

}  // namespace d2v
