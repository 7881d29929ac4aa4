// d2v-audio: run a converted data2vec-audio model on audio files.
// Transcribes (ForCTC), classifies (ForSequenceClassification), labels frames
// (ForAudioFrameClassification), embeds speakers (ForXVector) or extracts features (Model):
// whatever head the model file holds. Several files run as one padded batch.
#include <cmath>
#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "d2v/audio/audio_io.h"
#include "d2v/audio/pipeline.h"

using d2v::Error;
using d2v::Json;
using namespace d2v::audio;

namespace {

const char* kUsage = R"(usage: d2v-audio -m MODEL.gguf [options] FILE [FILE ...]

Runs a data2vec-audio model (converted by weights_tools/convert.py) on WAV/FLAC/OGG files
(any bit depth; stereo is mixed down; other sampling rates are resampled with soxr).

options:
  -m, --model FILE          model file (required)
  -t, --threads N           threads (default: %d)
  -k, --top-k N             labels to print per file for classification models (default: 5)
      --json                print results as JSON on stdout
      --dump DIR            write model inputs and every output as .npy files named after the
                            Transformers fields (input_values, attention_mask, logits, ...)
      --output-hidden-states  also compute/dump hidden_states.<i>
      --output-attentions     also compute/dump attentions.<i>
      --label TEXT          label for the file at the same position, to compute the loss:
                            a transcript (CTC) or a class name / id (classification, x-vector)
  -h, --help                show this help

examples:
  d2v-audio -m models/digits-ctc.gguf samples/three_one_four.wav
  d2v-audio -m xvector.gguf --json a.wav b.wav      # embeddings + cosine similarity
)";

struct Options {
    std::string model;
    int threads = cli::default_threads();
    int top_k = 5;
    bool json = false, hidden_states = false, attentions = false;
    std::string dump_dir;
    std::vector<std::string> files, labels;
};

Options parse(int argc, char** argv) {
    Options o;
    cli::Args args(argc, argv);
    while (!args.done()) {
        const std::string a = args.take();
        if (a == "-h" || a == "--help") {
            std::printf(kUsage, cli::default_threads());
            std::exit(0);
        } else if (a == "-m" || a == "--model") o.model = args.value(a);
        else if (a == "-t" || a == "--threads") o.threads = args.int_value(a, 1);
        else if (a == "-k" || a == "--top-k") o.top_k = args.int_value(a, 1);
        else if (a == "--json") o.json = true;
        else if (a == "--dump") o.dump_dir = args.value(a);
        else if (a == "--output-hidden-states") o.hidden_states = true;
        else if (a == "--output-attentions") o.attentions = true;
        else if (a == "--label") o.labels.push_back(args.value(a));
        else if (a.size() > 1 && a[0] == '-') throw cli::UsageError("unknown option '" + a + "'");
        else o.files.push_back(a);
    }
    if (o.model.empty()) throw cli::UsageError("no model given (-m MODEL.gguf)");
    if (o.files.empty()) throw cli::UsageError("no audio file given");
    if (!o.labels.empty() && o.labels.size() != o.files.size())
        throw cli::UsageError("give one --label per file (" + std::to_string(o.files.size()) + " files, " +
                              std::to_string(o.labels.size()) + " labels)");
    return o;
}

// Class name or numeric id -> id.
int64_t class_id(const std::vector<std::string>& names, const std::string& label) {
    for (size_t i = 0; i < names.size(); ++i)
        if (names[i] == label) return int64_t(i);
    char* end = nullptr;
    const long id = std::strtol(label.c_str(), &end, 10);
    if (!label.empty() && *end == '\0' && id >= 0 && id < long(names.size())) return id;
    throw Error("label '" + label + "' is neither a class name nor an id of this model");
}

d2v::NdArray make_labels(const AudioPipeline& pipe, const std::vector<std::string>& labels) {
    d2v::NdArray a;
    a.is_integer = true;
    if (pipe.head() == AudioHead::CTC) {
        if (!pipe.decoder()) throw Error("model file has no CTC vocabulary to encode --label transcripts");
        std::vector<std::vector<int64_t>> ids;
        size_t longest = 0;
        for (const auto& text : labels) {
            ids.push_back(pipe.decoder()->encode(text));
            longest = std::max(longest, ids.back().size());
        }
        a.shape = {int64_t(ids.size()), int64_t(longest)};
        for (const auto& seq : ids)
            for (size_t u = 0; u < longest; ++u) a.data.push_back(u < seq.size() ? float(seq[u]) : -100.0f);
    } else if (pipe.head() == AudioHead::SequenceClassification || pipe.head() == AudioHead::XVector) {
        a.shape = {int64_t(labels.size())};
        for (const auto& l : labels) a.data.push_back(float(class_id(pipe.config().labels, l)));
    } else {
        throw Error("--label is not supported for " + pipe.file().model_class());
    }
    return a;
}

