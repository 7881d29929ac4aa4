#include "d2v/kernels/conv2d.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "d2v/kernels/linear.h"

#ifdef D2V_USE_DNNL
#include <dnnl.hpp>

#include "dnnl_common.h"
#include "winograd_weights.h"
#endif

namespace d2v {
namespace {

int64_t row_stride(const Conv2dKernel::Options& o, int64_t c_in, int64_t kernel) {
    if (o.weight_row_stride != 0 && o.weight_row_stride < c_in * kernel * kernel) throw Error("conv2d: weight rows overlap");
    return o.weight_row_stride != 0 ? o.weight_row_stride : c_in * kernel * kernel;
}

}  // namespace

int64_t Conv2dKernel::output_size(int64_t input) const {
    const int64_t out = input + 2 * padding_ - dilation_ * (kernel_ - 1);
    if (input < 1 || out < 1)
        throw Error("conv2d: a " + std::to_string(kernel_) + "x" + std::to_string(kernel_) + " kernel does not fit a map of side " +
                    std::to_string(input));
    return out;
}

#ifdef D2V_USE_DNNL
namespace {
using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

using dnnl_common::cpu_engine;
// The convolutions' oneDNN scratchpad, per thread.
thread_local dnnl_common::ThreadBuffer scratchpad_buffer;
void* thread_scratchpad(size_t bytes) { return scratchpad_buffer.get(bytes); }

// Map side used to let oneDNN choose the weight layout at load; other sizes reuse that layout.
constexpr int64_t kReferenceSide = 32;
// Primitives kept per kernel, one per input size seen (least recently used one replaced).
constexpr size_t kMaxCachedShapes = 8;
}  // namespace

struct Conv2dKernel::Impl {
    int64_t c_out = 0, c_in = 0, kernel = 1, padding = 0, dilation = 1;
    bool relu = false, accumulate = false, has_bias = false;
    int64_t winograd_min_pixels = 0;
    memory::desc weights_md;
    memory weights, bias;

    // Winograd runs on strips of kStripRows output rows: input rows (with their zero border rows)
    // are gathered into an NHWC strip, reordered into the kernel's blocked layout, convolved and
    // reordered back (adding to y when accumulating).
    static constexpr int64_t kStripRows = 16;
    struct WinoCached {
        int64_t rows, width;  // output rows of the strip, map width
        int threads;          // oneDNN fixes a primitive's thread count when it is created
        dnnl::convolution_forward prim;
        memory::desc src_md, dst_md, weights_md, scratchpad_md;
        memory weights;  // transformed once (winograd_weights.h) and kept
        uint64_t last_use;
    };
    mutable std::vector<WinoCached> wino_cache;

    bool use_winograd(int64_t oh, int64_t ow) const {
        return kernel == 3 && padding == 1 && dilation == 1 && oh * ow >= winograd_min_pixels && c_in >= 16 && c_out >= 16;
    }

