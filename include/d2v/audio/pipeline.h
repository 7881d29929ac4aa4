// Loading a data2vec-audio model file and running whichever head it holds.
//
//   d2v::audio::AudioPipeline pipe("model.gguf");
//   auto batch = pipe.prepare({d2v::audio::read_audio("a.wav", pipe.sampling_rate()).samples});
//   d2v::NamedOutputs out = pipe.run(batch);        // out["logits"], out["last_hidden_state"], ...
//
// A pipeline is immutable after construction; run() may be called from several threads.
#pragma once
#include "d2v/audio/ctc_decoder.h"
#include "d2v/audio/feature_extractor.h"
#include "d2v/audio/heads/ctc.h"
#include "d2v/audio/heads/frame_classification.h"
#include "d2v/audio/heads/sequence_classification.h"
#include "d2v/audio/heads/xvector.h"

namespace d2v::audio {

class AudioPipeline {
public:
    explicit AudioPipeline(const std::string& path, const std::string& program = "this program")
        : AudioPipeline(std::make_shared<const ModelFile>(path), program) {}

    AudioPipeline(std::shared_ptr<const ModelFile> file, const std::string& program) : file_(std::move(file)) {
        file_->require_architecture("data2vec-audio", program);
        head_kind_ = parse_audio_head(file_->model_class());
        config_ = parse_audio_config(file_->config());
        if (config_.add_adapter && (head_kind_ == AudioHead::SequenceClassification || head_kind_ == AudioHead::FrameClassification))
            throw Error(file_->model_class() + " does not support config.add_adapter=true (Transformers refuses it too)");
        features_ = parse_feature_extractor(file_->preprocessor());
        file_->validate(audio_tensor_table(config_, head_kind_));
        model_ = std::make_unique<AudioModel>(file_, config_);
        switch (head_kind_) {
            case AudioHead::Base: break;
            case AudioHead::CTC:
                head_ = std::make_unique<CtcHead>(*file_, config_);
                if (file_->vocab().is_object()) decoder_.emplace(file_->vocab(), file_->tokenizer_config(), config_.vocab_size);
                break;
            case AudioHead::SequenceClassification: head_ = std::make_unique<SequenceClassificationHead>(*file_, config_); break;
            case AudioHead::FrameClassification: head_ = std::make_unique<FrameClassificationHead>(*file_, config_); break;
            case AudioHead::XVector: head_ = std::make_unique<XVectorHead>(*file_, config_); break;
        }
    }

    const ModelFile& file() const { return *file_; }
    const AudioConfig& config() const { return config_; }
    const FeatureExtractorConfig& feature_extractor() const { return features_; }
    AudioHead head() const { return head_kind_; }
    int64_t sampling_rate() const { return features_.sampling_rate; }
    const CtcDecoder* decoder() const { return decoder_ ? &*decoder_ : nullptr; }

    AudioBatch prepare(const std::vector<std::vector<float>>& waves) const {
        const int64_t need = receptive_field(config_);
        for (size_t i = 0; i < waves.size(); ++i)
            if (int64_t(waves[i].size()) < need)
                throw Error("audio item " + std::to_string(i) + " has " + std::to_string(waves[i].size()) +
                            " samples; the model's conv feature encoder needs at least " + std::to_string(need) +
                            " (" + std::to_string(1000.0 * double(need) / double(sampling_rate())).substr(0, 5) + " ms)");
        return prepare_batch(waves, features_);
    }

    NamedOutputs run(const AudioBatch& batch, const RunOptions& options = {}, const NdArray* labels = nullptr) const {
        const PassThreads pass_threads;
        RunOptions inner = options;
        if (head_ && head_->needs_hidden_states()) inner.hidden_states = true;
        AudioModelOutput base = model_->forward(batch, inner);
        NamedOutputs out;
        if (head_kind_ == AudioHead::Base) {
            out["last_hidden_state"] = stack_items(base.last_hidden_state);
            out["extract_features"] = stack_items(base.extract_features);
        } else {
            head_->apply(batch, base, labels, out);
        }
        if (options.hidden_states || options.attentions)
            add_layer_outputs(out, options.hidden_states ? base.hidden_states : decltype(base.hidden_states){}, base.attentions,
                              config_.num_attention_heads);
        return out;
    }

private:
    std::shared_ptr<const ModelFile> file_;
    AudioHead head_kind_ = AudioHead::Base;
    AudioConfig config_;
    FeatureExtractorConfig features_;
    std::unique_ptr<AudioModel> model_;
    std::unique_ptr<AudioHeadModule> head_;
    std::optional<CtcDecoder> decoder_;
};

}  // namespace d2v::audio
