// Operations on channels-last feature maps (a [height * width, channels] matrix, row = pixel):
// conv2d (kernels/conv2d.h), 2x2 transposed conv, batch norm (inference), max / adaptive-average
// pooling, and PyTorch-exact bilinear / bicubic resizing (align_corners=False).
#pragma once
#include <cmath>
#include <cstring>
#include <mutex>

#include "d2v/kernels/conv2d.h"
#include "d2v/kernels/linear.h"

namespace d2v {

struct FeatureMap {
    int64_t height = 0, width = 0;
    Matrix data;  // [height * width, channels]
    int64_t channels() const { return data.cols(); }
};

// An output's storage: `storage` itself when it already holds rows * cols values (a buffer kept
// between calls, see MatrixPool), else a new matrix.
inline Matrix output_storage(Matrix storage, int64_t rows, int64_t cols) {
    storage.resize(rows, cols);  // no reallocation when the size is unchanged
    return storage;
}

// Large maps kept between calls and reused within one. glibc hands every allocation over 32 MB
// straight back to the kernel when it is freed, so a fresh 160^2 x 768 map (78 MB, UperNet at
// 640^2) costs a page fault per 4 KiB each time: 880 MB of faults per segmentation forward before
// this pool. Holds at most kMaxKept matrices; thread-safe (concurrent calls take different ones).
class MatrixPool {
public:
    static constexpr size_t kMaxKept = 4;
    static constexpr int64_t kMinValues = int64_t(1) << 23;  // 32 MB: smaller ones glibc reuses itself

    MatrixPool() = default;
    MatrixPool(const MatrixPool&) {}  // the kept buffers are a cache, not part of a copy's value
    MatrixPool& operator=(const MatrixPool&) { return *this; }

    // A matrix of that size (contents undefined): a kept one if there is one, else a new one.
    Matrix take(int64_t rows, int64_t cols) {
        std::lock_guard<std::mutex> lock(mutex_);
        for (size_t i = 0; i < kept_.size(); ++i)
            if (kept_[i].size() == rows * cols) {
                Matrix m = std::move(kept_[i]);
                kept_.erase(kept_.begin() + std::ptrdiff_t(i));
                m.resize(rows, cols);
                return m;
            }
        return Matrix(rows, cols);
    }
    // Hands a matrix back once it is no longer needed; small ones, or any past kMaxKept, are freed.
    void give(Matrix&& m) {
        if (m.size() < kMinValues) return;
        std::lock_guard<std::mutex> lock(mutex_);
        if (kept_.size() < kMaxKept) kept_.push_back(std::move(m));
    }

    size_t kept() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return kept_.size();
    }

private:
    mutable std::mutex mutex_;
    std::vector<Matrix> kept_;
};

// nn.Conv2d with stride 1 (see kernels/conv2d.h); a batch norm and ReLU that follow it can be
// folded in through Conv2dKernel::Options.
struct Conv2d {
    Conv2dKernel kernel;

    Conv2d() = default;
    Conv2d(const float* weight, const float* bias, int64_t c_out, int64_t c_in, int64_t kernel_size, int64_t pad, int64_t dil = 1)
        : kernel(weight, bias, c_out, c_in, kernel_size, Conv2dKernel::Options{pad, dil, nullptr, false}) {}
    Conv2d(const float* weight, const float* bias, int64_t c_out, int64_t c_in, int64_t kernel_size, const Conv2dKernel::Options& o)
        : kernel(weight, bias, c_out, c_in, kernel_size, o) {}

    FeatureMap operator()(const FeatureMap& x, Matrix storage = {}) const {
        if (x.channels() != kernel.in_channels())
            throw Error("conv2d: input has " + std::to_string(x.channels()) + " channels, weights expect " + std::to_string(kernel.in_channels()));
        FeatureMap y{kernel.output_size(x.height), kernel.output_size(x.width), std::move(storage)};
        y.data.resize(y.height * y.width, kernel.out_channels());
        kernel.forward(x.data.data(), x.height, x.width, y.data.data());
        return y;
    }
};

// Below this many values a pass runs on one thread: a parallel region costs more than it saves.
constexpr int64_t kImageParallelMin = int64_t(1) << 15;

// BatchNorm2d in inference: per-channel (x - mean) / sqrt(var + eps) * gamma + beta.
struct BatchNorm {
    RowVector scale, shift;
    BatchNorm() = default;
    BatchNorm(const float* gamma, const float* beta, const float* mean, const float* var, int64_t c, float eps) : scale(c), shift(c) {
        for (int64_t i = 0; i < c; ++i) {
            scale(i) = float(double(gamma[i]) / std::sqrt(double(var[i]) + double(eps)));
            shift(i) = float(double(beta[i]) - double(mean[i]) * scale(i));
        }
    }
    void operator()(FeatureMap& x) const {
        const int64_t rows = x.data.rows();
#pragma omp parallel for schedule(static) if (x.data.size() > kImageParallelMin)
        for (int64_t r = 0; r < rows; ++r) x.data.row(r) = x.data.row(r).cwiseProduct(scale) + shift;
    }
};

