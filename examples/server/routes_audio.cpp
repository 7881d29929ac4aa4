// Audio routes, by the head the file holds: OpenAI's /v1/audio/transcriptions for CTC (multipart
// file, response_format json | text | verbose_json with word times), /predict for classification
// and frame classification, /embed for x-vectors. Audio arrives as a multipart `file` (or a raw
// audio/* body) and is decoded on a worker. CTC and frame classification run in overlapping chunks
// exactly as d2v-audio does (Transformers' ASR pipeline chunking), so memory does not grow with
// the upload; heads that pool the whole input take one pass, refused past a memory budget.
#include <algorithm>

#include "d2v/audio/audio_io.h"
#include "d2v/audio/chunking.h"
#include "d2v/audio/lexicon_decoder.h"
#include "d2v/audio/pipeline.h"
#include "d2v/kernels/ops.h"
#include "server.h"

namespace server {
namespace {

using namespace d2v::audio;

const std::vector<std::string> kRawAudio = {"audio/", "application/octet-stream"};
// The most one unchunked pass of one request may need (whole_pass_bytes): several workers can
// each hold one.
constexpr double kWholePassBudgetBytes = 1e9;

double frame_seconds(const AudioPipeline& pipe) {
    return double(inputs_to_logits_ratio(pipe.config())) / double(pipe.sampling_rate());
}

struct Decoded {
    std::vector<int64_t> ids;  // argmax per kept frame, or the word list's best path
    double seconds = 0;        // duration of the input
};

// Frame rows -> token ids: argmax, or with a word list the best path through its words (which
// needs all rows at once: they are kept until the end of the upload).
class FrameDecoder {
public:
    explicit FrameDecoder(const LexiconDecoder* lexicon) : lexicon_(lexicon) {}
    void add(const float* rows, int64_t n, int64_t width, Decoded& d) {
        width_ = width;
        if (lexicon_) {
            kept_.insert(kept_.end(), rows, rows + n * width);
            return;
        }
        for (int64_t t = 0; t < n; ++t) {
            const float* row = rows + t * width;
            d.ids.push_back(int64_t(std::max_element(row, row + width) - row));
        }
    }
    void finish(Decoded& d) const {
        if (lexicon_ && width_ > 0) d.ids = lexicon_->best_path(kept_.data(), int64_t(kept_.size()) / width_, width_);
    }

private:
    const LexiconDecoder* lexicon_;
    std::vector<float> kept_;
    int64_t width_ = 0;
};

d2v::NamedOutputs run_whole(const AudioPipeline& pipe, const std::string& bytes, int64_t* samples_read = nullptr);

// One upload through the chunker, as d2v-audio's run_chunked: memory is one chunk. With
// chunk_seconds 0, one pass over the whole upload (as d2v-audio --chunk 0), within the memory budget.
Decoded run_chunked(const AudioPipeline& pipe, const std::string& bytes, double chunk_seconds,
                    const LexiconDecoder* lexicon = nullptr) {
    FrameDecoder frames(lexicon);
    if (chunk_seconds <= 0) {
        int64_t samples = 0;
        const auto out = run_whole(pipe, bytes, &samples);
        const auto& rows = out.at("logits");  // [1, frames, width]
        Decoded d;
        frames.add(rows.data.data(), rows.shape[1], rows.shape[2], d);
        frames.finish(d);
        d.seconds = double(samples) / double(pipe.sampling_rate());
        return d;
    }
    return with_upload(bytes, [&](const std::string& path) {
        ChunkSettings settings;
        settings.chunk_seconds = chunk_seconds;
        const ChunkPlan plan = plan_chunks(settings, pipe);
        AudioReader reader(path, pipe.sampling_rate());
        Chunker chunker(plan);
        Decoded out;
        auto on_chunk = [&](const AudioChunk& c) {
            const d2v::NdArray rows = chunk_frames(pipe, plan, c);
            frames.add(rows.data.data(), rows.shape[0], rows.shape[1], out);
        };
        std::vector<float> block;
        while (reader.read(block)) {
            chunker.push(block.data(), block.size(), on_chunk);
            block.clear();
        }
        if (reader.source_frames_decoded() == 0) throw d2v::Error("audio contains no samples");
        out.seconds = double(chunker.samples_seen()) / double(pipe.sampling_rate());
        chunker.finish(on_chunk);
        frames.finish(out);
        return out;
    });
}

// The whole upload in one pass (heads that pool over time), refused past the memory budget.
d2v::NamedOutputs run_whole(const AudioPipeline& pipe, const std::string& bytes, int64_t* samples_read) {
    return with_upload(bytes, [&](const std::string& path) {
        const double max_seconds = kWholePassBudgetBytes / whole_pass_bytes(pipe.config(), 1) / double(pipe.sampling_rate());
        AudioReader reader(path, pipe.sampling_rate());
        std::vector<float> samples;
        while (reader.read(samples))
            if (double(samples.size()) > max_seconds * double(pipe.sampling_rate()))
                throw HttpError(422, "too_long", "audio is longer than " + std::to_string(int(max_seconds)) + " s, the most one pass of " +
                                                     pipe.file().model_class() + " may take here; cut it into parts");
        if (samples.empty()) throw d2v::Error("audio contains no samples");
        if (samples_read) *samples_read = int64_t(samples.size());
        return pipe.run(pipe.prepare({samples}));
    });
}

Reply transcription(const AudioPipeline& pipe, const std::string& bytes, const std::string& format, double chunk_seconds,
                    const LexiconDecoder* lexicon) {
    const Decoded d = run_chunked(pipe, bytes, chunk_seconds, lexicon);
    const std::string text = pipe.decoder()->decode(d.ids);
    if (format == "text") return Reply{200, text + "\n", "text/plain; charset=utf-8", {}};
    if (format == "json") return json_reply({{"text", text}});
    const double seconds = frame_seconds(pipe);
    Json words = Json::array();
    for (const auto& w : pipe.decoder()->word_offsets(d.ids))
        words.push_back({{"word", w.word}, {"start", double(w.start) * seconds}, {"end", double(w.end) * seconds}});
    return json_reply({{"task", "transcribe"}, {"duration", d.seconds}, {"text", text}, {"words", words}});
}

}  // namespace

void add_audio_routes(const Options& options, Routes& routes, Json& info) {
    const std::string& model_path = options.model;
    const double chunk_seconds = options.chunk_seconds;
    auto pipe = std::make_shared<const AudioPipeline>(model_path, "d2v-server");
    std::shared_ptr<const LexiconDecoder> lexicon;
    if (!options.words.empty()) {
        if (pipe->head() != AudioHead::CTC || !pipe->decoder())
            throw d2v::Error("--words/--lexicon needs a CTC model with a vocabulary; this file holds " + pipe->file().model_class());
        lexicon = std::make_shared<const LexiconDecoder>(*pipe->decoder(), options.words);
        info["words"] = options.words;
    }
    info["sampling_rate"] = pipe->sampling_rate();
    info["labels"] = pipe->config().labels;
    if (chunk_seconds > 0 && chunkable_field(pipe->head())) {
        ChunkSettings settings;
        settings.chunk_seconds = chunk_seconds;
        plan_chunks(settings, *pipe);  // refuses a chunk shorter than the model's receptive field now, not per request
    }
    switch (pipe->head()) {
        case AudioHead::CTC:
            if (!pipe->decoder()) throw d2v::Error(model_path + ": model file has no CTC vocabulary (vocab.json) to decode with");
            routes["POST /v1/audio/transcriptions"] = [pipe, chunk_seconds, lexicon](const httplib::Request& req, Context& ctx) {
                if (!req.is_multipart_form_data())
                    throw HttpError(415, "unsupported_media_type", "this route takes multipart/form-data with a 'file' field");
                std::string bytes = upload(req, "file", {});
                const std::string format = form_value(req, "response_format", "json");
                if (format != "json" && format != "text" && format != "verbose_json")
                    throw HttpError(400, "bad_request", "response_format must be json, text or verbose_json");
                return ctx.run(req, [pipe, bytes = std::move(bytes), format, chunk_seconds, lexicon, &ctx] {
                    ctx.metrics.items("/v1/audio/transcriptions", 1);
                    return transcription(*pipe, bytes, format, chunk_seconds, lexicon.get());
                });
            };
            break;
        case AudioHead::FrameClassification:
            // {"segments": [{"label", "start", "end"}]}: runs of one label, in seconds.
            routes["POST /predict"] = [pipe, chunk_seconds](const httplib::Request& req, Context& ctx) {
                std::string bytes = upload(req, "file", kRawAudio);
                return ctx.run(req, [pipe, bytes = std::move(bytes), chunk_seconds, &ctx] {
                    ctx.metrics.items("/predict", 1);
                    const Decoded d = run_chunked(*pipe, bytes, chunk_seconds);
                    const double seconds = frame_seconds(*pipe);
                    Json segments = Json::array();
                    size_t start = 0;
                    for (size_t t = 0; t < d.ids.size(); ++t)
                        if (t + 1 == d.ids.size() || d.ids[t + 1] != d.ids[t]) {
                            segments.push_back({{"label", pipe->config().labels.at(size_t(d.ids[t]))},
                                                {"start", double(start) * seconds}, {"end", double(t + 1) * seconds}});
                            start = t + 1;
                        }
                    return json_reply({{"segments", segments}});
                });
            };
            break;
        case AudioHead::SequenceClassification:
            // [{"label", "score"}], best first (?top_k=N, default 5); a regression head: [{"label": "score", "score"}].
            routes["POST /predict"] = [pipe](const httplib::Request& req, Context& ctx) {
                std::string bytes = upload(req, "file", kRawAudio);
                const int k = int_param(req, "top_k", 5, 1, 100000);
                return ctx.run(req, [pipe, bytes = std::move(bytes), k, &ctx] {
                    ctx.metrics.items("/predict", 1);
                    const auto out = run_whole(*pipe, bytes);
                    const auto& logits = out.at("logits");
                    const int64_t C = logits.shape[1];
                    if (C == 1) return json_reply(Json::array({{{"label", "score"}, {"score", logits.data[0]}}}));
                    std::vector<float> p(logits.data.begin(), logits.data.begin() + C);
                    d2v::softmax_inplace(p.data(), C);
                    std::vector<int64_t> order(static_cast<size_t>(C));
                    for (int64_t i = 0; i < C; ++i) order[size_t(i)] = i;
                    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[size_t(a)] > p[size_t(b)]; });
                    Json labels = Json::array();
                    for (size_t i = 0; i < order.size() && i < size_t(k); ++i)
                        labels.push_back({{"label", pipe->config().labels.at(size_t(order[i]))}, {"score", p[size_t(order[i])]}});
                    return json_reply(labels);
                });
            };
            break;
        case AudioHead::XVector:
            // [[float]]: the x-vector (TEI's /embed shape, one row per input).
            routes["POST /embed"] = [pipe](const httplib::Request& req, Context& ctx) {
                std::string bytes = upload(req, "file", kRawAudio);
                return ctx.run(req, [pipe, bytes = std::move(bytes), &ctx] {
                    ctx.metrics.items("/embed", 1);
                    return json_reply(Json::array({run_whole(*pipe, bytes).at("embeddings").data}));
                });
            };
            break;
        case AudioHead::Base: throw d2v::Error("d2v-server does not serve " + pipe->file().model_class() + " (no head to answer with)");
    }
}

}  // namespace server
