// Weights for oneDNN's f32 Winograd F(4x4, 3x3) convolution (jit_wino_4x3), made by us.
//
// That kernel takes its weights pre-transformed (U = G g G^T per channel pair, 6x6 taps) in the
// opaque "wino" layout OBaaIBOIio. oneDNN 2.6 makes them with a scalar reorder: 165 ms per
// 768x768 kernel on 2 threads, 0.68 s of a 640^2 segmentation's first call. This writes the same
// values in the same layout in ~13 ms (vectorised over 16 output channels, threaded). Internal to
// the library; only compiled with D2V_USE_DNNL.
#pragma once
#include <cstdint>

#include <dnnl.hpp>

namespace d2v::winograd {

// Writes the transformed weights of `weights` (f32 [c_out, c_in, 3, 3] in the plain or blocked
// layout `weights_md` describes, e.g. the direct convolution's packed copy, so that no plain copy
// is made) into `out`, a buffer of md.get_size() bytes. False, with nothing written, when either
// layout is not one this function reads or makes, or a one-time check against oneDNN's own reorder
// failed (another oneDNN version): the caller then uses oneDNN's reorder.
bool transform_4x3_weights(const dnnl::memory::desc& weights_md, const float* weights, const dnnl::memory::desc& md, void* out);

}  // namespace d2v::winograd
