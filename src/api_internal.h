// What the compiled facade (d2v.hpp, d2v.h) shares between its files: the loaded pipeline of each
// modality behind Model, and the helpers that turn pipeline outputs into facade types. The
// pipelines are only forward-declared so each modality's file compiles only its own model code.
#pragma once
#include "d2v/d2v.hpp"
#include "d2v/ndarray.h"

namespace d2v::audio { class AudioPipeline; }
namespace d2v::text { class TextPipeline; }
namespace d2v::vision { class VisionPipeline; }

namespace d2v {

struct Model::Impl {
    Modality modality = Modality::Audio;
    std::string model_class;
    int64_t sampling_rate = 0;
    std::vector<std::string> labels;
    std::shared_ptr<const audio::AudioPipeline> audio;
    std::shared_ptr<const text::TextPipeline> text;
    std::shared_ptr<const vision::VisionPipeline> vision;
};

namespace api {

// One loader per modality (api_audio.cpp, api_text.cpp, api_vision.cpp), each filling the Impl.
void load_audio(const std::string& path, Model::Impl& impl);
void load_text(const std::string& path, Model::Impl& impl);
void load_vision(const std::string& path, Model::Impl& impl);

Result run_audio(const Model::Impl& impl, const std::vector<std::vector<float>>& waves, const AudioOptions& options,
                 const std::vector<std::string>* names);
Result run_text(const Model::Impl& impl, const TextInput& input, const TextOptions& options);
Result run_images(const Model::Impl& impl, const std::vector<RgbImage>& images, const VisionOptions& options);

// Pipeline outputs -> facade arrays (copies: the facade owns its results).
inline Outputs to_outputs(const NamedOutputs& named) {
    Outputs out;
    for (const auto& [name, a] : named) out[name] = Array{a.shape, a.data, a.is_integer};
    return out;
}

// The k best entries of `scores` (already probabilities), best first, ties in id order.
std::vector<Label> top_labels(const std::vector<float>& scores, int k, const std::vector<std::string>& names);
// Softmax of a row of logits.
std::vector<float> softmax(const float* logits, int64_t n);

}  // namespace api
}  // namespace d2v
