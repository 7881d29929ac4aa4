// Which tensors a data2vec-text checkpoint holds (Transformers' names, backbone prefixed by the
// converter) and the shapes a config implies. The loader validates a file against this table.
#pragma once
#include "d2v/core/transformer_layer.h"
#include "d2v/text/config.h"

namespace d2v::text {

enum class TextHead { Base, MaskedLM, CausalLM, SequenceClassification, MultipleChoice, TokenClassification, QuestionAnswering };

inline TextHead parse_text_head(const std::string& model_class) {
    if (model_class == "Data2VecTextModel") return TextHead::Base;
    if (model_class == "Data2VecTextForMaskedLM") return TextHead::MaskedLM;
    if (model_class == "Data2VecTextForCausalLM") return TextHead::CausalLM;
    if (model_class == "Data2VecTextForSequenceClassification") return TextHead::SequenceClassification;
    if (model_class == "Data2VecTextForMultipleChoice") return TextHead::MultipleChoice;
    if (model_class == "Data2VecTextForTokenClassification") return TextHead::TokenClassification;
    if (model_class == "Data2VecTextForQuestionAnswering") return TextHead::QuestionAnswering;
    throw Error("unknown data2vec-text model class '" + model_class + "'");
}

namespace names {
inline const std::string kWordEmbeddings = "data2vec_text.embeddings.word_embeddings.weight";
inline const std::string kPositionEmbeddings = "data2vec_text.embeddings.position_embeddings.weight";
inline const std::string kTokenTypeEmbeddings = "data2vec_text.embeddings.token_type_embeddings.weight";
inline const std::string kEmbeddingNormWeight = "data2vec_text.embeddings.LayerNorm.weight";
inline const std::string kEmbeddingNormBias = "data2vec_text.embeddings.LayerNorm.bias";
inline const std::string kPoolerWeight = "data2vec_text.pooler.dense.weight";
inline const std::string kPoolerBias = "data2vec_text.pooler.dense.bias";
inline const std::string kLmDenseWeight = "lm_head.dense.weight", kLmDenseBias = "lm_head.dense.bias";
inline const std::string kLmNormWeight = "lm_head.layer_norm.weight", kLmNormBias = "lm_head.layer_norm.bias";
// The decoder weight is tied to the word embeddings: the converter stores the matrix once and writes
// lm_head.decoder.weight only when it differs (a checkpoint whose decoder Transformers 5 leaves untied).
inline const std::string kLmDecoderWeight = "lm_head.decoder.weight", kLmDecoderBias = "lm_head.decoder.bias";
inline const std::string kLmBias = "lm_head.bias";  // tied to lm_head.decoder.bias
inline const std::string kClassifierDenseWeight = "classifier.dense.weight", kClassifierDenseBias = "classifier.dense.bias";
inline const std::string kClassifierOutWeight = "classifier.out_proj.weight", kClassifierOutBias = "classifier.out_proj.bias";
inline const std::string kClassifierWeight = "classifier.weight", kClassifierBias = "classifier.bias";
inline const std::string kQaWeight = "qa_outputs.weight", kQaBias = "qa_outputs.bias";
}  // namespace names

inline TransformerLayerNames text_layer_names(int i) {
    const std::string p = "data2vec_text.encoder.layer." + std::to_string(i) + ".";
    TransformerLayerNames n;
    n.query_w = p + "attention.self.query.weight"; n.query_b = p + "attention.self.query.bias";
    n.key_w = p + "attention.self.key.weight";     n.key_b = p + "attention.self.key.bias";
    n.value_w = p + "attention.self.value.weight"; n.value_b = p + "attention.self.value.bias";
    n.attn_out_w = p + "attention.output.dense.weight"; n.attn_out_b = p + "attention.output.dense.bias";
    n.norm1_w = p + "attention.output.LayerNorm.weight"; n.norm1_b = p + "attention.output.LayerNorm.bias";
    n.ffn_in_w = p + "intermediate.dense.weight"; n.ffn_in_b = p + "intermediate.dense.bias";
    n.ffn_out_w = p + "output.dense.weight"; n.ffn_out_b = p + "output.dense.bias";
    n.norm2_w = p + "output.LayerNorm.weight"; n.norm2_b = p + "output.LayerNorm.bias";
    n.relative_distance = p + "attention.self.distance_embedding.weight";
    return n;
}

// has_pooler: whether the checkpoint carries pooler weights (facebook/data2vec-text-base does not).
// has_decoder_weight: whether an LM head's decoder has its own matrix (else it is the word embeddings).
inline TensorTable text_tensor_table(const TextConfig& c, TextHead head, bool has_pooler, bool has_decoder_weight = true) {
    TensorTable t;
    const int64_t H = c.hidden_size;
    t.add(names::kWordEmbeddings, {c.vocab_size, H});
    t.add(names::kPositionEmbeddings, {c.max_position_embeddings, H});
    t.add(names::kTokenTypeEmbeddings, {c.type_vocab_size, H});
    t.add(names::kEmbeddingNormWeight, {H});
    t.add(names::kEmbeddingNormBias, {H});
    const bool relative = c.position_embedding != RelativeKeyEmbedding::Mode::None;
    // The file, not the config, bounds how many layers are built (add_repeated).
    const int64_t distance_rows = relative ? 2 * c.max_position_embeddings - 1 : 0, I = c.intermediate_size, D = c.head_dim();
    t.add_repeated("num_hidden_layers", c.num_hidden_layers, [=](TensorTable& b, int64_t i) {
        add_layer_specs(b, text_layer_names(int(i)), H, I, distance_rows, D);
    });
    if (has_pooler) {
        t.add(names::kPoolerWeight, {H, H});
        t.add(names::kPoolerBias, {H});
    }
    const int64_t N = c.num_labels();
    switch (head) {
        case TextHead::Base: break;
        case TextHead::MaskedLM:
        case TextHead::CausalLM:
            t.add(names::kLmDenseWeight, {H, H});
            t.add(names::kLmDenseBias, {H});
            t.add(names::kLmNormWeight, {H});
            t.add(names::kLmNormBias, {H});
            if (has_decoder_weight) t.add(names::kLmDecoderWeight, {c.vocab_size, H});
            t.add(names::kLmDecoderBias, {c.vocab_size});
            t.allow_unused(names::kLmBias);
            break;
        case TextHead::SequenceClassification:
            t.add(names::kClassifierDenseWeight, {H, H});
            t.add(names::kClassifierDenseBias, {H});
            t.add(names::kClassifierOutWeight, {N, H});
            t.add(names::kClassifierOutBias, {N});
            break;
        case TextHead::MultipleChoice:
            t.add(names::kClassifierWeight, {1, H});
            t.add(names::kClassifierBias, {1});
            break;
        case TextHead::TokenClassification:
            t.add(names::kClassifierWeight, {N, H});
            t.add(names::kClassifierBias, {N});
            break;
        case TextHead::QuestionAnswering:
            t.add(names::kQaWeight, {N, H});
            t.add(names::kQaBias, {N});
            break;
    }
    return t;
}

}  // namespace d2v::text
