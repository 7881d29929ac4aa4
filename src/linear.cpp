#include "d2v/kernels/linear.h"

#include <omp.h>

#include <cstdlib>
#include <map>
#include <mutex>

#ifdef D2V_USE_DNNL
#include <dnnl.hpp>
#endif

namespace d2v {

void set_num_threads(int n) {
    if (n < 1) throw Error("thread count must be at least 1");
    omp_set_num_threads(n);
    Eigen::setNbThreads(n);
}

#ifdef D2V_USE_DNNL
namespace {
using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::engine& cpu_engine() {
    static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}
// Per-thread scratchpad, grown as needed and reused: concurrent callers never share one, and no
// call pays for an allocation once the largest size has been seen.
void* thread_scratchpad(size_t bytes) {
    struct Buffer {
        void* data = nullptr;
        size_t size = 0;
        ~Buffer() { std::free(data); }
    };
    thread_local Buffer buffer;
    if (bytes > buffer.size) {
        std::free(buffer.data);
        buffer.size = (bytes + 4095) / 4096 * 4096;
        buffer.data = std::aligned_alloc(64, buffer.size);
        if (!buffer.data) throw std::bad_alloc();
    }
    return buffer.data;
}

// Rows used to let oneDNN pick the packed weight layout at load; the same layout serves every M.
constexpr int64_t kReferenceRows = 256;
}  // namespace

struct Linear::Impl {
    memory::desc packed_weights_md;
    memory packed_weights;
    memory bias;
    bool has_bias = false;
    int64_t in = 0, out = 0;
    mutable std::mutex mutex;
    // Primitive per row count (oneDNN also caches). Each call brings its own scratchpad, so one
    // primitive may run from several threads at once (run() is documented thread-safe).
    mutable std::map<int64_t, std::pair<dnnl::matmul, memory::desc>> by_rows;

    dnnl::matmul::primitive_desc make_pd(int64_t rows, const memory::desc& weights_md) const {
        memory::desc src({rows, in}, dt::f32, tag::ab);
        memory::desc dst({rows, out}, dt::f32, tag::ab);
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        if (has_bias) {
            memory::desc b({1, out}, dt::f32, tag::ab);
            return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights_md, b, dst), attr, cpu_engine());
        }
        return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights_md, dst), attr, cpu_engine());
    }
};

Linear::Linear(const float* weight, int64_t out_features, int64_t in_features, const float* bias)
    : impl_(std::make_shared<Impl>()), out_(out_features), in_(in_features) {
    auto& p = *impl_;
    p.in = in_features;
    p.out = out_features;
    p.has_bias = bias != nullptr;
    // W^T as a [in, out] matrix: PyTorch's [out, in] row-major buffer is exactly format "ba".
    memory::desc plain_md({in_features, out_features}, dt::f32, tag::ba);
    memory::desc any_md({in_features, out_features}, dt::f32, tag::any);
    auto pd = p.make_pd(kReferenceRows, any_md);
    p.packed_weights_md = pd.weights_desc();
    p.packed_weights = memory(p.packed_weights_md, cpu_engine());
    memory plain(plain_md, cpu_engine(), const_cast<float*>(weight));
    dnnl::stream stream(cpu_engine());
    dnnl::reorder(plain, p.packed_weights).execute(stream, plain, p.packed_weights);
    if (bias) {
        p.bias = memory({{1, out_features}, dt::f32, tag::ab}, cpu_engine());
        std::copy(bias, bias + out_features, static_cast<float*>(p.bias.get_data_handle()));
    }
    stream.wait();
}

void Linear::forward(const float* x, int64_t rows, float* y) const {
    if (rows == 0) return;
    auto& p = *impl_;
    dnnl::matmul prim;
    memory::desc scratchpad_md;
    {
        std::lock_guard<std::mutex> lock(p.mutex);
        auto it = p.by_rows.find(rows);
        if (it == p.by_rows.end()) {
            auto pd = p.make_pd(rows, p.packed_weights_md);
            it = p.by_rows.emplace(rows, std::make_pair(dnnl::matmul(pd), pd.scratchpad_desc())).first;
        }
        prim = it->second.first;
        scratchpad_md = it->second.second;
    }
    memory src({{rows, p.in}, dt::f32, tag::ab}, cpu_engine(), const_cast<float*>(x));
    memory dst({{rows, p.out}, dt::f32, tag::ab}, cpu_engine(), y);
    memory scratchpad(scratchpad_md, cpu_engine(), thread_scratchpad(scratchpad_md.get_size()));
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, p.packed_weights}, {DNNL_ARG_DST, dst},
                                         {DNNL_ARG_SCRATCHPAD, scratchpad}};
    if (p.has_bias) args.emplace(DNNL_ARG_BIAS, p.bias);
    dnnl::stream stream(cpu_engine());
    prim.execute(stream, args);
    stream.wait();
}

const char* Linear::backend_name() { return "oneDNN matmul (prepacked weights)"; }

#else  // Eigen reference path

struct Linear::Impl {
    Matrix weight;     // [out, in]
    RowVector bias;    // [out] or empty
};

Linear::Linear(const float* weight, int64_t out_features, int64_t in_features, const float* bias)
    : impl_(std::make_shared<Impl>()), out_(out_features), in_(in_features) {
    impl_->weight = ConstMatrixMap(weight, out_features, in_features);
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
