#include "d2v/kernels/linear.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#ifdef D2V_USE_DNNL
#include <immintrin.h>

#include <dnnl.hpp>

#include "dnnl_common.h"
#endif

namespace d2v {

namespace {
float bf16_to_float(uint16_t h) {
    const uint32_t bits = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}
// A reduced-precision matrix as f32 (the fallback on CPUs / backends without native support).
std::vector<float> expand_to_f32(const WeightData& w, int64_t out, int64_t in) {
    std::vector<float> f(size_t(out * in));
    if (w.type == WeightType::BF16) {
        const auto* h = static_cast<const uint16_t*>(w.data);
        for (size_t i = 0; i < f.size(); ++i) f[i] = bf16_to_float(h[i]);
    } else {
        const auto* q = static_cast<const int8_t*>(w.data);
        for (int64_t r = 0; r < out; ++r)
            for (int64_t c = 0; c < in; ++c) f[size_t(r * in + c)] = float(q[r * in + c]) * w.scale[r];
    }
    return f;
}
void notice_expanded(WeightType type) {
    static std::once_flag once[3];
    std::call_once(once[int(type)], [type] {
        std::fprintf(stderr, "d2v: %s weights expanded to f32 at load (%s)\n", weight_type_name(type),
                     type == WeightType::BF16 ? "native bf16 needs AMX, or D2V_BF16=native and AVX512_BF16"
                                              : "this CPU/backend has no AVX512/AVX2 VNNI int8 matmul");
    });
}
}  // namespace

const char* weight_type_name(WeightType type) {
    switch (type) {
        case WeightType::F32: return "f32";
        case WeightType::BF16: return "bf16";
        case WeightType::I8: return "int8";
    }
    return "?";
}

#ifdef D2V_USE_DNNL
namespace {
using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

using dnnl_common::cpu_engine;
using dnnl_common::ThreadBuffer;
// One per use (scratchpad, converted activations, row scales).
thread_local ThreadBuffer scratchpad_buffer, activation_buffer, row_scale_buffer;

// oneDNN's ISA values are bit sets: an ISA includes another when it holds all of its bits.
bool isa_includes(dnnl::cpu_isa have, dnnl::cpu_isa want) {
    return (unsigned(have) & unsigned(want)) == unsigned(want);
}

// Round to nearest even, as the hardware's VCVTNEPS2BF16 does (NaN kept a quiet NaN).
inline uint16_t float_to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return uint16_t(u >> 16);
}

// One row of activations to u8 (q + 128, q = round-half-even(x / scale) in [-127, 127]) for the int8
// products; returns the row's scale max|x| / 127 (1 for an all-zero or non-finite maximum, which
// keeps the division finite). The AVX-512 path gives the same bytes as the scalar one: the vector
// conversion rounds half to even like nearbyint in the default rounding mode.
float quantize_row_u8(const float* x, int64_t n, uint8_t* q) {
    const float amax = Eigen::Map<const Eigen::ArrayXf>(x, n).abs().maxCoeff();
    const float scale = amax > 0.f && std::isfinite(amax) ? amax / 127.f : 1.f;
    const float inv = 1.f / scale;
    int64_t c = 0;
#if defined(__AVX512F__)
    const __m512 vinv = _mm512_set1_ps(inv);
    const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127), offset = _mm512_set1_epi32(128);
    for (; c + 16 <= n; c += 16) {
        __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + c), vinv));
        v = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(v, lo), hi), offset);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(q + c), _mm512_cvtepi32_epi8(v));
    }
#endif
    for (; c < n; ++c) {
        const float v = std::nearbyint(x[c] * inv);
        q[c] = uint8_t(int(std::min(127.f, std::max(-127.f, v))) + 128);
    }
    return scale;
}

// Rows used to let oneDNN pick the packed weight layout at load; the same layout serves every M.
constexpr int64_t kReferenceRows = 256;
// Below this many activation values, converting them in one thread beats starting a parallel region.
constexpr int64_t kParallelConvertMin = int64_t(1) << 16;
}  // namespace

struct Linear::Impl {
    WeightType type = WeightType::F32;
    memory::desc packed_weights_md;
    memory packed_weights;
    memory bias;
    const float* bias_values = nullptr;  // into `bias` (int8 adds it after the scales)
    std::vector<float> weight_scale;     // int8: per output channel
    bool has_bias = false;
    int64_t in = 0, out = 0;
    struct Cached {
        int64_t rows;
        int threads;  // oneDNN fixes a primitive's thread count when it is created
        dnnl::matmul prim;
        memory::desc scratchpad_md;
        uint64_t last_use;
    };
    mutable std::mutex mutex;
    // Primitives by (row count, thread count), LRU-bounded: a primitive made at 1 thread keeps running
    // on 1 thread after set_num_threads(2), so the caller's current count is part of the key. Each call brings its own scratchpad, so one primitive may
    // run from several threads at once (run() is documented thread-safe).
    mutable std::vector<Cached> cache;
    mutable uint64_t clock = 0;

