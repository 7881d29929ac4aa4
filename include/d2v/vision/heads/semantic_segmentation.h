// Data2VecVisionForSemanticSegmentation: four backbone features (out_indices) brought to four
// scales (fpn1: 4x up via two 2x2 transposed convs with BatchNorm + GELU between; fpn2: 2x up;
// fpn3: as is; fpn4: 2x max-pool), then UperNet: a pyramid pooling module (PSP, pool_scales) on the
// coarsest map, lateral 1x1 convs, top-down fusion, 3x3 FPN convs, a fused 3x3 bottleneck and a
// 1x1 classifier -> logits at 1/4 of the input resolution. The FCN auxiliary head only feeds the loss.
//
// Unlike Transformers (which reshapes features with config.image_size), the patch grid is taken
// from the input, so any input size works.
#pragma once
#include "d2v/kernels/image_ops.h"
#include "d2v/losses.h"
#include "d2v/vision/model.h"

namespace d2v::vision {

// Conv2d (no bias) + BatchNorm2d + ReLU, as Transformers' Data2VecVisionConvLayer.
class ConvBlock {
public:
    ConvBlock(const ModelFile& file, const std::string& prefix, int64_t c_out, int64_t c_in, int64_t kernel)
        : ConvBlock(file, prefix, c_out, std::vector<int64_t>{c_in}, kernel) {}

    // Input taken as channel parts of a concatenation that is never built (at 640^2 UperNet's fused
    // bottleneck input would be 315 MB): one convolution per part, summed into the output. The batch
    // norm is folded into the weights and the first part's bias, the ReLU into the last part's pass.
    ConvBlock(const ModelFile& file, const std::string& prefix, int64_t c_out, const std::vector<int64_t>& parts, int64_t kernel) {
        const BatchNorm norm(file.tensor(prefix + ".normalization.weight"), file.tensor(prefix + ".normalization.bias"),
                             file.tensor(prefix + ".normalization.running_mean"), file.tensor(prefix + ".normalization.running_var"), c_out,
                             1e-5f);
        const float* weight = file.tensor(prefix + ".convolution.weight");
        int64_t c_in = 0, first = 0;
        for (int64_t p : parts) c_in += p;
        const int64_t taps = kernel * kernel;
        for (size_t i = 0; i < parts.size(); ++i) {
            Conv2dKernel::Options options{kernel / 2, 1, norm.scale.data(), i + 1 == parts.size(), i > 0};
            options.weight_row_stride = c_in * taps;  // part i reads its input-channel slice in place
            parts_.emplace_back(weight + first * taps, i == 0 ? norm.shift.data() : nullptr, c_out, parts[i], kernel, options);
            first += parts[i];
        }
        file.release_tensor_pages(prefix + ".convolution.weight");  // the kernels hold packed copies
    }

    FeatureMap operator()(const FeatureMap& x, Matrix storage = {}) const {
        return (*this)(std::vector<const FeatureMap*>{&x}, std::move(storage));
    }
    FeatureMap operator()(const std::vector<const FeatureMap*>& inputs, Matrix storage = {}) const {
        if (inputs.size() != parts_.size()) throw Error("conv block: wrong number of input parts");
        FeatureMap y{0, 0, std::move(storage)};
        for (size_t i = 0; i < parts_.size(); ++i) add_part(i, *inputs[i], y);
        return y;
    }

