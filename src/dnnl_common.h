// What the oneDNN-backed kernels (linear.cpp, conv2d.cpp) share: one CPU engine for the process and
// a per-thread buffer type. Internal to the library; only compiled with D2V_USE_DNNL.
#pragma once
#include <cstdlib>
#include <new>

#include <dnnl.hpp>

namespace d2v::dnnl_common {

inline dnnl::engine& cpu_engine() {
    static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}

// Per-thread buffer, grown as needed and reused: concurrent callers never share one (each is
// thread_local), and no call pays for an allocation once the largest size has been seen.
struct ThreadBuffer {
    void* data = nullptr;
    size_t size = 0;
    ~ThreadBuffer() { std::free(data); }
    void* get(size_t bytes) {
        if (bytes > size) {
            std::free(data);
            data = nullptr;
            size = (bytes + 4095) / 4096 * 4096;
            data = std::aligned_alloc(64, size);
            if (!data) {
                size = 0;
                throw std::bad_alloc();
            }
        }
        return data;
    }
};

}  // namespace d2v::dnnl_common
