// The facade's vision side: images through VisionPipeline; top-k labels, or the segmentation map
// at each image's own size (logits upsampled bilinearly, then argmax per pixel, as the CLI does).
#include "api_internal.h"
#include "d2v/vision/pipeline.h"

namespace d2v::api {

using namespace d2v::vision;

void load_vision(const std::string& path, Model::Impl& impl) {
    auto pipe = std::make_shared<const VisionPipeline>(path, "d2v");
    impl.modality = Modality::Vision;
    impl.model_class = pipe->file().model_class();
    impl.labels = pipe->config().labels;
    impl.vision = std::move(pipe);
}

Result run_images(const Model::Impl& impl, const std::vector<RgbImage>& inputs, const VisionOptions& options) {
    const VisionPipeline& pipe = *impl.vision;
    std::vector<Image> images;
    for (const auto& in : inputs) {
        if (in.width <= 0 || in.height <= 0 || in.width > kDefaultMaxPixels / in.height ||
            in.rgb.size() != size_t(in.width * in.height * 3))
            throw Error("image of " + std::to_string(in.width) + " x " + std::to_string(in.height) + " pixels needs " +
                        "width * height * 3 RGB bytes (and at most " + std::to_string(kDefaultMaxPixels) + " pixels); got " +
                        std::to_string(in.rgb.size()) + " bytes");
        images.push_back(Image{in.width, in.height, in.rgb});
    }
    const VisionBatch batch = pipe.prepare(images);
    std::vector<FeatureMap> maps;
    const NamedOutputs out = pipe.run(batch, {options.hidden_states, options.attentions}, nullptr, &maps);

    Result r;
    r.outputs = to_outputs(out);
    r.outputs["pixel_values"] = Array{batch.pixel_values.shape, batch.pixel_values.data, false};
    r.items.resize(images.size());
    for (size_t b = 0; b < images.size(); ++b) {
        Item& item = r.items[b];
        if (pipe.head() == VisionHead::ImageClassification) {
            const auto& logits = out.at("logits");
            const int64_t C = logits.shape[1];
            item.labels = top_labels(softmax(logits.data.data() + int64_t(b) * C, C), options.top_k, pipe.config().labels);
        } else if (pipe.head() == VisionHead::SemanticSegmentation) {
            const FeatureMap full = resize_bilinear(maps[b], images[b].height, images[b].width);
            item.mask = ClassMap{images[b].width, images[b].height, std::vector<int32_t>(size_t(full.data.rows()))};
            for (int64_t p = 0; p < full.data.rows(); ++p) {
                Eigen::Index id;
                full.data.row(p).maxCoeff(&id);
                item.mask.ids[size_t(p)] = int32_t(id);
            }
        }
    }
    return r;
}

}  // namespace d2v::api
