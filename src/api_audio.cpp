// The facade's audio side: AudioPipeline in, Result out (outputs named as Transformers, plus the
// head's meaning: transcript, top-k labels, labelled frame segments).
#include <optional>

#include "api_internal.h"
#include "d2v/audio/lexicon_decoder.h"
#include "d2v/audio/pipeline.h"

namespace d2v::api {

void load_audio(const std::string& path, Model::Impl& impl) {
    auto pipe = std::make_shared<const audio::AudioPipeline>(path, "d2v");
    impl.modality = Modality::Audio;
    impl.model_class = pipe->file().model_class();
    impl.sampling_rate = pipe->sampling_rate();
    impl.labels = pipe->config().labels;
    impl.audio = std::move(pipe);
}

namespace {

// Argmax of each of the first `frames` rows of item b of a [B, T, C] array.
std::vector<int64_t> frame_argmax(const NdArray& logits, size_t b, int64_t frames) {
    const int64_t T = logits.shape[1], C = logits.shape[2];
    std::vector<int64_t> ids;
    for (int64_t t = 0; t < frames; ++t) {
        const float* row = logits.data.data() + (int64_t(b) * T + t) * C;
        ids.push_back(int64_t(std::max_element(row, row + C) - row));
    }
    return ids;
}

}  // namespace

Result run_audio(const Model::Impl& impl, const std::vector<std::vector<float>>& waves, const AudioOptions& options,
                 const std::vector<std::string>* names) {
    const audio::AudioPipeline& pipe = *impl.audio;
    if (waves.empty()) throw Error("no audio given");
    audio::AudioBatch batch;
    try {
        batch = pipe.prepare(waves);
    } catch (const Error& e) {
        std::string msg = e.what();
        for (size_t i = 0; names && i < names->size(); ++i)  // name the file instead of its index
            if (auto p = msg.find("audio item " + std::to_string(i) + " "); p != std::string::npos)
                msg.replace(p, 11 + std::to_string(i).size(), (*names)[i]);
        throw Error(msg);
    }
    const NamedOutputs out = pipe.run(batch, {options.hidden_states, options.attentions});

    Result r;
    r.outputs = to_outputs(out);
    const auto& iv = batch.input_values;
    Array input{{iv.rows(), iv.cols()}, std::vector<float>(iv.data(), iv.data() + iv.size()), false};
    if (batch.lengths) {
        Array mask{input.shape, {}, true};
        for (int64_t b = 0; b < iv.rows(); ++b)
            for (int64_t t = 0; t < iv.cols(); ++t) mask.data.push_back(t < (*batch.lengths)[size_t(b)] ? 1.0f : 0.0f);
        r.outputs["attention_mask"] = std::move(mask);
    }
    r.outputs["input_values"] = std::move(input);

    const auto& cfg = pipe.config();
    r.seconds_per_frame = 1.0 / double(pipe.sampling_rate());
    for (auto s : cfg.conv_stride) r.seconds_per_frame *= double(s);
    std::optional<audio::LexiconDecoder> lexicon;
    if (!options.words.empty()) {
        if (pipe.head() != audio::AudioHead::CTC || !pipe.decoder())
            throw Error("a word list needs a CTC model with a vocabulary; this file holds " + pipe.file().model_class());
        lexicon.emplace(*pipe.decoder(), options.words);
    }
    r.items.resize(waves.size());
    for (size_t b = 0; b < waves.size(); ++b) {
        Item& item = r.items[b];
        switch (pipe.head()) {
            case audio::AudioHead::CTC: {
                if (!pipe.decoder()) throw Error("model file has no CTC vocabulary (vocab.json) to decode with");
                const auto& logits = out.at("logits");
                const int64_t valid = audio::valid_frames(cfg, batch, logits.shape[1], cfg.add_adapter)[b];
                const int64_t T = logits.shape[1], V = logits.shape[2];
                item.text = pipe.decoder()->decode(lexicon ? lexicon->best_path(logits.data.data() + int64_t(b) * T * V, valid, V)
                                                           : frame_argmax(logits, b, valid));
                break;
            }
            case audio::AudioHead::SequenceClassification: {
                const auto& logits = out.at("logits");
                const int64_t C = logits.shape[1];
                const float* row = logits.data.data() + int64_t(b) * C;
                if (C == 1) item.labels.push_back({"score", 0, row[0]});  // a regression head
                else item.labels = top_labels(softmax(row, C), options.top_k, cfg.labels);
                break;
            }
            case audio::AudioHead::FrameClassification: {
                const auto& logits = out.at("logits");
                const int64_t valid = audio::valid_frames(cfg, batch, logits.shape[1], false)[b];
                const int64_t T = logits.shape[1], C = logits.shape[2];
                const auto ids = frame_argmax(logits, b, valid);
                double sum = 0;  // of the label's probability over the run: the span's score is its mean
                for (int64_t t = 0; t < valid; ++t) {  // runs of one label
                    const int64_t id = ids[size_t(t)];
                    if (t == 0 || id != ids[size_t(t - 1)]) {
                        item.spans.push_back({t, t, "", {{cfg.labels[size_t(id)], id, 0.0f}}});
                        sum = 0;
                    }
                    Span& span = item.spans.back();
                    sum += softmax(logits.data.data() + (int64_t(b) * T + t) * C, C)[size_t(id)];
                    span.end = t + 1;
                    span.labels[0].score = float(sum / double(span.end - span.start));
                }
                break;
            }
            case audio::AudioHead::XVector:
            case audio::AudioHead::Base: break;  // the embeddings / hidden states are the result
        }
    }
    return r;
}

}  // namespace d2v::api