    // Input part i's contribution to y, parts in order (part 0 sizes y, in the storage y.data
    // holds when that has the size): a caller can make each part just before it is used and free it after.
    void add_part(size_t i, const FeatureMap& x, FeatureMap& y) const {
        if (i == 0) {
            y.height = parts_[0].output_size(x.height), y.width = parts_[0].output_size(x.width);
            y.data.resize(y.height * y.width, parts_[0].out_channels());
        }
        if (i >= parts_.size() || parts_[i].output_size(x.height) != y.height || parts_[i].output_size(x.width) != y.width ||
            x.channels() != parts_[i].in_channels())
            throw Error("conv block: input part " + std::to_string(i) + " has the wrong shape");
        parts_[i].forward(x.data.data(), x.height, x.width, y.data.data());
    }

private:
    std::vector<Conv2dKernel> parts_;
};

class SemanticSegmentationHead {
public:
    SemanticSegmentationHead(const ModelFile& file, const VisionConfig& c) : config_(c) {
        const int64_t H = c.hidden_size, N = c.num_labels();
        if (c.out_indices.size() != 4) throw Error("config: semantic segmentation needs exactly 4 out_indices");
        for (int64_t i : c.out_indices)
            if (i < 1 || i > c.num_hidden_layers + 1) throw Error("config: out_indices must lie in 1..num_hidden_layers+1");
        const BatchNorm fpn1_norm(file.tensor("fpn1.1.weight"), file.tensor("fpn1.1.bias"), file.tensor("fpn1.1.running_mean"),
                                  file.tensor("fpn1.1.running_var"), H, 1e-5f);
        fpn1_a_ = ConvTranspose2x2(file.tensor("fpn1.0.weight"), file.tensor("fpn1.0.bias"), H, H, &fpn1_norm);  // norm folded in
        fpn1_b_ = ConvTranspose2x2(file.tensor("fpn1.3.weight"), file.tensor("fpn1.3.bias"), H, H);
        fpn2_ = ConvTranspose2x2(file.tensor("fpn2.0.weight"), file.tensor("fpn2.0.bias"), H, H);
        for (size_t i = 0; i < c.pool_scales.size(); ++i)
            psp_.emplace_back(file, "decode_head.psp_modules.blocks." + std::to_string(i) + ".conv", H, H, 1);
        psp_bottleneck_.emplace_back(file, "decode_head.psp_bottleneck", H, std::vector<int64_t>(c.pool_scales.size() + 1, H), 3);
        for (int i = 0; i < 3; ++i) {
            lateral_.emplace_back(file, "decode_head.lateral_convs." + std::to_string(i), H, H, 1);
            fpn_convs_.emplace_back(file, "decode_head.fpn_convs." + std::to_string(i), H, H, 3);
        }
        fpn_bottleneck_.emplace_back(file, "decode_head.fpn_bottleneck", H, std::vector<int64_t>(4, H), 3);
        classifier_ = Conv2d(file.tensor("decode_head.classifier.weight"), file.tensor("decode_head.classifier.bias"), N, H, 1, 0);
        if (c.use_auxiliary_head) {
            const int64_t A = c.auxiliary_channels;
            for (int64_t i = 0; i < c.auxiliary_num_convs; ++i)
                aux_convs_.emplace_back(file, "auxiliary_head.convs." + std::to_string(i), A, i == 0 ? H : A, 3);
            if (c.auxiliary_concat_input) aux_concat_.emplace_back(file, "auxiliary_head.conv_cat", A, std::vector<int64_t>{H, A}, 3);
            aux_classifier_ = Conv2d(file.tensor("auxiliary_head.classifier.weight"), file.tensor("auxiliary_head.classifier.bias"), N, A, 1, 0);
        }
        for (const char* packed : {"fpn1.0.weight", "fpn1.3.weight", "fpn2.0.weight", "decode_head.classifier.weight", "auxiliary_head.classifier.weight"})
            file.release_tensor_pages(packed);
    }

    // Logits [B, num_labels, H/4, W/4] as Transformers returns them; labels [B, H, W] give the loss.
    void apply(const VisionModelOutput& base, const NdArray* labels, NamedOutputs& out, std::vector<FeatureMap>* logit_maps = nullptr,
               bool auxiliary_logits = false) const {
        const size_t B = base.last_hidden_state.size();
        if (base.grid_height < 2 || base.grid_width < 2)
            throw Error("segmentation needs an image of at least 2x2 patches (the coarsest FPN level halves the grid)");
        if (labels && (labels->shape.size() != 3 || labels->shape[0] != int64_t(B) ||
                       labels->data.size() != size_t(labels->shape[0] * labels->shape[1] * labels->shape[2])))
            throw Error("segmentation labels must be [batch, height, width]");
        NdArray logits, aux_logits;
        CrossEntropySum main, auxiliary;  // over all labelled pixels of the batch, as Transformers averages
        for (size_t b = 0; b < B; ++b) {
            std::vector<FeatureMap> features = backbone_features(base, b);
            std::optional<FeatureMap> aux;
            if (config_.use_auxiliary_head && (labels || auxiliary_logits)) aux = auxiliary_head(features);
            FeatureMap map = uper_head(std::move(features));
            if (labels) add_item_loss(map, aux ? &*aux : nullptr, *labels, b, main, auxiliary);
            append_nchw(logits, map, B);
            if (aux && auxiliary_logits) append_nchw(aux_logits, *aux, B);
            if (logit_maps) logit_maps->push_back(std::move(map));
        }
        if (labels) {
            double loss = main.mean();
            if (config_.use_auxiliary_head) loss += config_.auxiliary_loss_weight * auxiliary.mean();
            out["loss"] = scalar_array(float(loss));
        }
        out["logits"] = std::move(logits);
        if (!aux_logits.data.empty()) out["auxiliary_logits"] = std::move(aux_logits);
    }

private:
    std::vector<FeatureMap> backbone_features(const VisionModelOutput& base, size_t b) const {
        std::vector<FeatureMap> f;
        for (int64_t index : config_.out_indices) {
            const Matrix& h = base.hidden_states[size_t(index - 1)][b];
            f.push_back(FeatureMap{base.grid_height, base.grid_width, h.bottomRows(h.rows() - 1)});
        }
        f[0] = fpn1_a_(f[0]);  // includes fpn1's batch norm
        apply_activation(Activation::Gelu, f[0].data);
        f[0] = fpn1_b_(f[0], pool_.take(4 * f[0].data.rows(), f[0].channels()));
        f[1] = fpn2_(f[1]);
        f[3] = max_pool_2x2(f[3]);
        return f;
    }

