// d2v-bench --matmul-peak: the host's matrix-product ceiling, measured with oneDNN itself, so that
// weights_tools/bench.py can say what share of it a forward pass reaches.
#include "matmul_peak.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>

#include "d2v/tensor.h"

#if D2V_USE_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace cli {

#if D2V_USE_DNNL
namespace {

const char* isa_name(dnnl::cpu_isa isa) {
    switch (isa) {
        case dnnl::cpu_isa::sse41: return "sse41";
        case dnnl::cpu_isa::avx: return "avx";
        case dnnl::cpu_isa::avx2: return "avx2";
        case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
        case dnnl::cpu_isa::avx512_core: return "avx512_core";
        case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
        case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
        case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
        default: return "other";
    }
}

// A constant fill: the kernels' speed does not depend on the values, and 0.5 / 1 stay normal.
void fill(const dnnl::memory& m, dnnl::memory::data_type type) {
    const size_t bytes = m.get_desc().get_size();
    auto* p = static_cast<uint8_t*>(m.get_data_handle());
    if (type == dnnl::memory::data_type::f32) {
        std::fill_n(reinterpret_cast<float*>(p), bytes / 4, 0.5f);
    } else if (type == dnnl::memory::data_type::bf16) {
        std::fill_n(reinterpret_cast<uint16_t*>(p), bytes / 2, uint16_t(0x3f00));  // 0.5 in bf16
    } else {
        std::memset(p, 1, bytes);
    }
}

}  // namespace

nlohmann::json matmul_peak(const std::string& dtype, int m, int k, int n, double min_seconds) {
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    // The inference pairings: bf16 x bf16 and u8 x s8 (VNNI's operand types) both accumulate wider.
    dt src, wei, dst;
    if (dtype == "f32") src = wei = dst = dt::f32;
    else if (dtype == "bf16") src = wei = dt::bf16, dst = dt::f32;
    else if (dtype == "s8") src = dt::u8, wei = dt::s8, dst = dt::s32;
    else throw d2v::Error("--dtype must be f32, bf16 or s8, got '" + dtype + "'");
    dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    dnnl::stream stream(engine);
    const dnnl::memory::desc src_md({m, k}, src, tag::ab), dst_md({m, n}, dst, tag::ab);
    // Weights in the layout the kernel prefers (format `any` + one reorder), as the engine packs them.
    const dnnl::memory::desc wei_plain({k, n}, wei, tag::ab), wei_any({k, n}, wei, tag::any);
    dnnl::matmul::primitive_desc pd;
    try {
        pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_md, wei_any, dst_md), engine);
    } catch (const dnnl::error&) {
        throw d2v::Error("oneDNN has no " + dtype + " matmul on this CPU");
    }
    dnnl::memory a(src_md, engine), w_plain(wei_plain, engine), w(pd.weights_desc(), engine), c(dst_md, engine);
    fill(a, src);
    fill(w_plain, wei);
    dnnl::reorder(w_plain, w).execute(stream, w_plain, w);
    dnnl::matmul prim(pd);
    const auto run = [&] {
        const auto t0 = std::chrono::steady_clock::now();
        prim.execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, c}});
        stream.wait();
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    run();  // warm-up: first-touch of the output, thread start
    double best = 1e30, total = 0;
    int reps = 0;
    while (reps < 3 || total < min_seconds) {
        const double s = run();
        best = std::min(best, s);
        total += s;
        ++reps;
    }
    const double flop = 2.0 * m * k * n;
    return {{"dtype", dtype},
            {"m", m},
            {"k", k},
            {"n", n},
            {"reps", reps},
            {"gflops", flop / best / 1e9},
            {"gflops_mean", flop * reps / total / 1e9},
            {"impl", pd.impl_info_str()},
            {"onednn_isa", isa_name(dnnl::get_effective_cpu_isa())},
            {"onednn_version", std::to_string(dnnl::version()->major) + "." + std::to_string(dnnl::version()->minor) +
                                   "." + std::to_string(dnnl::version()->patch)}};
}

#else

nlohmann::json matmul_peak(const std::string&, int, int, int, double) {
    throw d2v::Error("--matmul-peak needs a build with oneDNN (D2V_USE_DNNL=ON)");
}

#endif

}  // namespace cli
