// Which tensors a data2vec-audio checkpoint holds: one table of names (Transformers' state-dict
// names, with the backbone prefix the converter guarantees) and the shapes a config implies.
// The loader validates a file against exactly this table.
#pragma once
#include <cstdio>

#include "d2v/audio/config.h"
#include "d2v/core/transformer_layer.h"

namespace d2v::audio {

enum class AudioHead { Base, CTC, SequenceClassification, FrameClassification, XVector };

inline AudioHead parse_audio_head(const std::string& model_class) {
    if (model_class == "Data2VecAudioModel") return AudioHead::Base;
    if (model_class == "Data2VecAudioForCTC") return AudioHead::CTC;
    if (model_class == "Data2VecAudioForSequenceClassification") return AudioHead::SequenceClassification;
    if (model_class == "Data2VecAudioForAudioFrameClassification") return AudioHead::FrameClassification;
    if (model_class == "Data2VecAudioForXVector") return AudioHead::XVector;
    throw Error("unknown data2vec-audio model class '" + model_class + "'");
}

enum class T {
    ConvWeight, ConvBias, ConvNormWeight, ConvNormBias,
    ProjectionNormWeight, ProjectionNormBias, ProjectionWeight, ProjectionBias,
    PosConvWeight, PosConvBias, EncoderNormWeight, EncoderNormBias,
    AdapterProjWeight, AdapterProjBias, AdapterProjNormWeight, AdapterProjNormBias, AdapterConvWeight, AdapterConvBias,
    MaskedSpecEmbed,
    LayerWeights, LmHeadWeight, LmHeadBias, ProjectorWeight, ProjectorBias, ClassifierWeight, ClassifierBias,
    TdnnWeight, TdnnBias, XvectorFeatureWeight, XvectorFeatureBias, AmSoftmaxWeight,
};

inline const char* pattern(T t) {
    switch (t) {
        case T::ConvWeight: return "data2vec_audio.feature_extractor.conv_layers.%d.conv.weight";
        case T::ConvBias: return "data2vec_audio.feature_extractor.conv_layers.%d.conv.bias";
        case T::ConvNormWeight: return "data2vec_audio.feature_extractor.conv_layers.%d.layer_norm.weight";
        case T::ConvNormBias: return "data2vec_audio.feature_extractor.conv_layers.%d.layer_norm.bias";
        case T::ProjectionNormWeight: return "data2vec_audio.feature_projection.layer_norm.weight";
        case T::ProjectionNormBias: return "data2vec_audio.feature_projection.layer_norm.bias";
        case T::ProjectionWeight: return "data2vec_audio.feature_projection.projection.weight";
        case T::ProjectionBias: return "data2vec_audio.feature_projection.projection.bias";
        case T::PosConvWeight: return "data2vec_audio.encoder.pos_conv_embed.layers.%d.conv.weight";
        case T::PosConvBias: return "data2vec_audio.encoder.pos_conv_embed.layers.%d.conv.bias";
        case T::EncoderNormWeight: return "data2vec_audio.encoder.layer_norm.weight";
        case T::EncoderNormBias: return "data2vec_audio.encoder.layer_norm.bias";
        case T::AdapterProjWeight: return "data2vec_audio.adapter.proj.weight";
        case T::AdapterProjBias: return "data2vec_audio.adapter.proj.bias";
        case T::AdapterProjNormWeight: return "data2vec_audio.adapter.proj_layer_norm.weight";
        case T::AdapterProjNormBias: return "data2vec_audio.adapter.proj_layer_norm.bias";
        case T::AdapterConvWeight: return "data2vec_audio.adapter.layers.%d.conv.weight";
        case T::AdapterConvBias: return "data2vec_audio.adapter.layers.%d.conv.bias";
        case T::MaskedSpecEmbed: return "data2vec_audio.masked_spec_embed";
        case T::LayerWeights: return "layer_weights";
        case T::LmHeadWeight: return "lm_head.weight";
        case T::LmHeadBias: return "lm_head.bias";
        case T::ProjectorWeight: return "projector.weight";
        case T::ProjectorBias: return "projector.bias";
        case T::ClassifierWeight: return "classifier.weight";
        case T::ClassifierBias: return "classifier.bias";
        case T::TdnnWeight: return "tdnn.%d.kernel.weight";
        case T::TdnnBias: return "tdnn.%d.kernel.bias";
        case T::XvectorFeatureWeight: return "feature_extractor.weight";
        case T::XvectorFeatureBias: return "feature_extractor.bias";
        case T::AmSoftmaxWeight: return "objective.weight";
    }
    return "";
}

inline std::string name(T t, int index = 0) {
    char buf[160];
    std::snprintf(buf, sizeof buf, pattern(t), index);
    return buf;
}

inline TransformerLayerNames encoder_layer_names(int i) {
    const std::string p = "data2vec_audio.encoder.layers." + std::to_string(i) + ".";
    TransformerLayerNames n;
    n.query_w = p + "attention.q_proj.weight"; n.query_b = p + "attention.q_proj.bias";
    n.key_w = p + "attention.k_proj.weight";   n.key_b = p + "attention.k_proj.bias";
    n.value_w = p + "attention.v_proj.weight"; n.value_b = p + "attention.v_proj.bias";
    n.attn_out_w = p + "attention.out_proj.weight"; n.attn_out_b = p + "attention.out_proj.bias";
    n.norm1_w = p + "layer_norm.weight"; n.norm1_b = p + "layer_norm.bias";
    n.ffn_in_w = p + "feed_forward.intermediate_dense.weight"; n.ffn_in_b = p + "feed_forward.intermediate_dense.bias";
    n.ffn_out_w = p + "feed_forward.output_dense.weight"; n.ffn_out_b = p + "feed_forward.output_dense.bias";
    n.norm2_w = p + "final_layer_norm.weight"; n.norm2_b = p + "final_layer_norm.bias";
    return n;
}

inline TensorTable audio_tensor_table(const AudioConfig& c, AudioHead head) {
    TensorTable t;
    const auto cfg = std::make_shared<const AudioConfig>(c);  // the blocks outlive the caller's config
    const int64_t H = c.hidden_size;
    // Repeated blocks go through add_repeated: the file, not the config, bounds how many are built.
    t.add_repeated("conv_dim", int64_t(c.conv_dim.size()), [c = cfg](TensorTable& b, int64_t i) {
        const int64_t c_in = i == 0 ? 1 : c->conv_dim[i - 1], c_out = c->conv_dim[i];
        b.add(name(T::ConvWeight, int(i)), {c_out, c_in, c->conv_kernel[i]});
        if (c->conv_bias) b.add(name(T::ConvBias, int(i)), {c_out});
        b.add(name(T::ConvNormWeight, int(i)), {c_out});
        b.add(name(T::ConvNormBias, int(i)), {c_out});
    });
    const int64_t C = c.conv_dim.back();
    t.add(name(T::ProjectionNormWeight), {C});
    t.add(name(T::ProjectionNormBias), {C});
    t.add(name(T::ProjectionWeight), {H, C});
    t.add(name(T::ProjectionBias), {H});
    t.add_repeated("num_conv_pos_embeddings", c.num_conv_pos_embeddings, [c = cfg, H](TensorTable& b, int64_t i) {
        b.add(name(T::PosConvWeight, int(i)), {H, H / c->num_conv_pos_embedding_groups, c->conv_pos_kernel_size});
        b.add(name(T::PosConvBias, int(i)), {H});
    });
    t.add(name(T::EncoderNormWeight), {H});
    t.add(name(T::EncoderNormBias), {H});
    t.add_repeated("num_hidden_layers", c.num_hidden_layers, [c = cfg, H](TensorTable& b, int64_t i) {
        add_layer_specs(b, encoder_layer_names(int(i)), H, c->intermediate_size);
    });
    if (c.add_adapter) {
        const int64_t O = c.output_hidden_size;
        if (O != H) {
            t.add(name(T::AdapterProjWeight), {O, H});
            t.add(name(T::AdapterProjBias), {O});
            t.add(name(T::AdapterProjNormWeight), {O});
            t.add(name(T::AdapterProjNormBias), {O});
        }
        t.add_repeated("num_adapter_layers", c.num_adapter_layers, [c = cfg, O](TensorTable& b, int64_t i) {
            b.add(name(T::AdapterConvWeight, int(i)), {2 * O, O, c->adapter_kernel_size});
            b.add(name(T::AdapterConvBias, int(i)), {2 * O});
        });
    }
    t.allow_unused(name(T::MaskedSpecEmbed));  // SpecAugment, training only

    const int64_t L = c.num_hidden_layers + 1;
    const int64_t N = c.num_labels();
    const bool weighted = c.use_weighted_layer_sum && head != AudioHead::Base && head != AudioHead::CTC;
    if (weighted) t.add(name(T::LayerWeights), {L});
    switch (head) {
        case AudioHead::Base: break;
        case AudioHead::CTC:
            t.add(name(T::LmHeadWeight), {c.vocab_size, c.add_adapter ? c.output_hidden_size : H});
            t.add(name(T::LmHeadBias), {c.vocab_size});
            break;
        case AudioHead::SequenceClassification:
            t.add(name(T::ProjectorWeight), {c.classifier_proj_size, H});
            t.add(name(T::ProjectorBias), {c.classifier_proj_size});
            t.add(name(T::ClassifierWeight), {N, c.classifier_proj_size});
            t.add(name(T::ClassifierBias), {N});
            break;
        case AudioHead::FrameClassification:
            t.add(name(T::ClassifierWeight), {N, H});
            t.add(name(T::ClassifierBias), {N});
            break;
        case AudioHead::XVector: {
            t.add(name(T::ProjectorWeight), {c.tdnn_dim[0], H});
            t.add(name(T::ProjectorBias), {c.tdnn_dim[0]});
            t.add_repeated("tdnn_dim", int64_t(c.tdnn_dim.size()), [c = cfg](TensorTable& b, int64_t i) {
                const int64_t in = i == 0 ? c->tdnn_dim[0] : c->tdnn_dim[i - 1];
                b.add(name(T::TdnnWeight, int(i)), {c->tdnn_dim[i], in * c->tdnn_kernel[i]});
                b.add(name(T::TdnnBias, int(i)), {c->tdnn_dim[i]});
            });
            t.add(name(T::XvectorFeatureWeight), {c.xvector_output_dim, 2 * c.tdnn_dim.back()});
            t.add(name(T::XvectorFeatureBias), {c.xvector_output_dim});
            t.add(name(T::ClassifierWeight), {c.xvector_output_dim, c.xvector_output_dim});
            t.add(name(T::ClassifierBias), {c.xvector_output_dim});
            t.add(name(T::AmSoftmaxWeight), {c.xvector_output_dim, N});
            break;
        }
    }
    return t;
}

}  // namespace d2v::audio