    const WinoCached& wino_primitive(int64_t rows, int64_t w) const {
        // Called with the mutex held.
        ++clock;
        const int threads = omp_get_max_threads();
        for (auto& c : wino_cache)
            if (c.rows == rows && c.width == w && c.threads == threads) {
                c.last_use = clock;
                return c;
            }
        const memory::desc src({1, c_in, rows + 2, w}, dt::f32, tag::any), dst({1, c_out, rows, w}, dt::f32, tag::any);
        const memory::desc wmd({c_out, c_in, 3, 3}, dt::f32, tag::any);
        const memory::dims strides{1, 1}, dilates{0, 0}, pad_l{0, 1}, pad_r{0, 1};
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        if (relu && !accumulate) {
            dnnl::post_ops ops;
            ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
            attr.set_post_ops(ops);
        }
        const auto prop = dnnl::prop_kind::forward_inference;
        const auto algo = dnnl::algorithm::convolution_winograd;
        dnnl::convolution_forward::primitive_desc pd;
        if (has_bias)
            pd = {dnnl::convolution_forward::desc(prop, algo, src, wmd, memory::desc({c_out}, dt::f32, tag::x), dst, strides, dilates, pad_l, pad_r),
                  attr, cpu_engine()};
        else
            pd = {dnnl::convolution_forward::desc(prop, algo, src, wmd, dst, strides, dilates, pad_l, pad_r), attr, cpu_engine()};
        WinoCached entry{rows, w, threads, dnnl::convolution_forward(pd), pd.src_desc(), pd.dst_desc(), pd.weights_desc(), pd.scratchpad_desc(), {}, clock};
        for (const auto& c : wino_cache)
            if (c.weights_md == entry.weights_md) entry.weights = c.weights;
        if (!entry.weights) {
            entry.weights = memory(entry.weights_md, cpu_engine());
            // Read straight from the packed direct weights: a plain copy would be 21 MB of fresh
            // pages per 768x768 kernel at the first call.
            if (!winograd::transform_4x3_weights(weights_md, static_cast<const float*>(weights.get_data_handle()), entry.weights_md,
                                                 entry.weights.get_data_handle())) {
                dnnl::stream s(cpu_engine());
                memory packed = weights;
                memory plain(memory::desc({c_out, c_in, 3, 3}, dt::f32, tag::oihw), cpu_engine());
                dnnl::reorder(packed, plain).execute(s, packed, plain);
                dnnl::reorder(plain, entry.weights).execute(s, plain, entry.weights);
                s.wait();
            }
        }
        if (wino_cache.size() < kMaxCachedShapes) {
            wino_cache.push_back(std::move(entry));
            return wino_cache.back();
        }
        auto oldest = std::min_element(wino_cache.begin(), wino_cache.end(),
                                       [](const WinoCached& a, const WinoCached& b) { return a.last_use < b.last_use; });
        *oldest = std::move(entry);
        return *oldest;
    }

    bool forward_winograd(const float* x, int64_t h, int64_t w, float* y) const;

    struct Cached {
        int64_t height, width;
        int threads;  // as WinoCached::threads
        dnnl::convolution_forward prim;
        memory::desc scratchpad_md;
        memory weights;  // the load-time weights, or a copy in the layout this size needed
        uint64_t last_use;
    };
    mutable std::mutex mutex;
    mutable std::vector<Cached> cache;
    mutable uint64_t clock = 0;

