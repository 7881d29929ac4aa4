// Which tensors a data2vec-vision checkpoint holds (Transformers' names, backbone prefixed by the
// converter) and the shapes a config implies. The loader validates a file against this table.
#pragma once
#include "d2v/core/transformer_layer.h"
#include "d2v/vision/config.h"

namespace d2v::vision {

enum class VisionHead { Base, ImageClassification, SemanticSegmentation };

inline VisionHead parse_vision_head(const std::string& model_class) {
    if (model_class == "Data2VecVisionModel") return VisionHead::Base;
    if (model_class == "Data2VecVisionForImageClassification") return VisionHead::ImageClassification;
    if (model_class == "Data2VecVisionForSemanticSegmentation") return VisionHead::SemanticSegmentation;
    throw Error("unknown data2vec-vision model class '" + model_class + "'");
}

namespace names {
inline const std::string kPrefix = "data2vec_vision.";
inline const std::string kClsToken = "data2vec_vision.embeddings.cls_token";
inline const std::string kMaskToken = "data2vec_vision.embeddings.mask_token";
inline const std::string kPositionEmbeddings = "data2vec_vision.embeddings.position_embeddings";
inline const std::string kPatchWeight = "data2vec_vision.embeddings.patch_embeddings.projection.weight";
inline const std::string kPatchBias = "data2vec_vision.embeddings.patch_embeddings.projection.bias";
inline const std::string kSharedRelativeBias = "data2vec_vision.encoder.relative_position_bias.relative_position_bias_table";
inline const std::string kFinalNormWeight = "data2vec_vision.layernorm.weight", kFinalNormBias = "data2vec_vision.layernorm.bias";
inline const std::string kPoolerNormWeight = "data2vec_vision.pooler.layernorm.weight", kPoolerNormBias = "data2vec_vision.pooler.layernorm.bias";
inline const std::string kClassifierWeight = "classifier.weight", kClassifierBias = "classifier.bias";
inline std::string layer_relative_bias(int i) {
    return "data2vec_vision.encoder.layer." + std::to_string(i) + ".attention.attention.relative_position_bias.relative_position_bias_table";
}
}  // namespace names

inline TransformerLayerNames vision_layer_names(int i, bool layer_scale) {
    const std::string p = "data2vec_vision.encoder.layer." + std::to_string(i) + ".";
    TransformerLayerNames n;
    n.query_w = p + "attention.attention.query.weight"; n.query_b = p + "attention.attention.query.bias";
    n.key_w = p + "attention.attention.key.weight";  // BEiT's key projection has no bias
    n.value_w = p + "attention.attention.value.weight"; n.value_b = p + "attention.attention.value.bias";
    n.attn_out_w = p + "attention.output.dense.weight"; n.attn_out_b = p + "attention.output.dense.bias";
    n.norm1_w = p + "layernorm_before.weight"; n.norm1_b = p + "layernorm_before.bias";
    n.ffn_in_w = p + "intermediate.dense.weight"; n.ffn_in_b = p + "intermediate.dense.bias";
    n.ffn_out_w = p + "output.dense.weight"; n.ffn_out_b = p + "output.dense.bias";
    n.norm2_w = p + "layernorm_after.weight"; n.norm2_b = p + "layernorm_after.bias";
    if (layer_scale) {
        n.lambda1 = p + "lambda_1";
        n.lambda2 = p + "lambda_2";
    }
    return n;
}

// A segmentation conv block (Conv2d without bias + BatchNorm2d): `prefix` + convolution.weight / normalization.*
inline void add_conv_block(TensorTable& t, const std::string& prefix, int64_t c_out, int64_t c_in, int64_t k) {
    t.add(prefix + ".convolution.weight", {c_out, c_in, k, k});
    for (const char* leaf : {".normalization.weight", ".normalization.bias", ".normalization.running_mean", ".normalization.running_var"})
        t.add(prefix + leaf, {c_out});
    t.allow_unused(prefix + ".normalization.num_batches_tracked");
}

inline int64_t relative_bias_rows(const VisionConfig& c) { return (2 * c.grid_height() - 1) * (2 * c.grid_width() - 1) + 3; }

inline TensorTable vision_tensor_table(const VisionConfig& c, VisionHead head, bool has_pooler_norm) {
    TensorTable t;
    const auto cfg = std::make_shared<const VisionConfig>(c);  // the blocks outlive the caller's config
    const int64_t H = c.hidden_size, N = c.num_labels(), P = c.patch_size;
    t.add(names::kClsToken, {1, 1, H});
    if (c.use_mask_token) t.add(names::kMaskToken, {1, 1, H});
    else t.allow_unused(names::kMaskToken);
    if (c.use_absolute_position_embeddings) t.add(names::kPositionEmbeddings, {1, c.grid_height() * c.grid_width() + 1, H});
    t.add(names::kPatchWeight, {H, c.num_channels, P, P});
    t.add(names::kPatchBias, {H});
    if (c.use_shared_relative_position_bias) t.add(names::kSharedRelativeBias, {relative_bias_rows(c), c.num_attention_heads});
    const bool layer_scale = c.layer_scale_init_value > 0;
    // Repeated blocks go through add_repeated: the file, not the config, bounds how many are built.
    t.add_repeated("num_hidden_layers", c.num_hidden_layers, [c = cfg, H, layer_scale](TensorTable& b, int64_t i) {
        add_layer_specs(b, vision_layer_names(int(i), layer_scale), H, c->intermediate_size);
        if (c->use_relative_position_bias) b.add(names::layer_relative_bias(int(i)), {relative_bias_rows(*c), c->num_attention_heads});
    });
    if (!c.use_mean_pooling) {
        t.add(names::kFinalNormWeight, {H});
        t.add(names::kFinalNormBias, {H});
    }
    if (c.use_mean_pooling && has_pooler_norm) {
        t.add(names::kPoolerNormWeight, {H});
        t.add(names::kPoolerNormBias, {H});
    }
    switch (head) {
        case VisionHead::Base: break;
        case VisionHead::ImageClassification:
            t.add(names::kClassifierWeight, {N, H});
            t.add(names::kClassifierBias, {N});
            break;
        case VisionHead::SemanticSegmentation: {
            t.add("fpn1.0.weight", {H, H, 2, 2});
            t.add("fpn1.0.bias", {H});
            for (const char* leaf : {"fpn1.1.weight", "fpn1.1.bias", "fpn1.1.running_mean", "fpn1.1.running_var"}) t.add(leaf, {H});
            t.allow_unused("fpn1.1.num_batches_tracked");
            t.add("fpn1.3.weight", {H, H, 2, 2});
            t.add("fpn1.3.bias", {H});
            t.add("fpn2.0.weight", {H, H, 2, 2});
            t.add("fpn2.0.bias", {H});
            const int64_t S = int64_t(c.pool_scales.size());
            t.add_repeated("pool_scales", S, [H](TensorTable& b, int64_t i) {
                add_conv_block(b, "decode_head.psp_modules.blocks." + std::to_string(i) + ".conv", H, H, 1);
            });
            add_conv_block(t, "decode_head.psp_bottleneck", H, H + S * H, 3);
            for (int i = 0; i < 3; ++i) {
                add_conv_block(t, "decode_head.lateral_convs." + std::to_string(i), H, H, 1);
                add_conv_block(t, "decode_head.fpn_convs." + std::to_string(i), H, H, 3);
            }
            add_conv_block(t, "decode_head.fpn_bottleneck", H, 4 * H, 3);
            t.add("decode_head.classifier.weight", {N, H, 1, 1});
            t.add("decode_head.classifier.bias", {N});
            if (c.use_auxiliary_head) {
                const int64_t A = c.auxiliary_channels;
                t.add_repeated("auxiliary_num_convs", c.auxiliary_num_convs, [A, H](TensorTable& b, int64_t i) {
                    add_conv_block(b, "auxiliary_head.convs." + std::to_string(i), A, i == 0 ? H : A, 3);
                });
                if (c.auxiliary_concat_input) add_conv_block(t, "auxiliary_head.conv_cat", A, H + A, 3);
                t.add("auxiliary_head.classifier.weight", {N, A, 1, 1});
                t.add("auxiliary_head.classifier.bias", {N});
            }
            break;
        }
    }
    return t;
}

}  // namespace d2v::vision
