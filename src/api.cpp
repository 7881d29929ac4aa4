// The facade's Model: picks the modality from the file, then hands each call to that modality's
// file (api_audio.cpp, api_text.cpp, api_vision.cpp).
#include <algorithm>
#include <cmath>

#include "api_internal.h"
#include "d2v/audio/audio_io.h"
#include "d2v/kernels/ops.h"
#include "d2v/model_file.h"
#include "d2v/vision/image_io.h"

namespace d2v {

Model::Model(const std::string& path) : impl_(std::make_unique<Impl>()) {
    const std::string architecture = ModelFile(path).architecture();  // the header only: the file is mapped, not read
    if (architecture == "data2vec-audio") api::load_audio(path, *impl_);
    else if (architecture == "data2vec-text") api::load_text(path, *impl_);
    else if (architecture == "data2vec-vision") api::load_vision(path, *impl_);
    else throw Error(path + " holds a '" + architecture + "' model, not data2vec-audio, -text or -vision");
}

Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

Modality Model::modality() const { return impl_->modality; }
const std::string& Model::model_class() const { return impl_->model_class; }
int64_t Model::sampling_rate() const { return impl_->sampling_rate; }
const std::vector<std::string>& Model::labels() const { return impl_->labels; }

namespace {
void require(const Model::Impl& impl, Modality wanted, const char* call) {
    static const char* const kNames[] = {"an audio", "a text", "a vision"};
    if (impl.modality != wanted)
        throw Error(std::string(call) + ": " + impl.model_class + " is " + kNames[int(impl.modality)] + " model, not " +
                    kNames[int(wanted)] + " model");
}
}  // namespace

Result Model::run_audio(const std::vector<std::vector<float>>& waves, const AudioOptions& options) const {
    require(*impl_, Modality::Audio, "run_audio");
    return api::run_audio(*impl_, waves, options, nullptr);
}

Result Model::run_audio_files(const std::vector<std::string>& paths, const AudioOptions& options) const {
    require(*impl_, Modality::Audio, "run_audio_files");
    std::vector<std::vector<float>> waves;
    std::vector<std::string> notes;
    for (const auto& path : paths) {
        audio::DecodedAudio decoded = audio::read_audio(path, impl_->sampling_rate);
        if (decoded.samples.empty()) throw Error(path + ": audio contains no samples");
        if (!decoded.notes.empty()) notes.push_back(path + ": " + decoded.notes);
        waves.push_back(std::move(decoded.samples));
    }
    Result r = api::run_audio(*impl_, waves, options, &paths);
    r.notes.insert(r.notes.begin(), notes.begin(), notes.end());
    return r;
}

Result Model::run_text(const TextInput& input, const TextOptions& options) const {
    require(*impl_, Modality::Text, "run_text");
    return api::run_text(*impl_, input, options);
}

Result Model::run_images(const std::vector<RgbImage>& images, const VisionOptions& options) const {
    require(*impl_, Modality::Vision, "run_images");
    return api::run_images(*impl_, images, options);
}

Result Model::run_image_files(const std::vector<std::string>& paths, const VisionOptions& options) const {
    require(*impl_, Modality::Vision, "run_image_files");
    std::vector<RgbImage> images;
    for (const auto& p : paths) images.push_back(read_image(p));
    return api::run_images(*impl_, images, options);
}

RgbImage read_image(const std::string& path) {
    vision::Image img = vision::read_image(path);
    return RgbImage{img.width, img.height, std::move(img.rgb)};
}

namespace api {

std::vector<float> softmax(const float* logits, int64_t n) {
    std::vector<float> p(logits, logits + n);
    softmax_inplace(p.data(), n);
    return p;
}

std::vector<Label> top_labels(const std::vector<float>& scores, int k, const std::vector<std::string>& names) {
    std::vector<int64_t> order(scores.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = int64_t(i);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return scores[size_t(a)] > scores[size_t(b)]; });
    order.resize(std::min(order.size(), size_t(std::max(k, 0))));
    std::vector<Label> out;
    for (int64_t id : order)
        out.push_back({size_t(id) < names.size() ? names[size_t(id)] : std::to_string(id), id, scores[size_t(id)]});
    return out;
}

}  // namespace api
}  // namespace d2v