    // int8 activations go in as u8 (q + 128): VNNI multiplies u8 x s8 natively, and oneDNN's s8 x s8
    // path measured ~20% slower (578 vs 702 GFLOP/s at 128x768x3072). `compensation` takes the 128
    // back out: sum_k (q+128) w = sum_k q w + 128 colsum(w).
    dt src_type() const { return type == WeightType::F32 ? dt::f32 : type == WeightType::BF16 ? dt::bf16 : dt::u8; }
    dt weight_type() const { return type == WeightType::F32 ? dt::f32 : type == WeightType::BF16 ? dt::bf16 : dt::s8; }
    std::vector<float> compensation;  // int8: 128 * weight_scale[c] * sum_k w_q[c][k]

    dnnl::matmul::primitive_desc make_pd(int64_t rows, const memory::desc& weights_md) const {
        memory::desc src({rows, in}, src_type(), tag::ab);
        memory::desc dst({rows, out}, dt::f32, tag::ab);
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        if (type == WeightType::I8) {
            // Per-output-channel weight scales folded into the product; the per-row activation scale
            // and the bias are applied afterwards (oneDNN 2.6 has no per-row source scales).
            attr.set_output_scales(1 << 1, weight_scale);
            return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights_md, dst), attr, cpu_engine());
        }
        if (has_bias) {
            memory::desc b({1, out}, dt::f32, tag::ab);
            return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights_md, b, dst), attr, cpu_engine());
        }
        return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights_md, dst), attr, cpu_engine());
    }

    std::pair<dnnl::matmul, memory::desc> primitive(int64_t rows) const {
        std::lock_guard<std::mutex> lock(mutex);
        ++clock;
        const int threads = omp_get_max_threads();
        for (auto& c : cache)
            if (c.rows == rows && c.threads == threads) {
                c.last_use = clock;
                return {c.prim, c.scratchpad_md};
            }
        auto pd = make_pd(rows, packed_weights_md);
        Cached entry{rows, threads, dnnl::matmul(pd), pd.scratchpad_desc(), clock};
        if (cache.size() < kMaxCachedRowCounts) {
            cache.push_back(entry);
        } else {
            auto oldest = std::min_element(cache.begin(), cache.end(),
                                           [](const Cached& a, const Cached& b) { return a.last_use < b.last_use; });
            *oldest = entry;
        }
        return {entry.prim, entry.scratchpad_md};
    }
};

bool Linear::supports(WeightType type) {
    const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
    switch (type) {
        case WeightType::F32: return true;
        case WeightType::BF16: {
            // Without AMX, oneDNN 2.6's AVX512_BF16 matmul ran at half our f32 speed on this Xeon
            // (90 vs 174 GFLOP/s per core, 128x768x3072: VDPBF16PS issues on one port, FMA on two),
            // so bf16 files are expanded to f32 there. D2V_BF16=native forces the AVX512_BF16 kernels.
            const char* force = std::getenv("D2V_BF16");
            if (force && std::string(force) == "native") return isa_includes(isa, dnnl::cpu_isa::avx512_core_bf16);
            return isa_includes(isa, dnnl::cpu_isa::avx512_core_amx);
        }
        case WeightType::I8:
            return isa_includes(isa, dnnl::cpu_isa::avx512_core_vnni) || isa_includes(isa, dnnl::cpu_isa::avx2_vnni);
    }
    return false;
}

Linear::Linear(const WeightData& weight, int64_t out_features, int64_t in_features, const float* bias)
    : impl_(std::make_shared<Impl>()), out_(out_features), in_(in_features) {
    auto& p = *impl_;
    p.in = in_features;
    p.out = out_features;
    p.has_bias = bias != nullptr;
    std::vector<float> expanded;
    const void* source = weight.data;
    p.type = weight.type;
    if (p.type != WeightType::F32 && !supports(p.type)) {
        notice_expanded(p.type);
        expanded = expand_to_f32(weight, out_features, in_features);
        source = expanded.data();
        p.type = WeightType::F32;
    }
    if (p.type == WeightType::I8) {
        p.weight_scale.assign(weight.scale, weight.scale + out_features);
        p.compensation.resize(size_t(out_features));
        const auto* q = static_cast<const int8_t*>(weight.data);
        for (int64_t c = 0; c < out_features; ++c) {
            int64_t sum = 0;
            for (int64_t k = 0; k < in_features; ++k) sum += q[c * in_features + k];
            p.compensation[size_t(c)] = 128.0f * weight.scale[c] * float(sum);
        }
    }
    // W^T as a [in, out] matrix: PyTorch's [out, in] row-major buffer is exactly format "ba".
    memory::desc plain_md({in_features, out_features}, p.weight_type(), tag::ba);
    memory::desc any_md({in_features, out_features}, p.weight_type(), tag::any);
    auto pd = p.make_pd(kReferenceRows, any_md);
    p.packed_weights_md = pd.weights_desc();
    p.packed_weights = memory(p.packed_weights_md, cpu_engine());
    memory plain(plain_md, cpu_engine(), const_cast<void*>(source));
    dnnl::stream stream(cpu_engine());
    dnnl::reorder(plain, p.packed_weights).execute(stream, plain, p.packed_weights);
    if (bias) {
        p.bias = memory({{1, out_features}, dt::f32, tag::ab}, cpu_engine());
        std::copy(bias, bias + out_features, static_cast<float*>(p.bias.get_data_handle()));
        p.bias_values = static_cast<const float*>(p.bias.get_data_handle());
    }
    stream.wait();
}