    dnnl::convolution_forward::primitive_desc make_pd(int64_t h, int64_t w, const memory::desc& wmd) const {
        const int64_t span = dilation * (kernel - 1);
        const memory::desc src({1, c_in, h, w}, dt::f32, tag::nhwc);
        const memory::desc dst({1, c_out, h + 2 * padding - span, w + 2 * padding - span}, dt::f32, tag::nhwc);
        const memory::dims strides{1, 1}, dilates{dilation - 1, dilation - 1}, pad{padding, padding};
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        dnnl::post_ops ops;
        if (accumulate) ops.append_sum(1.0f);
        if (relu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
        attr.set_post_ops(ops);
        const auto prop = dnnl::prop_kind::forward_inference;
        const auto algo = dnnl::algorithm::convolution_direct;
        if (has_bias) {
            const memory::desc b({c_out}, dt::f32, tag::x);
            return {dnnl::convolution_forward::desc(prop, algo, src, wmd, b, dst, strides, dilates, pad, pad), attr, cpu_engine()};
        }
        return {dnnl::convolution_forward::desc(prop, algo, src, wmd, dst, strides, dilates, pad, pad), attr, cpu_engine()};
    }

    const Cached& primitive(int64_t h, int64_t w) const {
        // Called with the mutex held.
        ++clock;
        const int threads = omp_get_max_threads();
        for (auto& c : cache)
            if (c.height == h && c.width == w && c.threads == threads) {
                c.last_use = clock;
                return c;
            }
        Cached entry{h, w, threads, {}, {}, weights, clock};
        try {
            const auto pd = make_pd(h, w, weights_md);
            entry.prim = dnnl::convolution_forward(pd);
            entry.scratchpad_md = pd.scratchpad_desc();
        } catch (const dnnl::error&) {
            // This size wants another weight layout: repack a copy for it.
            const auto pd = make_pd(h, w, memory::desc({c_out, c_in, kernel, kernel}, dt::f32, tag::any));
            entry.prim = dnnl::convolution_forward(pd);
            entry.scratchpad_md = pd.scratchpad_desc();
            entry.weights = memory(pd.weights_desc(), cpu_engine());
            dnnl::stream s(cpu_engine());
            memory packed = weights;  // a handle copy: execute() takes non-const memories
            dnnl::reorder(packed, entry.weights).execute(s, packed, entry.weights);
            s.wait();
        }
        if (cache.size() < kMaxCachedShapes) {
            cache.push_back(std::move(entry));
            return cache.back();
        }
        auto oldest = std::min_element(cache.begin(), cache.end(), [](const Cached& a, const Cached& b) { return a.last_use < b.last_use; });
        *oldest = std::move(entry);
        return *oldest;
    }
};

Conv2dKernel::Conv2dKernel(const float* weight, const float* bias, int64_t c_out, int64_t c_in, int64_t kernel, const Options& o)
    : c_out_(c_out), c_in_(c_in), kernel_(kernel), padding_(o.padding), dilation_(o.dilation) {
    if (c_out < 1 || c_in < 1 || kernel < 1 || o.padding < 0 || o.dilation < 1) throw Error("conv2d: invalid shape");
    auto p = std::make_shared<Impl>();
    p->c_out = c_out, p->c_in = c_in, p->kernel = kernel, p->padding = o.padding, p->dilation = o.dilation;
    p->relu = o.relu;
    p->accumulate = o.accumulate;
    p->winograd_min_pixels = o.winograd_min_pixels;
    p->has_bias = bias != nullptr;
    const int64_t side = std::max(kReferenceSide, o.dilation * (kernel - 1) + 1);
    const auto pd = p->make_pd(side, side, memory::desc({c_out, c_in, kernel, kernel}, dt::f32, tag::any));
    p->weights_md = pd.weights_desc();
    p->weights = memory(p->weights_md, cpu_engine());
    // Packed straight from the caller's (file's) weights, the channel scale applied on the way:
    // no intermediate copy of the slice (at load, UperNet's copies cost more than the packing).
    const memory::desc user_md({c_out, c_in, kernel, kernel}, dt::f32, memory::dims{row_stride(o, c_in, kernel), kernel * kernel, kernel, 1});
    memory user(user_md, cpu_engine(), const_cast<float*>(weight));
    dnnl::primitive_attr scale_attr;
    if (o.channel_scale) scale_attr.set_output_scales(1, std::vector<float>(o.channel_scale, o.channel_scale + c_out));
    dnnl::stream s(cpu_engine());
    dnnl::reorder(dnnl::reorder::primitive_desc(user, p->weights, scale_attr)).execute(s, user, p->weights);
    s.wait();
    if (bias) {
        p->bias = memory(memory::desc({c_out}, dt::f32, tag::x), cpu_engine());
        std::memcpy(p->bias.get_data_handle(), bias, sizeof(float) * size_t(c_out));
    }
    impl_ = std::move(p);
}

// The Winograd weights (4x the direct ones: 6x6 transformed taps) are made at the first call on a
// large map and kept, so only models that run such maps pay for them.
bool Conv2dKernel::Impl::forward_winograd(const float* x, int64_t h, int64_t w, float* y) const {
    auto& engine = cpu_engine();
    const int64_t strips = (h + kStripRows - 1) / kStripRows, last_rows = h - (strips - 1) * kStripRows;
    WinoCached full, last;
    try {
        std::lock_guard<std::mutex> lock(mutex);
        full = wino_primitive(std::min(kStripRows, h), w);
        last = wino_primitive(last_rows, w);
    } catch (const dnnl::error&) {
        return false;  // no Winograd kernel for this shape or CPU: nothing written yet, the caller goes direct
    }
    dnnl::stream s(engine);
    const int64_t row_values = w * c_in;
    std::vector<float> strip(size_t((kStripRows + 2) * row_values));
    memory blocked_src(full.src_md, engine), blocked_dst(full.dst_md, engine);
    dnnl::primitive_attr add;
    if (accumulate) {
        dnnl::post_ops ops;
        ops.append_sum(1.0f);
        add.set_post_ops(ops);
    }
    for (int64_t k = 0; k < strips; ++k) {
        const WinoCached& c = k + 1 == strips ? last : full;
        const int64_t r0 = k * kStripRows, rows = c.rows;
        // Input rows r0 - 1 .. r0 + rows, zero outside the map (the kernel itself pads only left and right).
        for (int64_t i = 0; i < rows + 2; ++i) {
            const int64_t iy = r0 - 1 + i;
            float* dst = strip.data() + i * row_values;
            if (iy < 0 || iy >= h) std::memset(dst, 0, sizeof(float) * size_t(row_values));
            else std::memcpy(dst, x + iy * row_values, sizeof(float) * size_t(row_values));
        }
        memory src_strip(memory::desc({1, c_in, rows + 2, w}, dt::f32, tag::nhwc), engine, strip.data());
        memory bsrc = c.src_md == full.src_md ? blocked_src : memory(c.src_md, engine);
        memory bdst = c.dst_md == full.dst_md ? blocked_dst : memory(c.dst_md, engine);
        dnnl::reorder(src_strip, bsrc).execute(s, src_strip, bsrc);
        memory scratch(c.scratchpad_md, engine, thread_scratchpad(std::max<size_t>(c.scratchpad_md.get_size(), 64)));
        std::unordered_map<int, memory> args{{DNNL_ARG_SRC, bsrc}, {DNNL_ARG_WEIGHTS, c.weights},
                                             {DNNL_ARG_DST, bdst}, {DNNL_ARG_SCRATCHPAD, scratch}};
        if (has_bias) args.emplace(DNNL_ARG_BIAS, bias);
        c.prim.execute(s, args);
        float* out = y + r0 * w * c_out;
        memory dst_strip(memory::desc({1, c_out, rows, w}, dt::f32, tag::nhwc), engine, out);
        dnnl::reorder(dnnl::reorder::primitive_desc(bdst, dst_strip, add)).execute(s, bdst, dst_strip);
        s.wait();
        if (relu && accumulate) {
            const int64_t n = rows * w * c_out;
#pragma omp parallel for schedule(static) if (n > (1 << 16))
            for (int64_t i = 0; i < n; ++i) out[i] = std::max(out[i], 0.0f);
        }
    }
    return true;
}

void Conv2dKernel::forward(const float* x, int64_t height, int64_t width, float* y) const {
    if (!impl_) throw Error("conv2d: kernel not loaded");
    const int64_t oh = output_size(height), ow = output_size(width);
    const Impl& p = *impl_;
    if (p.use_winograd(oh, ow) && p.forward_winograd(x, height, width, y)) return;
    dnnl::convolution_forward prim;
    memory::desc scratchpad_md;
    memory weights;
    {
        std::lock_guard<std::mutex> lock(p.mutex);
        const auto& c = p.primitive(height, width);
        prim = c.prim;
        scratchpad_md = c.scratchpad_md;
        weights = c.weights;
    }
    auto& engine = cpu_engine();
    memory src(memory::desc({1, c_in_, height, width}, dt::f32, tag::nhwc), engine, const_cast<float*>(x));
    memory dst(memory::desc({1, c_out_, oh, ow}, dt::f32, tag::nhwc), engine, y);
    memory scratch(scratchpad_md, engine, thread_scratchpad(std::max<size_t>(scratchpad_md.get_size(), 64)));
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}, {DNNL_ARG_SCRATCHPAD, scratch}};
    if (p.has_bias) args.emplace(DNNL_ARG_BIAS, p.bias);
    dnnl::stream s(engine);
    prim.execute(s, args);
    s.wait();
}