std::vector<std::pair<int64_t, float>> top_k(const float* logits, int64_t n, int k) {
    std::vector<float> p(logits, logits + n);
    d2v::softmax_inplace(p.data(), n);
    std::vector<std::pair<int64_t, float>> ranked;
    for (int64_t i = 0; i < n; ++i) ranked.emplace_back(i, p[size_t(i)]);
    std::sort(ranked.begin(), ranked.end(), [](auto& a, auto& b) { return a.second > b.second; });
    ranked.resize(std::min<size_t>(ranked.size(), size_t(k)));
    return ranked;
}

int run(const Options& o) {
    d2v::set_num_threads(o.threads);
    AudioPipeline pipe(o.model, "d2v-audio");
    std::vector<std::vector<float>> waves;
    for (const auto& f : o.files) {
        DecodedAudio audio = read_audio(f, pipe.sampling_rate());
        if (!audio.notes.empty()) std::fprintf(stderr, "d2v-audio: %s: %s\n", f.c_str(), audio.notes.c_str());
        waves.push_back(std::move(audio.samples));
    }
    for (size_t i = 0; i < waves.size(); ++i)
        if (waves[i].empty()) throw Error(o.files[i] + ": audio contains no samples");
    AudioBatch batch;
    try {
        batch = pipe.prepare(waves);
    } catch (const Error& e) {
        std::string msg = e.what();
        for (size_t i = 0; i < o.files.size(); ++i)  // name the file instead of its index
            if (auto p = msg.find("audio item " + std::to_string(i) + " "); p != std::string::npos)
                msg.replace(p, 11 + std::to_string(i).size(), o.files[i]);
        throw Error(msg);
    }
    RunOptions run_options{o.hidden_states, o.attentions};
    std::optional<d2v::NdArray> labels;
    if (!o.labels.empty()) labels = make_labels(pipe, o.labels);
    d2v::NamedOutputs out = pipe.run(batch, run_options, labels ? &*labels : nullptr);

    if (!o.dump_dir.empty()) {
        d2v::NamedOutputs dump = out;
        d2v::NdArray iv{{batch.input_values.rows(), batch.input_values.cols()},
                        std::vector<float>(batch.input_values.data(), batch.input_values.data() + batch.input_values.size())};
        dump["input_values"] = iv;
        if (batch.lengths) {
            d2v::NdArray mask{iv.shape, {}, true};
            for (int64_t b = 0; b < iv.shape[0]; ++b)
                for (int64_t t = 0; t < iv.shape[1]; ++t) mask.data.push_back(t < (*batch.lengths)[size_t(b)] ? 1.0f : 0.0f);
            dump["attention_mask"] = mask;
        }
        if (labels) dump["labels"] = *labels;
        cli::dump_outputs(o.dump_dir, dump);
    }

    Json results = Json::array();
    const auto& cfg = pipe.config();
    // Seconds per output frame: the conv stack's total stride.
    double frame_seconds = 1.0 / double(pipe.sampling_rate());
    for (auto s : cfg.conv_stride) frame_seconds *= double(s);
    for (size_t b = 0; b < o.files.size(); ++b) {
        Json r{{"file", o.files[b]}};
        switch (pipe.head()) {
            case AudioHead::CTC: {
                const auto& logits = out.at("logits");
                const int64_t T = logits.shape[1], V = logits.shape[2];
                const int64_t valid = valid_frames(cfg, batch, T, cfg.add_adapter)[b];
                std::vector<int64_t> ids;
                for (int64_t t = 0; t < valid; ++t) {
                    const float* row = logits.data.data() + (int64_t(b) * T + t) * V;
                    ids.push_back(int64_t(std::max_element(row, row + V) - row));
                }
                if (!pipe.decoder()) throw Error("model file has no CTC vocabulary (vocab.json) to decode with");
                r["transcript"] = pipe.decoder()->decode(ids);
                if (!o.json) std::printf("%s: %s\n", o.files[b].c_str(), r["transcript"].get<std::string>().c_str());
                break;
            }
            case AudioHead::SequenceClassification: {
                const auto& logits = out.at("logits");
                const int64_t C = logits.shape[1];
                const float* row = logits.data.data() + int64_t(b) * C;
                if (C == 1) {  // a regression head
                    r["score"] = row[0];
                    if (!o.json) std::printf("%s: %.6f\n", o.files[b].c_str(), row[0]);
                    break;
                }
                r["labels"] = Json::array();
                if (!o.json) std::printf("%s:\n", o.files[b].c_str());
                for (auto [id, p] : top_k(row, C, o.top_k)) {
                    r["labels"].push_back({{"label", cfg.labels[size_t(id)]}, {"id", id}, {"score", p}});
                    if (!o.json) std::printf("  %-20s %.4f\n", cfg.labels[size_t(id)].c_str(), p);
                }
                break;
            }
            case AudioHead::FrameClassification: {
                const auto& logits = out.at("logits");
                const int64_t T = logits.shape[1], C = logits.shape[2];
                const int64_t valid = valid_frames(cfg, batch, T, false)[b];
                r["frames"] = Json::array();
                if (!o.json) std::printf("%s:\n", o.files[b].c_str());
                int64_t start = 0;
                for (int64_t t = 0; t < valid; ++t) {
                    const float* row = logits.data.data() + (int64_t(b) * T + t) * C;
                    const int64_t id = int64_t(std::max_element(row, row + C) - row);
                    r["frames"].push_back(cfg.labels[size_t(id)]);
                    const bool last = t + 1 == valid;
                    const float* next = last ? nullptr : row + C;
                    if (last || int64_t(std::max_element(next, next + C) - next) != id) {
                        if (!o.json) std::printf("  %7.2fs - %7.2fs  %s\n", double(start) * frame_seconds, double(t + 1) * frame_seconds, cfg.labels[size_t(id)].c_str());
                        start = t + 1;
                    }
                }
                break;
            }
            case AudioHead::XVector: {
                const auto& e = out.at("embeddings");
                const int64_t D = e.shape[1];
                r["embedding"] = std::vector<float>(e.data.begin() + int64_t(b) * D, e.data.begin() + int64_t(b + 1) * D);
                if (!o.json) {
                    std::printf("%s: x-vector [%lld]:", o.files[b].c_str(), (long long)D);
                    for (int64_t i = 0; i < std::min<int64_t>(D, 8); ++i) std::printf(" %.4f", e.data[size_t(int64_t(b) * D + i)]);
                    std::printf("%s\n", D > 8 ? " ..." : "");
                }
                break;
            }
            case AudioHead::Base: {
                const auto& h = out.at("last_hidden_state");
                r["frames"] = valid_frames(cfg, batch, h.shape[1], cfg.add_adapter)[b];
                r["hidden_size"] = h.shape[2];
                if (!o.json) std::printf("%s: last_hidden_state [%lld frames x %lld]\n", o.files[b].c_str(), (long long)r["frames"].get<int64_t>(), (long long)h.shape[2]);
                break;
            }
        }
        results.push_back(r);
    }
    Json doc{{"model", o.model}, {"model_class", pipe.file().model_class()}, {"results", results}};
    if (out.count("loss")) {
        doc["loss"] = out.at("loss").data[0];
        if (!o.json) std::printf("loss: %.6f\n", out.at("loss").data[0]);
    }
    if (pipe.head() == AudioHead::XVector && o.files.size() >= 2) {
        // Cosine similarity of every pair of embeddings (speaker verification).
        const auto& e = out.at("embeddings");
        const int64_t D = e.shape[1];
        Json sims = Json::array();
        for (size_t i = 0; i < o.files.size(); ++i)
            for (size_t j = i + 1; j < o.files.size(); ++j) {
                Eigen::Map<const Eigen::VectorXf> a(e.data.data() + int64_t(i) * D, D), c(e.data.data() + int64_t(j) * D, D);
                const float cos = a.dot(c) / std::max(a.norm() * c.norm(), 1e-8f);
                sims.push_back({{"a", o.files[i]}, {"b", o.files[j]}, {"cosine", cos}});
                if (!o.json) std::printf("cosine(%s, %s) = %.4f\n", o.files[i].c_str(), o.files[j].c_str(), cos);
            }
        doc["cosine_similarity"] = sims;
    }
    if (o.json) std::printf("%s\n", doc.dump(2).c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return cli::guarded_main("d2v-audio", [&] { return run(parse(argc, argv)); });
}