// ConvTranspose2d with kernel 2, stride 2 (weight [C_in, C_out, 2, 2]): each input pixel writes a
// 2x2 block. A batch norm that follows it may be folded into the weights and bias.
struct ConvTranspose2x2 {
    Linear linear;  // [4 * C_out, C_in], rows ordered (dy, dx, c_out)
    std::vector<float> bias;
    int64_t c_out = 0;

    ConvTranspose2x2() = default;
    ConvTranspose2x2(const float* weight, const float* b, int64_t c_in, int64_t out, const BatchNorm* norm = nullptr)
        : bias(b, b + out), c_out(out) {
        std::vector<float> w(size_t(4 * out * c_in));
        // Output-channel major: the writes run along c_in, the strided reads of neighbouring output
        // channels share cache lines.
#pragma omp parallel for schedule(static)
        for (int64_t o = 0; o < out; ++o) {
            const float s = norm ? norm->scale(o) : 1.0f;
            for (int64_t i = 0; i < c_in; ++i)
                for (int64_t t = 0; t < 4; ++t) w[size_t((t * out + o) * c_in + i)] = weight[(i * out + o) * 4 + t] * s;
        }
        if (norm)
            for (int64_t o = 0; o < out; ++o) bias[size_t(o)] = bias[size_t(o)] * norm->scale(o) + norm->shift(o);
        linear = Linear(w.data(), 4 * out, c_in, nullptr);
    }

    FeatureMap operator()(const FeatureMap& x, Matrix storage = {}) const {
        const Matrix blocks = linear(x.data);  // [h*w, 4*C_out]
        FeatureMap y{2 * x.height, 2 * x.width, output_storage(std::move(storage), 4 * x.height * x.width, c_out)};
        const ConstRowVectorMap b(bias.data(), c_out);
        const int64_t H = x.height, W = x.width;
#pragma omp parallel for schedule(static) if (y.data.size() > kImageParallelMin)
        for (int64_t py = 0; py < H; ++py)
            for (int64_t px = 0; px < W; ++px)
                for (int64_t t = 0; t < 4; ++t)
                    y.data.row((2 * py + t / 2) * y.width + 2 * px + t % 2) = blocks.row(py * W + px).segment(t * c_out, c_out) + b;
        return y;
    }
};

inline FeatureMap max_pool_2x2(const FeatureMap& x) {
    FeatureMap y{x.height / 2, x.width / 2, Matrix(x.height / 2 * (x.width / 2), x.channels())};
    const int64_t H = y.height, W = y.width;
#pragma omp parallel for schedule(static) if (y.data.size() > kImageParallelMin)
    for (int64_t oy = 0; oy < H; ++oy)
        for (int64_t ox = 0; ox < W; ++ox) {
            auto r = y.data.row(oy * W + ox);
            r = x.data.row(2 * oy * x.width + 2 * ox);
            r = r.cwiseMax(x.data.row(2 * oy * x.width + 2 * ox + 1));
            r = r.cwiseMax(x.data.row((2 * oy + 1) * x.width + 2 * ox));
            r = r.cwiseMax(x.data.row((2 * oy + 1) * x.width + 2 * ox + 1));
        }
    return y;
}

// nn.AdaptiveAvgPool2d: output cell i covers [floor(i * in / out), ceil((i + 1) * in / out)).
inline FeatureMap adaptive_avg_pool(const FeatureMap& x, int64_t out_h, int64_t out_w) {
    FeatureMap y{out_h, out_w, Matrix::Zero(out_h * out_w, x.channels())};
#pragma omp parallel for schedule(static) collapse(2) if (x.data.size() > kImageParallelMin)
    for (int64_t oy = 0; oy < out_h; ++oy) {
        for (int64_t ox = 0; ox < out_w; ++ox) {
            const int64_t y0 = oy * x.height / out_h, y1 = ((oy + 1) * x.height + out_h - 1) / out_h;
            const int64_t x0 = ox * x.width / out_w, x1 = ((ox + 1) * x.width + out_w - 1) / out_w;
            auto r = y.data.row(oy * out_w + ox);
            for (int64_t iy = y0; iy < y1; ++iy)
                for (int64_t ix = x0; ix < x1; ++ix) r += x.data.row(iy * x.width + ix);
            r /= float((y1 - y0) * (x1 - x0));
        }
    }
    return y;
}