const char* Conv2dKernel::backend_name() { return "oneDNN convolution (direct, NHWC)"; }

#else  // im2col + Linear

namespace {
// The weights with the per-output-channel scale applied, still [c_out, c_in, k, k]. Folding a batch
// norm here costs one rounding per weight and saves a pass over the whole output map.
std::vector<float> scaled_weights(const float* weight, const float* scale, int64_t c_out, int64_t per_out, int64_t row_stride) {
    std::vector<float> w(size_t(c_out * per_out));
    for (int64_t o = 0; o < c_out; ++o)
        for (int64_t i = 0; i < per_out; ++i) w[size_t(o * per_out + i)] = weight[o * row_stride + i] * (scale ? scale[o] : 1.0f);
    return w;
}
}  // namespace

struct Conv2dKernel::Impl {
    Linear linear;  // tap-major weights [c_out, kh, kw, c_in]
    bool relu = false, accumulate = false;
};

Conv2dKernel::Conv2dKernel(const float* weight, const float* bias, int64_t c_out, int64_t c_in, int64_t kernel, const Options& o)
    : c_out_(c_out), c_in_(c_in), kernel_(kernel), padding_(o.padding), dilation_(o.dilation) {
    if (c_out < 1 || c_in < 1 || kernel < 1 || o.padding < 0 || o.dilation < 1) throw Error("conv2d: invalid shape");
    const int64_t taps = kernel * kernel;
    const std::vector<float> w = scaled_weights(weight, o.channel_scale, c_out, c_in * taps, row_stride(o, c_in, kernel));
    std::vector<float> tap_major(w.size());
    for (int64_t out = 0; out < c_out; ++out)
        for (int64_t c = 0; c < c_in; ++c)
            for (int64_t t = 0; t < taps; ++t) tap_major[size_t((out * taps + t) * c_in + c)] = w[size_t((out * c_in + c) * taps + t)];
    auto p = std::make_shared<Impl>();
    p->linear = Linear(tap_major.data(), c_out, taps * c_in, bias);
    p->relu = o.relu;
    p->accumulate = o.accumulate;
    impl_ = std::move(p);
}

