// BEiT's relative position bias: a learned table with one row per 2-D offset between two patches
// ((2*Wh-1) * (2*Ww-1) rows) plus 3 rows for cls->patch, patch->cls and cls->cls, one column per
// head. For an input whose patch grid differs from the checkpoint's, the offset part of the table
// is resized bilinearly first, exactly as Transformers does (including its quirk of viewing the
// table as (2*Ww-1) x (2*Wh-1), which only matters for non-square grids).
//
// The [heads * (N+1), N+1] bias is a gather from that small table: the table (per grid) and the
// row index of every (query, key) pair (shared by all layers) are computed once; the bias is either
// gathered whole (small grids) or read row by row through them by attention (large grids).
#pragma once
#include "d2v/kernels/image_ops.h"

namespace d2v::vision {

// For one patch grid: which table row each (query, key) pair reads ([T * T], T = N + 1).
struct RelativePositionIndex {
    int64_t grid_h = 0, grid_w = 0, tokens = 0, table_rows = 0;
    std::vector<int32_t> row;

    RelativePositionIndex() = default;
    RelativePositionIndex(int64_t gh, int64_t gw) : grid_h(gh), grid_w(gw), tokens(gh * gw + 1) {
        const int64_t N = gh * gw, T = tokens, offsets = (2 * gh - 1) * (2 * gw - 1);
        table_rows = offsets + 3;
        row.resize(size_t(T * T));
        int32_t* r = row.data();
#pragma omp parallel for schedule(static) if (T * T > kImageParallelMin)
        for (int64_t i = 0; i < N; ++i)
            for (int64_t j = 0; j < N; ++j) {
                const int64_t dy = i / gw - j / gw + gh - 1, dx = i % gw - j % gw + gw - 1;
                r[(i + 1) * T + j + 1] = int32_t(dy * (2 * gw - 1) + dx);
            }
        for (int64_t j = 1; j < T; ++j) r[j] = int32_t(offsets);           // cls query -> patch keys
        for (int64_t i = 1; i < T; ++i) r[i * T] = int32_t(offsets + 1);  // patch queries -> cls key
        r[0] = int32_t(offsets + 2);
    }
};

class RelativePositionBias {
public:
    RelativePositionBias() = default;
    RelativePositionBias(const float* table, int64_t grid_h, int64_t grid_w, int64_t heads)
        : table_(table), grid_h_(grid_h), grid_w_(grid_w), heads_(heads) {}

    // The table for a (grid_h x grid_w) patch grid, head-major: [heads, (2*grid_h-1)*(2*grid_w-1) + 3].
    Matrix table_for_grid(int64_t grid_h, int64_t grid_w) const {
        const int64_t old_rows = 2 * grid_w_ - 1, old_cols = 2 * grid_h_ - 1;  // Transformers' (old_width, old_height) view
        const int64_t old_offsets = old_rows * old_cols;
        const int64_t new_h = 2 * grid_h - 1, new_w = 2 * grid_w - 1, new_offsets = new_h * new_w;
        Matrix out(heads_, new_offsets + 3);
        if (new_h == old_rows && new_w == old_cols) {
            out = ConstMatrixMap(table_, old_offsets + 3, heads_).transpose();  // the resize is the identity here
            return out;
        }
        FeatureMap old_table{old_rows, old_cols, ConstMatrixMap(table_, old_offsets, heads_)};
        out.leftCols(new_offsets) = resize_bilinear(old_table, new_h, new_w).data.transpose();
        out.rightCols(3) = ConstMatrixMap(table_ + old_offsets * heads_, 3, heads_).transpose();
        return out;
    }

    // Additive attention bias [heads * T, T] from a head-major table and the grid's index.
    static void gather(const Matrix& table, const RelativePositionIndex& index, Matrix& bias) {
        const int64_t heads = table.rows(), T = index.tokens, R = table.cols();
        if (R != index.table_rows) throw Error("relative position bias: table and index disagree");
        bias.resize(heads * T, T);
        const int32_t* rows = index.row.data();
#pragma omp parallel for schedule(static) if (heads * T * T > kImageParallelMin)
        for (int64_t r = 0; r < heads * T; ++r) {
            const float* t = table.data() + (r / T) * R;
            const int32_t* idx = rows + (r % T) * T;
            float* dst = bias.data() + r * T;
            for (int64_t j = 0; j < T; ++j) dst[j] = t[idx[j]];
        }
    }

private:
    const float* table_ = nullptr;
    int64_t grid_h_ = 0, grid_w_ = 0, heads_ = 0;
};

}  // namespace d2v::vision
