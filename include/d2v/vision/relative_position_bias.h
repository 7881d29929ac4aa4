// BEiT's relative position bias: a learned table with one row per 2-D offset between two patches
// ((2*Wh-1) * (2*Ww-1) rows) plus 3 rows for cls->patch, patch->cls and cls->cls, one column per
// head. For an input whose patch grid differs from the checkpoint's, the offset part of the table
// is resized bilinearly first, exactly as Transformers does (including its quirk of viewing the
// table as (2*Ww-1) x (2*Wh-1), which only matters for non-square grids).
#pragma once
#include "d2v/kernels/image_ops.h"

namespace d2v::vision {

class RelativePositionBias {
public:
    RelativePositionBias() = default;
    RelativePositionBias(const float* table, int64_t grid_h, int64_t grid_w, int64_t heads)
        : table_(table), grid_h_(grid_h), grid_w_(grid_w), heads_(heads) {}

    // Additive attention bias for a (grid_h x grid_w) patch grid: [heads * (N+1), N+1], N = grid_h * grid_w.
    Matrix for_grid(int64_t grid_h, int64_t grid_w) const {
        const int64_t old_rows = 2 * grid_w_ - 1, old_cols = 2 * grid_h_ - 1;  // Transformers' (old_width, old_height) view
        const int64_t old_offsets = old_rows * old_cols;
        FeatureMap old_table{old_rows, old_cols, ConstMatrixMap(table_, old_offsets, heads_)};
        const int64_t new_h = 2 * grid_h - 1, new_w = 2 * grid_w - 1;
        const FeatureMap resized = resize_bilinear(old_table, new_h, new_w);  // identity at the trained size
        const int64_t new_offsets = new_h * new_w;
        auto table_row = [&](int64_t r) -> RowVector {
            if (r < new_offsets) return resized.data.row(r);
            return ConstRowVectorMap(table_ + (old_offsets + (r - new_offsets)) * heads_, heads_);
        };
        const int64_t N = grid_h * grid_w, T = N + 1;
        Matrix bias(heads_ * T, T);
        auto set = [&](int64_t i, int64_t j, int64_t row) {
            const RowVector v = table_row(row);
            for (int64_t h = 0; h < heads_; ++h) bias(h * T + i, j) = v(h);
        };
        for (int64_t i = 0; i < N; ++i)
            for (int64_t j = 0; j < N; ++j) {
                const int64_t dy = i / grid_w - j / grid_w + grid_h - 1, dx = i % grid_w - j % grid_w + grid_w - 1;
                set(i + 1, j + 1, dy * (2 * grid_w - 1) + dx);
            }
        for (int64_t j = 1; j < T; ++j) set(0, j, new_offsets);      // cls query -> patch keys
        for (int64_t i = 1; i < T; ++i) set(i, 0, new_offsets + 1);  // patch queries -> cls key
        set(0, 0, new_offsets + 2);
        return bias;
    }

private:
    const float* table_ = nullptr;
    int64_t grid_h_ = 0, grid_w_ = 0, heads_ = 0;
};

}  // namespace d2v::vision
