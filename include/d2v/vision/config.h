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
    constexpr int64_t kMaxImageSide = int64_t(1) << 16;
    auto size = [&](const char* k, int64_t& v) { v = config_int(j, k, v, 1, kMaxConfigSize); };
    size("hidden_size", c.hidden_size);
    c.num_hidden_layers = config_int(j, "num_hidden_layers", c.num_hidden_layers, 0, kMaxConfigCount);
    size("num_attention_heads", c.num_attention_heads);
    size("intermediate_size", c.intermediate_size);
    c.num_channels = config_int(j, "num_channels", c.num_channels, 3, 3);  // RGB
    c.hidden_act = parse_activation("hidden_act", config_value<std::string>(j, "hidden_act", "gelu"));
    c.layer_norm_eps = float(config_number(j, "layer_norm_eps", 1e-12, 0.0, 1e6));
    // image_size and patch_size: an int, or an [height, width] pair.
    auto side_pair = [&](const char* k, int64_t fallback, int64_t& h, int64_t& w) {
        if (auto it = j.find(k); it != j.end() && it->is_array()) {
            const auto v = config_ints(j, k, {}, 1, kMaxImageSide);
            if (v.size() != 2) throw Error(std::string("config field '") + k + "' must be an integer or a [height, width] pair");
            h = v[0];
            w = v[1];
        } else {
            h = w = config_int(j, k, fallback, 1, kMaxImageSide);
        }
    };
    side_pair("image_size", 224, c.image_height, c.image_width);
    int64_t patch_h = 16, patch_w = 16;
    side_pair("patch_size", 16, patch_h, patch_w);
    if (patch_h != patch_w) throw Error("config: non-square patch_size is not supported");
    c.patch_size = patch_h;
    c.use_mask_token = config_value<bool>(j, "use_mask_token", false);
    c.use_absolute_position_embeddings = config_value<bool>(j, "use_absolute_position_embeddings", false);
    c.use_relative_position_bias = config_value<bool>(j, "use_relative_position_bias", false);
    c.use_shared_relative_position_bias = config_value<bool>(j, "use_shared_relative_position_bias", false);
    c.use_mean_pooling = config_value<bool>(j, "use_mean_pooling", true);
    c.layer_scale_init_value = float(config_number(j, "layer_scale_init_value", 0.1, -1e30, 1e30));
    c.out_indices = config_ints(j, "out_indices", c.out_indices, -kMaxConfigCount, kMaxConfigCount);
    c.pool_scales = config_ints(j, "pool_scales", c.pool_scales, 1, 1024);
    c.use_auxiliary_head = config_value<bool>(j, "use_auxiliary_head", true);
    c.auxiliary_concat_input = config_value<bool>(j, "auxiliary_concat_input", false);
    c.auxiliary_loss_weight = float(config_number(j, "auxiliary_loss_weight", 0.4, -1e30, 1e30));
    size("auxiliary_channels", c.auxiliary_channels);
    c.auxiliary_num_convs = config_int(j, "auxiliary_num_convs", c.auxiliary_num_convs, 0, kMaxConfigCount);
    c.semantic_loss_ignore_index = config_int(j, "semantic_loss_ignore_index", c.semantic_loss_ignore_index,
                                              std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
    c.labels = read_labels(j);
    c.problem_type = config_value<std::string>(j, "problem_type", "");
    if (c.hidden_size % c.num_attention_heads != 0)
        throw Error("config: hidden_size must be a positive multiple of num_attention_heads");
    if (c.image_height < c.patch_size || c.image_width < c.patch_size) throw Error("config: image_size must be at least patch_size");
    // Transformers collects the features in layer order, whatever order out_indices lists them in.
    std::sort(c.out_indices.begin(), c.out_indices.end());
    if (std::adjacent_find(c.out_indices.begin(), c.out_indices.end()) != c.out_indices.end())
        throw Error("config: out_indices has duplicates");
    if (c.auxiliary_num_convs == 0 && c.auxiliary_channels != c.hidden_size)
        throw Error("config: auxiliary_num_convs = 0 needs auxiliary_channels == hidden_size (as Transformers)");
    return c;
}

}  // namespace d2v::vision