    // Takes the features to release each one when it is done (f[0] alone is 78 MB at 640^2); the
    // maps of f[0]'s size go back to pool_ for the next one and the next call.
    FeatureMap uper_head(std::vector<FeatureMap> f) const {
        const int64_t h = f[0].height, w = f[0].width, H = config_.hidden_size;
        std::vector<FeatureMap> laterals;
        for (size_t i = 0; i < 3; ++i) {
            laterals.push_back(lateral_[i](f[i], i == 0 ? pool_.take(h * w, H) : Matrix()));
            pool_.give(std::move(f[i].data));
        }
        // Pyramid pooling on the coarsest map.
        std::vector<FeatureMap> pooled;
        for (size_t i = 0; i < psp_.size(); ++i) {
            const int64_t s = config_.pool_scales[i];
            pooled.push_back(resize_bilinear(psp_[i](adaptive_avg_pool(f[3], s, s)), f[3].height, f[3].width));
        }
        std::vector<const FeatureMap*> pyramid{&f[3]};
        for (const auto& m : pooled) pyramid.push_back(&m);
        laterals.push_back(psp_bottleneck_[0](pyramid));
        pooled.clear();
        f.clear();
        // Top-down: each lateral += the next coarser one, upsampled (one pass, no upsampled copy).
        for (size_t i = laterals.size() - 1; i > 0; --i) resize_bilinear_into(laterals[i], laterals[i - 1], true);
        std::vector<FeatureMap> outs;
        for (size_t i = 0; i + 1 < laterals.size(); ++i) {
            outs.push_back(fpn_convs_[i](laterals[i], i == 0 ? pool_.take(h * w, H) : Matrix()));
            pool_.give(std::move(laterals[i].data));  // each lateral is done once its FPN conv has run
        }
        outs.push_back(std::move(laterals.back()));
        // The fused bottleneck over [outs[0], outs[1..] upsampled to outs[0]'s size], one upsampled
        // part alive at a time (at 640^2 each is 78 MB), all in one buffer.
        FeatureMap fused{0, 0, pool_.take(h * w, H)};
        fpn_bottleneck_[0].add_part(0, outs[0], fused);
        Matrix upsampled = std::move(outs[0].data);
        for (size_t i = 1; i < outs.size(); ++i) {
            FeatureMap part = resize_bilinear(outs[i], h, w, std::move(upsampled));
            fpn_bottleneck_[0].add_part(i, part, fused);
            upsampled = std::move(part.data);
            outs[i] = FeatureMap{};
        }
        pool_.give(std::move(upsampled));
        FeatureMap logits = classifier_(fused);
        pool_.give(std::move(fused.data));
        return logits;
    }

    static void append_nchw(NdArray& a, const FeatureMap& map, size_t batch) {
        if (a.shape.empty()) a.shape = {int64_t(batch), map.channels(), map.height, map.width};
        const size_t base = a.data.size();
        const int64_t C = map.channels(), P = map.data.rows();
        a.data.resize(base + size_t(C * P));
        float* dst = a.data.data() + base;
#pragma omp parallel for schedule(static) if (C * P > kImageParallelMin)
        for (int64_t c = 0; c < C; ++c)
            for (int64_t p = 0; p < P; ++p) dst[c * P + p] = map.data(p, c);
    }

    FeatureMap auxiliary_head(const std::vector<FeatureMap>& f) const {
        FeatureMap aux = f[2];
        for (const auto& conv : aux_convs_) aux = conv(aux);
        if (!aux_concat_.empty()) aux = aux_concat_[0]({&f[2], &aux});
        return aux_classifier_(aux);
    }

    // Cross-entropy of the logits upsampled (bilinear) to the label size, ignoring
    // semantic_loss_ignore_index; the FCN auxiliary head's logits likewise.
    void add_item_loss(const FeatureMap& map, const FeatureMap* aux, const NdArray& labels, size_t b, CrossEntropySum& main,
                       CrossEntropySum& auxiliary) const {
        if (labels.shape.size() != 3) throw Error("segmentation labels must be [batch, height, width]");
        const int64_t LH = labels.shape[1], LW = labels.shape[2];
        const std::vector<int64_t> all = labels_as_ids(labels);
        const std::vector<int64_t> ids(all.begin() + int64_t(b) * LH * LW, all.begin() + int64_t(b + 1) * LH * LW);
        auto add = [&](CrossEntropySum& total, const FeatureMap& logits) {
            const CrossEntropySum s = cross_entropy_sum(resize_bilinear(logits, LH, LW).data, ids, config_.semantic_loss_ignore_index);
            total.sum += s.sum;
            total.count += s.count;
        };
        add(main, map);
        if (aux) add(auxiliary, *aux);
    }

    VisionConfig config_;
    ConvTranspose2x2 fpn1_a_, fpn1_b_, fpn2_;
    mutable MatrixPool pool_;
    std::vector<ConvBlock> psp_, psp_bottleneck_, lateral_, fpn_convs_, fpn_bottleneck_, aux_convs_, aux_concat_;
    Conv2d classifier_, aux_classifier_;
};

}  // namespace d2v::vision