// Source coordinate of output index `dst` (PyTorch area_pixel_compute_source_index, align_corners=False).
inline float resize_source_index(int64_t in, int64_t out, int64_t dst, bool cubic) {
    const float scale = float(in) / float(out);
    const float src = scale * (float(dst) + 0.5f) - 0.5f;
    return (!cubic && src < 0.0f) ? 0.0f : src;
}

// y = (or +=, with accumulate) F.interpolate(x, mode="bilinear", align_corners=False) of a
// channels-last map, y already sized.
inline void resize_bilinear_into(const FeatureMap& x, FeatureMap& y, bool accumulate) {
    if (x.height < 1 || x.width < 1 || y.height < 1 || y.width < 1) throw Error("resize of an empty feature map");
    if (y.data.rows() != y.height * y.width || y.channels() != x.channels()) throw Error("resize: output of the wrong shape");
    const int64_t out_h = y.height, out_w = y.width;
#pragma omp parallel for schedule(static) if (out_h * out_w * x.channels() > kImageParallelMin)
    for (int64_t oy = 0; oy < out_h; ++oy) {
        const float sy = resize_source_index(x.height, out_h, oy, false);
        const int64_t y0 = std::min<int64_t>(int64_t(sy), x.height - 1), y1 = std::min<int64_t>(y0 + 1, x.height - 1);
        const float ly = sy - float(y0);
        for (int64_t ox = 0; ox < out_w; ++ox) {
            const float sx = resize_source_index(x.width, out_w, ox, false);
            const int64_t x0 = std::min<int64_t>(int64_t(sx), x.width - 1), x1 = std::min<int64_t>(x0 + 1, x.width - 1);
            const float lx = sx - float(x0);
            auto value = (1.0f - ly) * ((1.0f - lx) * x.data.row(y0 * x.width + x0) + lx * x.data.row(y0 * x.width + x1)) +
                         ly * ((1.0f - lx) * x.data.row(y1 * x.width + x0) + lx * x.data.row(y1 * x.width + x1));
            if (accumulate) y.data.row(oy * out_w + ox) += value;
            else y.data.row(oy * out_w + ox) = value;
        }
    }
}

inline FeatureMap resize_bilinear(const FeatureMap& x, int64_t out_h, int64_t out_w, Matrix storage = {}) {
    if (out_h < 1 || out_w < 1) throw Error("resize of an empty feature map");
    FeatureMap y{out_h, out_w, output_storage(std::move(storage), out_h * out_w, x.channels())};
    resize_bilinear_into(x, y, false);
    return y;
}

// F.interpolate(mode="bicubic", align_corners=False): Keys cubic convolution with A = -0.75,
// taps clamped at the borders.
inline FeatureMap resize_bicubic(const FeatureMap& x, int64_t out_h, int64_t out_w) {
    if (x.height < 1 || x.width < 1 || out_h < 1 || out_w < 1) throw Error("resize of an empty feature map");
    auto weights = [](float t, float w[4]) {
        const float A = -0.75f;
        auto near = [&](float d) { return ((A + 2) * d - (A + 3)) * d * d + 1; };
        auto far = [&](float d) { return ((A * d - 5 * A) * d + 8 * A) * d - 4 * A; };
        w[0] = far(t + 1); w[1] = near(t); w[2] = near(1 - t); w[3] = far(2 - t);
    };
    FeatureMap y{out_h, out_w, Matrix(out_h * out_w, x.channels())};
#pragma omp parallel for schedule(static) if (out_h * out_w * x.channels() > kImageParallelMin)
    for (int64_t oy = 0; oy < out_h; ++oy) {
        const float sy = resize_source_index(x.height, out_h, oy, true);
        const int64_t iy = int64_t(std::floor(sy));
        float wy[4];
        weights(sy - float(iy), wy);
        for (int64_t ox = 0; ox < out_w; ++ox) {
            const float sx = resize_source_index(x.width, out_w, ox, true);
            const int64_t ix = int64_t(std::floor(sx));
            float wx[4];
            weights(sx - float(ix), wx);
            RowVector acc = RowVector::Zero(x.channels());
            for (int64_t a = 0; a < 4; ++a) {
                const int64_t yy = std::clamp<int64_t>(iy - 1 + a, 0, x.height - 1);
                RowVector row = RowVector::Zero(x.channels());
                for (int64_t b = 0; b < 4; ++b) {
                    const int64_t xx = std::clamp<int64_t>(ix - 1 + b, 0, x.width - 1);
                    row += wx[b] * x.data.row(yy * x.width + xx);
                }
                acc += wy[a] * row;
            }
            y.data.row(oy * out_w + ox) = acc;
        }
    }
    return y;
}

}  // namespace d2v
