// Stride-1 2-D convolution of a channels-last map (a [height * width, channels] row-major matrix,
// i.e. NHWC with N = 1), with an optional per-output-channel scale folded into the weights (an
// inference batch norm: scale = gamma / sqrt(var + eps), bias = its shift) and an optional ReLU.
//
// Backends (D2V_USE_DNNL, as Linear): oneDNN's convolution primitive on NHWC data with the weights
// reordered once at load into its preferred layout (direct convolution: ~25 % faster per FLOP than
// im2col + matmul here; Winograd for large 3x3 maps, in strips of rows so that its transformed-tile
// buffers stay bounded), or im2col in bounded blocks of output pixels + Linear.
#pragma once
#include <cstdint>
#include <memory>

#include "d2v/tensor.h"

namespace d2v {

class Conv2dKernel {
public:
    struct Options {
        int64_t padding = 0, dilation = 1;
        const float* channel_scale = nullptr;  // [c_out] multiplied into the weights (not the bias)
        bool relu = false;
        bool accumulate = false;  // add the convolution to what y holds (before the ReLU): a sum over input-channel parts
        // 3x3, padding 1 maps of at least this many output pixels run through oneDNN's Winograd
        // F(4x4, 3x3) kernel: ~3x faster here, error comparable to the direct kernel's summation-order
        // differences (see test_kernels), but its transformed weights take 4x the memory, made at the
        // first such call (src/winograd_weights.cpp) and kept. The default covers UperNet's 1/4-scale
        // convs at 512^2 and above (at 640^2: 1.36 of its 1.46 TFLOP, +425 MB of weights).
        int64_t winograd_min_pixels = int64_t(128) * 128;
        // Values from one output channel's weights to the next (0: c_in * kernel * kernel): the
        // kernel can read its input-channel slice of a wider weight tensor in place.
        int64_t weight_row_stride = 0;
    };

    Conv2dKernel() = default;
    // weight: PyTorch layout [c_out, c_in, kernel, kernel] (rows options.weight_row_stride apart);
    // bias [c_out] or null. Copies the weights.
    Conv2dKernel(const float* weight, const float* bias, int64_t c_out, int64_t c_in, int64_t kernel, const Options& options);

    int64_t in_channels() const { return c_in_; }
    int64_t out_channels() const { return c_out_; }
    int64_t kernel() const { return kernel_; }
    bool empty() const { return impl_ == nullptr; }
    // Output side for an input side (throws when the kernel does not fit).
    int64_t output_size(int64_t input) const;

    // x: [height * width, c_in]; y: [output_size(height) * output_size(width), c_out] (distinct buffers).
    // Thread-safe: concurrent calls share the weights, each brings its own scratch memory.
    void forward(const float* x, int64_t height, int64_t width, float* y) const;

    static const char* backend_name();

private:
    struct Impl;
    std::shared_ptr<const Impl> impl_;
    int64_t c_out_ = 0, c_in_ = 0, kernel_ = 1, padding_ = 0, dilation_ = 1;
};

}  // namespace d2v
