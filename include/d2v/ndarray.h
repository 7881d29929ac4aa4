// A named output tensor: the form every forward pass reports in, and what --dump writes as .npy.
#pragma once
#include <map>

#include "d2v/tensor.h"

namespace d2v {

struct NdArray {
    Shape shape;
    std::vector<float> data;
    bool is_integer = false;  // written as int64 (attention_mask, labels)
};

// Outputs keyed by the Transformers field name: "logits", "hidden_states.3", ...
using NamedOutputs = std::map<std::string, NdArray>;

// Stacks per-item matrices of one shape into [B, rows, cols] (or [B, cols] when squeeze_rows and rows == 1).
inline NdArray stack_items(const std::vector<Matrix>& items, bool squeeze_rows = false) {
    NdArray a;
    const int64_t B = int64_t(items.size());
    const int64_t rows = B ? items[0].rows() : 0, cols = B ? items[0].cols() : 0;
    a.shape = squeeze_rows ? Shape{B, cols} : Shape{B, rows, cols};
    a.data.reserve(size_t(B * rows * cols));
    for (const auto& m : items) {
        if (m.rows() != rows || m.cols() != cols) throw Error("stack_items: items differ in shape");
        a.data.insert(a.data.end(), m.data(), m.data() + m.size());
    }
    return a;
}

// [heads * T, T] per item -> [B, heads, T, T]
inline NdArray stack_attentions(const std::vector<Matrix>& items, int64_t heads) {
    NdArray a = stack_items(items);
    const int64_t T = a.shape[2];
    a.shape = {a.shape[0], heads, T, T};
    return a;
}

inline NdArray scalar_array(float v) { return NdArray{{}, {v}, false}; }

inline NdArray matrix_array(const Matrix& m) {
    return NdArray{{m.rows(), m.cols()}, std::vector<float>(m.data(), m.data() + m.size()), false};
}

// hidden_states.<i> / attentions.<i> as Transformers names them; inputs are [layer][item].
inline void add_layer_outputs(NamedOutputs& out, const std::vector<std::vector<Matrix>>& hidden_states,
                              const std::vector<std::vector<Matrix>>& attentions, int64_t heads) {
    for (size_t l = 0; l < hidden_states.size(); ++l) out["hidden_states." + std::to_string(l)] = stack_items(hidden_states[l]);
    for (size_t l = 0; l < attentions.size(); ++l) out["attentions." + std::to_string(l)] = stack_attentions(attentions[l], heads);
}

}  // namespace d2v
