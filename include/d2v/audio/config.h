// Data2VecAudioConfig: every field that changes inference is read here (defaults = Transformers').
// Fields that only act in training (dropouts, layerdrop, SpecAugment mask_*, initializer_range) do
// not change an inference forward pass and are deliberately not read.
#pragma once
#include <map>

#include "d2v/kernels/ops.h"
#include "d2v/model_file.h"

namespace d2v::audio {

struct AudioConfig {
    int64_t hidden_size = 768, num_hidden_layers = 12, num_attention_heads = 12, intermediate_size = 3072;
    Activation hidden_act = Activation::Gelu, feat_extract_activation = Activation::Gelu;
    float layer_norm_eps = 1e-5f;
    std::vector<int64_t> conv_dim{512, 512, 512, 512, 512, 512, 512};
    std::vector<int64_t> conv_stride{5, 2, 2, 2, 2, 2, 2};
    std::vector<int64_t> conv_kernel{10, 3, 3, 3, 3, 2, 2};
    bool conv_bias = false;
    int64_t num_conv_pos_embeddings = 5, conv_pos_kernel_size = 19, num_conv_pos_embedding_groups = 16;
    // heads
    int64_t vocab_size = 32, pad_token_id = 0;
    std::string ctc_loss_reduction = "sum";
    bool ctc_zero_infinity = false;
    bool use_weighted_layer_sum = false;
    int64_t classifier_proj_size = 256;
    std::vector<int64_t> tdnn_dim{512, 512, 512, 512, 1500}, tdnn_kernel{5, 3, 3, 1, 1}, tdnn_dilation{1, 2, 3, 1, 1};
    int64_t xvector_output_dim = 512;
    std::vector<std::string> labels;  // id2label, index = class id
    // adapter
    bool add_adapter = false;
    int64_t adapter_kernel_size = 3, adapter_stride = 2, num_adapter_layers = 3, output_hidden_size = 768;

