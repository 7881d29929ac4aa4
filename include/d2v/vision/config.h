// Data2VecVisionConfig: every field that changes inference (defaults = Transformers'). Training-only
// fields (dropouts, drop_path_rate, initializer_range) do not change an inference pass.
#pragma once
#include <algorithm>

#include "d2v/kernels/ops.h"
#include "d2v/model_file.h"

namespace d2v::vision {

struct VisionConfig {
    int64_t hidden_size = 768, num_hidden_layers = 12, num_attention_heads = 12, intermediate_size = 3072;
    Activation hidden_act = Activation::Gelu;
    float layer_norm_eps = 1e-12f;
    int64_t image_height = 224, image_width = 224, patch_size = 16, num_channels = 3;
    bool use_mask_token = false, use_absolute_position_embeddings = false, use_relative_position_bias = false,
         use_shared_relative_position_bias = false, use_mean_pooling = true;
    float layer_scale_init_value = 0.1f;
    std::vector<int64_t> out_indices{3, 5, 7, 11}, pool_scales{1, 2, 3, 6};
    bool use_auxiliary_head = true, auxiliary_concat_input = false;
    float auxiliary_loss_weight = 0.4f;
    int64_t auxiliary_channels = 256, auxiliary_num_convs = 1, semantic_loss_ignore_index = 255;
    std::vector<std::string> labels;
    std::string problem_type;

    int64_t grid_height() const { return image_height / patch_size; }
    int64_t grid_width() const { return image_width / patch_size; }
    int64_t num_labels() const { return int64_t(labels.size()); }
};

inline VisionConfig parse_vision_config(const Json& j) {
    VisionConfig c;
    auto get_int = [&](const char* k, int64_t& v) { v = config_value<int64_t>(j, k, v); };
    get_int("hidden_size", c.hidden_size);
    get_int("num_hidden_layers", c.num_hidden_layers);
    get_int("num_attention_heads", c.num_attention_heads);
    get_int("intermediate_size", c.intermediate_size);
    get_int("num_channels", c.num_channels);
    c.hidden_act = parse_activation(config_value<std::string>(j, "hidden_act", "gelu"));
    c.layer_norm_eps = float(config_value<double>(j, "layer_norm_eps", 1e-12));
    if (auto it = j.find("image_size"); it != j.end() && it->is_array() && it->size() == 2) {
        c.image_height = (*it)[0].get<int64_t>();
        c.image_width = (*it)[1].get<int64_t>();
    } else {
        c.image_height = c.image_width = config_value<int64_t>(j, "image_size", 224);
    }
    if (auto it = j.find("patch_size"); it != j.end() && it->is_array()) {
        if (it->size() != 2 || (*it)[0] != (*it)[1]) throw Error("config: non-square patch_size is not supported");
        c.patch_size = (*it)[0].get<int64_t>();
    } else {
        get_int("patch_size", c.patch_size);
    }
    c.use_mask_token = config_value<bool>(j, "use_mask_token", false);
    c.use_absolute_position_embeddings = config_value<bool>(j, "use_absolute_position_embeddings", false);
    c.use_relative_position_bias = config_value<bool>(j, "use_relative_position_bias", false);
    c.use_shared_relative_position_bias = config_value<bool>(j, "use_shared_relative_position_bias", false);
    c.use_mean_pooling = config_value<bool>(j, "use_mean_pooling", true);
    c.layer_scale_init_value = float(config_value<double>(j, "layer_scale_init_value", 0.1));
    c.out_indices = config_value<std::vector<int64_t>>(j, "out_indices", c.out_indices);
    c.pool_scales = config_value<std::vector<int64_t>>(j, "pool_scales", c.pool_scales);
    c.use_auxiliary_head = config_value<bool>(j, "use_auxiliary_head", true);
    c.auxiliary_concat_input = config_value<bool>(j, "auxiliary_concat_input", false);
    c.auxiliary_loss_weight = float(config_value<double>(j, "auxiliary_loss_weight", 0.4));
    get_int("auxiliary_channels", c.auxiliary_channels);
    get_int("auxiliary_num_convs", c.auxiliary_num_convs);
    get_int("semantic_loss_ignore_index", c.semantic_loss_ignore_index);
    c.labels = read_labels(j);
    c.problem_type = config_value<std::string>(j, "problem_type", "");
    if (c.hidden_size <= 0 || c.num_attention_heads <= 0 || c.hidden_size % c.num_attention_heads != 0)
        throw Error("config: hidden_size must be a positive multiple of num_attention_heads");
    if (c.patch_size <= 0 || c.image_height < c.patch_size || c.image_width < c.patch_size)
        throw Error("config: image_size must be at least patch_size");
    if (c.num_channels != 3) throw Error("config: num_channels must be 3 (RGB)");
    if (c.num_hidden_layers < 0 || c.num_hidden_layers > kMaxConfigCount || c.intermediate_size <= 0 ||
        c.image_height > (int64_t(1) << 16) || c.image_width > (int64_t(1) << 16))
        throw Error("config: num_hidden_layers / intermediate_size / image_size out of range");
    for (int64_t s : c.pool_scales)
        if (s < 1 || s > 1024) throw Error("config: pool_scales must be between 1 and 1024");
    // Transformers collects the features in layer order, whatever order out_indices lists them in.
    std::sort(c.out_indices.begin(), c.out_indices.end());
    if (std::adjacent_find(c.out_indices.begin(), c.out_indices.end()) != c.out_indices.end())
        throw Error("config: out_indices has duplicates");
    if (c.auxiliary_num_convs < 0 || c.auxiliary_num_convs > kMaxConfigCount ||
        (c.auxiliary_num_convs == 0 && c.auxiliary_channels != c.hidden_size))
        throw Error("config: auxiliary_num_convs = 0 needs auxiliary_channels == hidden_size (as Transformers)");
    return c;
}

}  // namespace d2v::vision
