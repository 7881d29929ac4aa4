// Loading a data2vec-vision model file (weights + packed BeitImageProcessor config) and running the
// head it holds.
//
//   d2v::vision::VisionPipeline pipe("model.gguf");
//   auto batch = pipe.prepare({d2v::vision::read_image("cat.png")});
//   d2v::NamedOutputs out = pipe.run(batch);          // out["logits"], ...
#pragma once
#include "d2v/vision/heads/image_classification.h"
#include "d2v/vision/heads/semantic_segmentation.h"
#include "d2v/vision/image_processor.h"

namespace d2v::vision {

class VisionPipeline {
public:
    explicit VisionPipeline(const std::string& path, const std::string& program = "this program")
        : file_(std::make_shared<const ModelFile>(path)) {
        file_->require_architecture("data2vec-vision", program);
        head_kind_ = parse_vision_head(file_->model_class());
        config_ = parse_vision_config(file_->config());
        processor_ = parse_image_processor(file_->preprocessor());
        const bool pooler_norm = file_->has_tensor(names::kPoolerNormWeight);
        file_->validate(vision_tensor_table(config_, head_kind_, pooler_norm));
        // Transformers adds the pooler to the classification model only (and to the base model on
        // request). The base model reports it whenever it is defined by the file: the CLS token
        // without mean pooling, or the pooler LayerNorm when its weights are there.
        const bool with_pooler = head_kind_ == VisionHead::ImageClassification ||
                                 (head_kind_ == VisionHead::Base && (pooler_norm || !config_.use_mean_pooling));
        model_ = std::make_unique<VisionModel>(file_, config_, with_pooler);
        if (head_kind_ == VisionHead::ImageClassification) classifier_.emplace(*file_, config_);
        if (head_kind_ == VisionHead::SemanticSegmentation) segmenter_.emplace(*file_, config_);
    }

    const ModelFile& file() const { return *file_; }
    const VisionConfig& config() const { return config_; }
    const ImageProcessorConfig& processor() const { return processor_; }
    VisionHead head() const { return head_kind_; }

    VisionBatch prepare(const std::vector<Image>& images) const {
        if (images.empty()) throw Error("no image given");
        VisionBatch batch;
        for (const auto& image : images) {
            NdArray pixels = preprocess(image, processor_);
            if (batch.pixel_values.shape.empty()) batch.pixel_values.shape = {0, pixels.shape[0], pixels.shape[1], pixels.shape[2]};
            if (pixels.shape[1] != batch.pixel_values.shape[2] || pixels.shape[2] != batch.pixel_values.shape[3])
                throw Error("images preprocess to different sizes; run them one at a time");
            batch.pixel_values.data.insert(batch.pixel_values.data.end(), pixels.data.begin(), pixels.data.end());
            batch.pixel_values.shape[0] += 1;
        }
        return batch;
    }

    // segmentation_maps (optional): the per-item logit maps [h/4 * w/4, num_labels], for masks.
    NamedOutputs run(const VisionBatch& batch, const VisionRunOptions& options = {}, const NdArray* labels = nullptr,
                     std::vector<FeatureMap>* segmentation_maps = nullptr) const {
        const PassThreads pass_threads;
        VisionRunOptions inner = options;
        if (segmenter_) inner.hidden_states = true;  // UperNet reads intermediate layers
        VisionModelOutput base = model_->forward(batch, inner);
        NamedOutputs out;
        switch (head_kind_) {
            case VisionHead::Base:
                out["last_hidden_state"] = stack_items(base.last_hidden_state);
                if (base.pooler_output) out["pooler_output"] = matrix_array(*base.pooler_output);
                break;
            case VisionHead::ImageClassification: classifier_->apply(base, labels, out); break;
            case VisionHead::SemanticSegmentation:
                segmenter_->apply(base, labels, out, segmentation_maps, options.auxiliary_logits);
                break;
        }
        if (options.hidden_states || options.attentions)
            add_layer_outputs(out, options.hidden_states ? base.hidden_states : decltype(base.hidden_states){}, base.attentions,
                              config_.num_attention_heads);
        return out;
    }

private:
    std::shared_ptr<const ModelFile> file_;
    VisionHead head_kind_ = VisionHead::Base;
    VisionConfig config_;
    ImageProcessorConfig processor_;
    std::unique_ptr<VisionModel> model_;
    std::optional<ImageClassificationHead> classifier_;
    std::optional<SemanticSegmentationHead> segmenter_;
};

}  // namespace d2v::vision