void Linear::forward(const float* x, int64_t rows, float* y) const {
    if (rows == 0) return;
    auto& p = *impl_;
    const auto [prim, scratchpad_md] = p.primitive(rows);
    const int64_t in = p.in, out = p.out;
    const void* src_data = x;
    float* row_scale = nullptr;
    if (p.type == WeightType::BF16) {
        auto* h = static_cast<uint16_t*>(activation_buffer.get(size_t(rows * in) * sizeof(uint16_t)));
        const int64_t n = rows * in;
#pragma omp parallel for if (n >= kParallelConvertMin)
        for (int64_t i = 0; i < n; ++i) h[i] = float_to_bf16(x[i]);
        src_data = h;
    } else if (p.type == WeightType::I8) {
        auto* q = static_cast<uint8_t*>(activation_buffer.get(size_t(rows * in)));
        row_scale = static_cast<float*>(row_scale_buffer.get(size_t(rows) * sizeof(float)));
#pragma omp parallel for if (rows * in >= kParallelConvertMin)
        for (int64_t r = 0; r < rows; ++r) row_scale[r] = quantize_row_u8(x + r * in, in, q + r * in);
        src_data = q;
    }
    memory src({{rows, in}, p.src_type(), tag::ab}, cpu_engine(), const_cast<void*>(src_data));
    memory dst({{rows, out}, dt::f32, tag::ab}, cpu_engine(), y);
    memory scratchpad(scratchpad_md, cpu_engine(), scratchpad_buffer.get(scratchpad_md.get_size()));
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, p.packed_weights}, {DNNL_ARG_DST, dst},
                                         {DNNL_ARG_SCRATCHPAD, scratchpad}};
    if (p.has_bias && p.type != WeightType::I8) args.emplace(DNNL_ARG_BIAS, p.bias);
    dnnl::stream stream(cpu_engine());
    prim.execute(stream, args);
    stream.wait();
    if (p.type == WeightType::I8) {
        const float* b = p.bias_values;
        const float* comp = p.compensation.data();
#pragma omp parallel for if (rows * out >= kParallelConvertMin)
        for (int64_t r = 0; r < rows; ++r) {
            float* yr = y + r * out;
            const float s = row_scale[r];
            if (b)
                for (int64_t c = 0; c < out; ++c) yr[c] = (yr[c] - comp[c]) * s + b[c];
            else
                for (int64_t c = 0; c < out; ++c) yr[c] = (yr[c] - comp[c]) * s;
        }
    }
}

WeightType Linear::compute_type() const { return impl_ ? impl_->type : WeightType::F32; }

size_t Linear::cached_row_counts() const {
    if (!impl_) return 0;
    std::lock_guard<std::mutex> lock(impl_->mutex);
    return impl_->cache.size();
}

const char* Linear::backend_name() { return "oneDNN matmul (prepacked weights)"; }

#else  // Eigen reference path

struct Linear::Impl {
    Matrix weight;     // [out, in]
    RowVector bias;    // [out] or empty
};

bool Linear::supports(WeightType type) { return type == WeightType::F32; }
WeightType Linear::compute_type() const { return WeightType::F32; }
size_t Linear::cached_row_counts() const { return 0; }

Linear::Linear(const WeightData& w, int64_t out_features, int64_t in_features, const float* bias)
    : impl_(std::make_shared<Impl>()), out_(out_features), in_(in_features) {
    if (w.type == WeightType::F32) {
        impl_->weight = ConstMatrixMap(static_cast<const float*>(w.data), out_features, in_features);
    } else {
        notice_expanded(w.type);
        const std::vector<float> f = expand_to_f32(w, out_features, in_features);
        impl_->weight = ConstMatrixMap(f.data(), out_features, in_features);
    }
    if (bias) impl_->bias = ConstRowVectorMap(bias, out_features);
}

void Linear::forward(const float* x, int64_t rows, float* y) const {
    if (rows == 0) return;
    Eigen::Map<const Matrix> X(x, rows, in_);
    Eigen::Map<Matrix> Y(y, rows, out_);
    Y.noalias() = X * impl_->weight.transpose();
    if (impl_->bias.size()) Y.rowwise() += impl_->bias;
}

const char* Linear::backend_name() { return "Eigen"; }
#endif

}  // namespace d2v
