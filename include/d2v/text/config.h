// Data2VecTextConfig: every field that changes inference (defaults = Transformers'). Training-only
// fields (dropouts, initializer_range) and chunk_size_feed_forward (same result, less memory) are not read.
#pragma once
#include "d2v/model_file.h"
#include "d2v/core/attention.h"

namespace d2v::text {

struct TextConfig {
    int64_t vocab_size = 30522, hidden_size = 768, num_hidden_layers = 12, num_attention_heads = 12,
            intermediate_size = 3072, max_position_embeddings = 512, type_vocab_size = 2;
    Activation hidden_act = Activation::Gelu;
    float layer_norm_eps = 1e-12f;
    int64_t pad_token_id = 1, bos_token_id = 0, eos_token_id = 2;
    RelativeKeyEmbedding::Mode position_embedding = RelativeKeyEmbedding::Mode::None;  // None = "absolute"
    bool is_decoder = false;
    std::vector<std::string> labels;
    std::string problem_type;  // "", "regression", "single_label_classification", "multi_label_classification"

    int64_t head_dim() const { return hidden_size / num_attention_heads; }
    int64_t num_labels() const { return int64_t(labels.size()); }
};

inline TextConfig parse_text_config(const Json& j) {
    TextConfig c;
    auto size = [&](const char* k, int64_t& v) { v = config_int(j, k, v, 1, kMaxConfigSize); };
    size("vocab_size", c.vocab_size);
    size("hidden_size", c.hidden_size);
    c.num_hidden_layers = config_int(j, "num_hidden_layers", c.num_hidden_layers, 0, kMaxConfigCount);
    size("num_attention_heads", c.num_attention_heads);
    size("intermediate_size", c.intermediate_size);
    size("max_position_embeddings", c.max_position_embeddings);
    size("type_vocab_size", c.type_vocab_size);
    c.pad_token_id = config_int(j, "pad_token_id", c.pad_token_id, 0, c.vocab_size - 1);
    // Token ids the tokenizer/generation compare against; -1 is "none" in some configs.
    c.bos_token_id = config_int(j, "bos_token_id", c.bos_token_id, -1, c.vocab_size - 1);
    c.eos_token_id = config_int(j, "eos_token_id", c.eos_token_id, -1, c.vocab_size - 1);
    c.hidden_act = parse_activation("hidden_act", config_value<std::string>(j, "hidden_act", "gelu"));
    c.layer_norm_eps = float(config_number(j, "layer_norm_eps", 1e-12, 0.0, 1e6));
    const std::string pos = config_value<std::string>(j, "position_embedding_type", "absolute");
    if (pos == "relative_key") c.position_embedding = RelativeKeyEmbedding::Mode::Key;
    else if (pos == "relative_key_query") c.position_embedding = RelativeKeyEmbedding::Mode::KeyQuery;
    else if (pos != "absolute") throw Error("config: position_embedding_type '" + pos.substr(0, 64) + "' is not supported (absolute, relative_key, relative_key_query)");
    c.is_decoder = config_value<bool>(j, "is_decoder", false);
    if (config_value<bool>(j, "add_cross_attention", false))
        throw Error("config: add_cross_attention=true (an encoder-decoder setup) is not supported");
    c.labels = read_labels(j);
    c.problem_type = config_value<std::string>(j, "problem_type", "");
    if (c.hidden_size % c.num_attention_heads != 0)
        throw Error("config: hidden_size must be a positive multiple of num_attention_heads");
    if (c.max_position_embeddings <= c.pad_token_id + 1)  // RoBERTa positions start after pad_token_id
        throw Error("config: max_position_embeddings must exceed pad_token_id + 1");
    return c;
}

}  // namespace d2v::text
