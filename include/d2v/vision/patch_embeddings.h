// The vision front end: non-overlapping patch projection (Conv2d with kernel = stride = patch size),
// optional mask token for masked patches, the CLS token, and optional absolute position embeddings
// (bicubically resized whenever the patch grid differs from the trained one or the image is not
// square — Transformers does this regardless of interpolate_pos_encoding).
#pragma once
#include "d2v/kernels/image_ops.h"
#include "d2v/vision/tensor_names.h"

namespace d2v::vision {

class PatchEmbeddings {
public:
    PatchEmbeddings(const ModelFile& file, const VisionConfig& c)
        : config_(c),
          projection_(load_linear(file, names::kPatchWeight, names::kPatchBias, c.hidden_size, c.num_channels * c.patch_size * c.patch_size)),
          cls_(file.tensor(names::kClsToken)),
          mask_(c.use_mask_token ? file.tensor(names::kMaskToken) : nullptr),
          positions_(c.use_absolute_position_embeddings ? file.tensor(names::kPositionEmbeddings) : nullptr) {}

    // pixels: [3, H, W] CHW; masked (optional): one flag per patch. Returns [1 + patches, hidden].
    Matrix forward(const float* pixels, int64_t height, int64_t width, const std::vector<bool>* masked) const {
        const int64_t P = config_.patch_size, C = config_.num_channels, gh = height / P, gw = width / P, N = gh * gw;
        if (gh < 1 || gw < 1) throw Error("image of " + std::to_string(width) + "x" + std::to_string(height) + " is smaller than one patch");
        Matrix patches(N, C * P * P);  // PyTorch's (channel, y, x) order inside a patch = the conv weight's order
#pragma omp parallel for schedule(static) if (patches.size() > kImageParallelMin)
        for (int64_t py = 0; py < gh; ++py)
            for (int64_t px = 0; px < gw; ++px)
                for (int64_t c = 0; c < C; ++c)
                    for (int64_t y = 0; y < P; ++y)
                        std::memcpy(&patches(py * gw + px, (c * P + y) * P), pixels + (c * height + py * P + y) * width + px * P,
                                    sizeof(float) * size_t(P));
        const Matrix projected = projection_(patches);
        Matrix out(N + 1, config_.hidden_size);
        out.row(0) = ConstRowVectorMap(cls_, config_.hidden_size);
        out.bottomRows(N) = projected;
        if (masked) {
            if (!mask_) throw Error("bool_masked_pos given but the model has no mask token (use_mask_token=false)");
            if (int64_t(masked->size()) != N) throw Error("bool_masked_pos must have one flag per patch");
            for (int64_t i = 0; i < N; ++i)
                if ((*masked)[size_t(i)]) out.row(i + 1) = ConstRowVectorMap(mask_, config_.hidden_size);
        }
        if (positions_) out += position_embeddings(gh, gw, height == width);
        return out;
    }

private:
    Matrix position_embeddings(int64_t gh, int64_t gw, bool square_image) const {
        const int64_t H = config_.hidden_size, trained = config_.grid_height() * config_.grid_width();
        const ConstMatrixMap table(positions_, trained + 1, H);
        if (gh * gw == trained && square_image) return table;
        // Transformers assumes the trained grid is square (sqrt of the position count).
        const int64_t side = int64_t(std::lround(std::sqrt(double(trained))));
        if (side * side != trained) throw Error("cannot interpolate position embeddings of a non-square trained grid");
        const FeatureMap grid{side, side, table.bottomRows(trained)};
        const FeatureMap resized = resize_bicubic(grid, gh, gw);
        Matrix out(gh * gw + 1, H);
        out.row(0) = table.row(0);
        out.bottomRows(gh * gw) = resized.data;
        return out;
    }

    VisionConfig config_;
    Linear projection_;
    const float *cls_, *mask_, *positions_;
};

}  // namespace d2v::vision
