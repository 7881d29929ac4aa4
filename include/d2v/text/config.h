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
    auto get_int = [&](const char* k, int64_t& v) { v = config_value<int64_t>(j, k, v); };
    get_int("vocab_size", c.vocab_size);
    get_int("hidden_size", c.hidden_size);
    get_int("num_hidden_layers", c.num_hidden_layers);
    get_int("num_attention_heads", c.num_attention_heads);
    get_int("intermediate_size", c.intermediate_size);
    get_int("max_position_embeddings", c.max_position_embeddings);
    get_int("type_vocab_size", c.type_vocab_size);
    get_int("pad_token_id", c.pad_token_id);
    get_int("bos_token_id", c.bos_token_id);
    get_int("eos_token_id", c.eos_token_id);
    c.hidden_act = parse_activation(config_value<std::string>(j, "hidden_act", "gelu"));
    c.layer_norm_eps = float(config_value<double>(j, "layer_norm_eps", 1e-12));
    const std::string pos = config_value<std::string>(j, "position_embedding_type", "absolute");
    if (pos == "relative_key") c.position_embedding = RelativeKeyEmbedding::Mode::Key;
    else if (pos == "relative_key_query") c.position_embedding = RelativeKeyEmbedding::Mode::KeyQuery;
    else if (pos != "absolute") throw Error("config: position_embedding_type '" + pos + "' is not supported (absolute, relative_key, relative_key_query)");
    c.is_decoder = config_value<bool>(j, "is_decoder", false);
    if (config_value<bool>(j, "add_cross_attention", false))
        throw Error("config: add_cross_attention=true (an encoder-decoder setup) is not supported");
    c.labels = read_labels(j);
    c.problem_type = config_value<std::string>(j, "problem_type", "");
    if (c.hidden_size <= 0 || c.num_attention_heads <= 0 || c.hidden_size % c.num_attention_heads != 0)
        throw Error("config: hidden_size must be a positive multiple of num_attention_heads");
    if (c.pad_token_id < 0 || c.pad_token_id >= c.vocab_size) throw Error("config: pad_token_id outside the vocabulary");
    if (c.num_hidden_layers < 0 || c.num_hidden_layers > kMaxConfigCount || c.intermediate_size <= 0 ||
        c.max_position_embeddings <= c.pad_token_id + 1 || c.max_position_embeddings > kMaxConfigCount || c.type_vocab_size < 1)
        throw Error("config: num_hidden_layers / intermediate_size / max_position_embeddings / type_vocab_size out of range");
    return c;
}

}  // namespace d2v::text