void Conv2dKernel::forward(const float* x, int64_t height, int64_t width, float* y) const {
    if (!impl_) throw Error("conv2d: kernel not loaded");
    const int64_t oh = output_size(height), ow = output_size(width), C = c_in_, total = oh * ow;
    const Impl& p = *impl_;
    std::vector<float> sum;  // accumulate: the new product goes here first, then is added to y
    float* out = y;
    if (p.accumulate) {
        sum.resize(size_t(total * c_out_));
        out = sum.data();
    }
    if (kernel_ == 1 && padding_ == 0) {
        p.linear.forward(x, total, out);
    } else {
        const int64_t width_cols = kernel_ * kernel_ * C;
        // Blocks of output pixels bound the im2col buffer (a full 3x3 im2col of a 160x160x3072 map is 2.8 GB).
        const int64_t block = std::max<int64_t>(1, std::min<int64_t>(total, (int64_t(64) << 20) / (width_cols * 4)));
        std::vector<float> cols(size_t(block * width_cols));
        for (int64_t p0 = 0; p0 < total; p0 += block) {
            const int64_t rows = std::min(block, total - p0);
#pragma omp parallel for schedule(static)
            for (int64_t r = 0; r < rows; ++r) {
                const int64_t oy = (p0 + r) / ow, ox = (p0 + r) % ow;
                float* dst = cols.data() + r * width_cols;
                for (int64_t ky = 0; ky < kernel_; ++ky)
                    for (int64_t kx = 0; kx < kernel_; ++kx) {
                        const int64_t iy = oy - padding_ + ky * dilation_, ix = ox - padding_ + kx * dilation_;
                        float* tap = dst + (ky * kernel_ + kx) * C;
                        if (iy < 0 || iy >= height || ix < 0 || ix >= width)
                            std::memset(tap, 0, sizeof(float) * size_t(C));
                        else
                            std::memcpy(tap, x + (iy * width + ix) * C, sizeof(float) * size_t(C));
                    }
            }
            p.linear.forward(cols.data(), rows, out + p0 * c_out_);
        }
    }
    const int64_t n = total * c_out_;
    if (p.accumulate || p.relu) {
        const bool add = p.accumulate, relu = p.relu;
#pragma omp parallel for schedule(static) if (n > (1 << 16))
        for (int64_t i = 0; i < n; ++i) {
            const float v = add ? y[i] + out[i] : y[i];
            y[i] = relu ? std::max(v, 0.0f) : v;
        }
    }
}

const char* Conv2dKernel::backend_name() { return "im2col + matrix product"; }

#endif

}  // namespace d2v