    int64_t num_labels() const { return int64_t(labels.size()); }
};

inline AudioConfig parse_audio_config(const Json& j) {
    AudioConfig c;
    constexpr int64_t kMaxKernel = int64_t(1) << 16;  // conv kernels, strides, dilations
    auto size = [&](const char* k, int64_t& v) { v = config_int(j, k, v, 1, kMaxConfigSize); };
    auto count = [&](const char* k, int64_t& v) { v = config_int(j, k, v, 0, kMaxConfigCount); };
    auto kernel = [&](const char* k, int64_t& v) { v = config_int(j, k, v, 1, kMaxKernel); };
    size("hidden_size", c.hidden_size);
    count("num_hidden_layers", c.num_hidden_layers);
    size("num_attention_heads", c.num_attention_heads);
    size("intermediate_size", c.intermediate_size);
    c.hidden_act = parse_activation("hidden_act", config_value<std::string>(j, "hidden_act", "gelu"));
    c.feat_extract_activation =
        parse_activation("feat_extract_activation", config_value<std::string>(j, "feat_extract_activation", "gelu"));
    c.layer_norm_eps = float(config_number(j, "layer_norm_eps", 1e-5, 0.0, 1e6));
    c.conv_dim = config_ints(j, "conv_dim", c.conv_dim, 1, kMaxConfigSize);
    c.conv_stride = config_ints(j, "conv_stride", c.conv_stride, 1, kMaxKernel);
    c.conv_kernel = config_ints(j, "conv_kernel", c.conv_kernel, 1, kMaxKernel);
    c.conv_bias = config_value<bool>(j, "conv_bias", false);
    count("num_conv_pos_embeddings", c.num_conv_pos_embeddings);
    kernel("conv_pos_kernel_size", c.conv_pos_kernel_size);
    size("num_conv_pos_embedding_groups", c.num_conv_pos_embedding_groups);
    size("vocab_size", c.vocab_size);
    c.pad_token_id = config_int(j, "pad_token_id", c.pad_token_id, 0, c.vocab_size - 1);  // the CTC blank
    c.ctc_loss_reduction = config_value<std::string>(j, "ctc_loss_reduction", "sum");
    c.ctc_zero_infinity = config_value<bool>(j, "ctc_zero_infinity", false);
    c.use_weighted_layer_sum = config_value<bool>(j, "use_weighted_layer_sum", false);
    size("classifier_proj_size", c.classifier_proj_size);
    c.tdnn_dim = config_ints(j, "tdnn_dim", c.tdnn_dim, 1, kMaxConfigSize);
    c.tdnn_kernel = config_ints(j, "tdnn_kernel", c.tdnn_kernel, 1, kMaxKernel);
    c.tdnn_dilation = config_ints(j, "tdnn_dilation", c.tdnn_dilation, 1, kMaxKernel);
    size("xvector_output_dim", c.xvector_output_dim);
    c.labels = read_labels(j);
    c.add_adapter = config_value<bool>(j, "add_adapter", false);
    kernel("adapter_kernel_size", c.adapter_kernel_size);
    kernel("adapter_stride", c.adapter_stride);
    count("num_adapter_layers", c.num_adapter_layers);
    c.output_hidden_size = config_int(j, "output_hidden_size", c.hidden_size, 1, kMaxConfigSize);

    // Refuse what Transformers would refuse or what cannot be computed, with the field named.
    if (c.conv_dim.empty() || c.conv_dim.size() != c.conv_stride.size() || c.conv_dim.size() != c.conv_kernel.size())
        throw Error("config: conv_dim, conv_stride and conv_kernel must have the same non-zero length");
    if (c.tdnn_dim.empty() || c.tdnn_dim.size() != c.tdnn_kernel.size() || c.tdnn_dim.size() != c.tdnn_dilation.size())
        throw Error("config: tdnn_dim, tdnn_kernel and tdnn_dilation must have the same non-zero length");
    if (c.hidden_size % c.num_attention_heads != 0)
        throw Error("config: hidden_size must be a positive multiple of num_attention_heads");
    if (c.hidden_size % c.num_conv_pos_embedding_groups != 0)
        throw Error("config: hidden_size must be divisible by num_conv_pos_embedding_groups");
    // The samples one output frame needs, (need - 1) * stride + kernel per layer from the top: bounded
    // here so that receptive_field() and the length arithmetic cannot overflow.
    int64_t need = 1;
    for (size_t i = c.conv_kernel.size(); i-- > 0;) {
        need = (need - 1) * c.conv_stride[i] + c.conv_kernel[i];
        if (need > (int64_t(1) << 40)) throw Error("config: conv_kernel / conv_stride make one frame span more than 2^40 samples");
    }
    if (c.ctc_loss_reduction != "sum" && c.ctc_loss_reduction != "mean" && c.ctc_loss_reduction != "none")
        throw Error("config: ctc_loss_reduction must be 'sum', 'mean' or 'none'");
    if (config_value<std::string>(j, "feat_extract_norm", "layer") != "layer")
        throw Error("config: data2vec-audio always uses layer norm in its feature encoder; feat_extract_norm='" +
                    config_value<std::string>(j, "feat_extract_norm", "").substr(0, 64) + "' is not supported");
    if (config_value<bool>(j, "do_stable_layer_norm", false))
        throw Error("config: do_stable_layer_norm=true is a wav2vec2 variant data2vec-audio does not have");
    return c;
}

// Output length of the conv feature encoder (and the adapter, if counted), exactly as Transformers'
// _get_feat_extract_output_lengths: floor((L - k) / s) + 1 per layer; the adapter is counted with
// kernel 1, which equals its real (kernel 3, padding 1) output length.
inline int64_t feature_length(const AudioConfig& c, int64_t samples, bool with_adapter) {
    int64_t n = samples;
    for (size_t i = 0; i < c.conv_kernel.size(); ++i) {
        // floor division as torch.div(..., rounding_mode="floor") for negative numerators too
        int64_t num = n - c.conv_kernel[i];
        n = (num >= 0 ? num / c.conv_stride[i] : -((-num + c.conv_stride[i] - 1) / c.conv_stride[i])) + 1;
    }
    if (with_adapter)
        for (int64_t i = 0; i < c.num_adapter_layers; ++i) n = (n - 1 >= 0 ? (n - 1) / c.adapter_stride : -1) + 1;
    return n;
}

// Fewest samples that give one output frame of the conv feature encoder.
inline int64_t receptive_field(const AudioConfig& c) {
    int64_t need = 1;
    for (size_t i = c.conv_kernel.size(); i-- > 0;) need = (need - 1) * c.conv_stride[i] + c.conv_kernel[i];
    return need;
}

}  // namespace d2v::audio
