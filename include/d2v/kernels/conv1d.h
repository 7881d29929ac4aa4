// 1-D convolution as im2col + Linear, over time-major activations x[T_in, C_in].
//
// Weights are stored tap-major ([C_out, k, C_in], i.e. column j*C_in + c), so that each im2col row
// is k contiguous copies of input rows; PyTorch's Conv1d weight [C_out, C_in, k] is re-laid out once
// at load by conv_weight_tap_major(). im2col is done in blocks of output rows to bound memory.
#pragma once
#include <algorithm>
#include <cstring>

#include "d2v/kernels/linear.h"
#include "d2v/kernels/ops.h"

namespace d2v {

struct Conv1dGeometry {
    int64_t kernel = 1, stride = 1, dilation = 1, pad_left = 0, pad_right = 0;
    int64_t output_length(int64_t t_in) const {
        const int64_t span = dilation * (kernel - 1) + 1;
        const int64_t padded = t_in + pad_left + pad_right;
        return padded < span ? 0 : (padded - span) / stride + 1;
    }
};

// [C_out, C_in, k] (PyTorch) -> [C_out, k, C_in] (ours). For one group of a grouped conv pass that
// group's slice of the [C_out, C_in_per_group, k] weight.
template <typename T>
std::vector<T> conv_weight_tap_major(const T* w, int64_t c_out, int64_t c_in, int64_t k) {
    std::vector<T> out(size_t(c_out * c_in * k));
    for (int64_t o = 0; o < c_out; ++o)
        for (int64_t c = 0; c < c_in; ++c)
            for (int64_t j = 0; j < k; ++j) out[size_t((o * k + j) * c_in + c)] = w[(o * c_in + c) * k + j];
    return out;
}

// The Linear of a conv kernel in any stored precision (f32, bf16, int8 with one scale per output
// channel: the reordering stays within each output channel's row, so the scales still apply).
inline Linear conv_linear(const WeightData& w, int64_t c_out, int64_t c_in, int64_t k, const float* bias) {
    switch (w.type) {
        case WeightType::BF16: {
            const auto t = conv_weight_tap_major(static_cast<const uint16_t*>(w.data), c_out, c_in, k);
            return Linear(WeightData{w.type, t.data(), nullptr}, c_out, k * c_in, bias);
        }
        case WeightType::I8: {
            const auto t = conv_weight_tap_major(static_cast<const int8_t*>(w.data), c_out, c_in, k);
            return Linear(WeightData{w.type, t.data(), w.scale}, c_out, k * c_in, bias);
        }
        default: {
            const auto t = conv_weight_tap_major(static_cast<const float*>(w.data), c_out, c_in, k);
            return Linear(t.data(), c_out, k * c_in, bias);
        }
    }
}

// The calling thread's im2col block, reused by every conv and call.
inline Scratch& conv_columns_buffer() {
    static thread_local Scratch buffer;
    return buffer;
}

// y[T_out, C_out] = conv(x[:, col_begin : col_begin + c_in]) with `linear` holding the tap-major
// weights (in_features = k * c_in), x: [t_in, x_cols] row-major, y: [T_out, C_out] row-major. Zero
// padding outside the input. `epilogue(first_row, rows)` runs on each block of finished output rows
// while they are still in cache (e.g. norm + activation).
template <typename Epilogue>
inline void conv1d_into(const float* x, int64_t t_in, int64_t x_cols, const Linear& linear, const Conv1dGeometry& g,
                        int64_t col_begin, int64_t c_in, float* y, Epilogue&& epilogue) {
    const int64_t t_out = g.output_length(t_in), c_out = linear.out_features();
    if (t_out == 0) return;
    const int64_t width = g.kernel * c_in;
    const int64_t block = std::max<int64_t>(1, std::min<int64_t>(t_out, (int64_t(8) << 20) / (width * 4)));
    // Taps that tile the input exactly (stride == kernel, whole rows, no padding): the im2col
    // matrix is the input itself, read in place.
    const bool in_place = g.stride == g.kernel && g.dilation == 1 && g.pad_left == 0 && g.pad_right == 0 && col_begin == 0 && c_in == x_cols;
    float* cols = in_place ? nullptr : conv_columns_buffer().get(size_t(std::min(block, t_out) * width));
    for (int64_t t0 = 0; t0 < t_out; t0 += block) {
        const int64_t rows = std::min(block, t_out - t0);
        if (!in_place) {
#pragma omp parallel for schedule(static) if (rows * width > (1 << 16))
            for (int64_t r = 0; r < rows; ++r) {
                float* dst = cols + r * width;
                const int64_t base = (t0 + r) * g.stride - g.pad_left;
                for (int64_t j = 0; j < g.kernel; ++j) {
                    const int64_t t = base + j * g.dilation;
                    if (t < 0 || t >= t_in)
                        std::memset(dst + j * c_in, 0, sizeof(float) * size_t(c_in));
                    else
                        std::memcpy(dst + j * c_in, x + t * x_cols + col_begin, sizeof(float) * size_t(c_in));
                }
            }
        }
        linear.forward(in_place ? x + t0 * g.stride * x_cols : cols, rows, y + t0 * c_out);
        epilogue(t0, rows);
    }
}

inline Matrix conv1d(const Matrix& x, const Linear& linear, const Conv1dGeometry& g, int64_t col_begin = 0,
                     int64_t c_in = -1) {
    if (c_in < 0) c_in = x.cols();
    Matrix y(g.output_length(x.rows()), linear.out_features());
    conv1d_into(x.data(), x.rows(), x.cols(), linear, g, col_begin, c_in, y.data(), [](int64_t, int64_t) {});
    return y;
}

}  // namespace d2v
