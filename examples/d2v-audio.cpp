// d2v-audio: run a converted data2vec-audio model on audio files.
// Transcribes (ForCTC), classifies (ForSequenceClassification), labels frames
// (ForAudioFrameClassification), embeds speakers (ForXVector) or extracts features (Model):
// whatever head the model file holds. Per-frame heads run long files in chunks as Transformers'
// ASR pipeline does (d2v/audio/chunking.h), decoded as they are read; one-pass heads and options
// run all files as one padded batch, refusing a file whose pass would not fit in memory.
#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli_common.h"
#include "d2v/audio/audio_io.h"
#include "d2v/audio/chunking.h"
#include "d2v/audio/lexicon_decoder.h"

using d2v::Error;
using d2v::Json;
using namespace d2v::audio;

namespace {

const char* kUsage = R"(usage: d2v-audio -m MODEL.gguf [options] FILE [FILE ...]

Runs a data2vec-audio model (converted by weights_tools/convert.py) on WAV/FLAC/OGG files
(any bit depth; stereo is mixed down; other sampling rates are resampled with soxr).
FILE '-' reads standard input (WAV, FLAC or OGG through a pipe), decoded as it arrives.

Long audio: CTC, frame classification and base models run each file in overlapping chunks as
Transformers' ASR pipeline does (chunk_length_s / stride_length_s), so memory does not grow with
the file; a file no longer than one chunk is a single pass. Sequence classification and x-vector
heads pool the whole file and refuse one whose single pass would not fit in memory; so do
--label, --output-hidden-states and --output-attentions, which need one pass.

options:
  -m, --model FILE          model file (required)
  -t, --threads N           threads (default: %d)
  -k, --top-k N             labels to print per file for classification models (default: 5)
      --json                print results as JSON on stdout
      --dump DIR            write model inputs and every output as .npy files named after the
                            Transformers fields (input_values, attention_mask, logits, ...) of one
                            pass over the padded batch; with --chunk, the joined per-frame output
                            of the chunks instead (logits / last_hidden_state, one file)
      --output-hidden-states  also compute/dump hidden_states.<i>
      --output-attentions     also compute/dump attentions.<i>
      --label TEXT          label for the file at the same position, to compute the loss:
                            a transcript (CTC) or a class name / id (classification, x-vector)
      --chunk SECONDS       chunk length (default: %g; 0 = whole file in one pass, as before)
      --stride LEFT RIGHT   seconds of context dropped at each chunk's edges (default: chunk / 6)
      --timestamps          CTC: each word with its start and end time in seconds
      --words "W1 W2 ..."   CTC: transcribe only with these words (the most probable sequence of
                            them, instead of letter-by-letter greedy decoding); small vocabularies
      --lexicon FILE        CTC: the same, words read from FILE (separated by white space)
  -h, --help                show this help
      --version             print the version

examples:
  d2v-audio -m models/digits-ctc.gguf samples/three_one_four.wav
  d2v-audio -m models/digits-ctc.gguf --words "zero one two three four five six seven eight nine" my_digits.wav
  d2v-audio -m xvector.gguf --json a.wav b.wav      # embeddings + cosine similarity
  ffmpeg -i talk.mp3 -f wav - | d2v-audio -m ctc.gguf --timestamps -
)";

// The most one unchunked pass may need (whole_pass_bytes); a longer file is refused, not killed.
constexpr double kWholePassBudgetBytes = 2e9;

struct Options {
    std::string model;
    int threads = cli::default_threads();
    int top_k = 5;
    bool json = false, hidden_states = false, attentions = false, timestamps = false;
    ChunkSettings chunking;
    bool chunk_given = false;
    std::string dump_dir;
    std::vector<std::string> files, labels, words;  // words: --words / --lexicon
};

// A number of seconds (fractions allowed); kept here: cli_common.h parses integers only.
double seconds_value(cli::Args& args, const std::string& option) {
    const std::string v = args.value(option);
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !std::isfinite(x) || x < 0 || x > 3600)
        throw cli::UsageError("option " + option + " needs seconds between 0 and 3600, got '" + v + "'");
    return x;
}

Options parse(int argc, char** argv) {
    Options o;
    cli::Args args(argc, argv);
    while (!args.done()) {
        const std::string a = args.take();
        if (a == "-h" || a == "--help") {
            std::printf(kUsage, cli::default_threads(), kDefaultChunkSeconds);
            std::exit(0);
        } else if (a == "-m" || a == "--model") o.model = args.value(a);
        else if (a == "-t" || a == "--threads") o.threads = args.int_value(a, 1);
        else if (a == "-k" || a == "--top-k") o.top_k = args.int_value(a, 1);
        else if (a == "--json") o.json = true;
        else if (a == "--dump") o.dump_dir = args.value(a);
        else if (a == "--output-hidden-states") o.hidden_states = true;
        else if (a == "--output-attentions") o.attentions = true;
        else if (a == "--label") o.labels.push_back(args.value(a));
        else if (a == "--chunk") {
            o.chunking.chunk_seconds = seconds_value(args, a);
            o.chunk_given = true;
        }
        else if (a == "--stride") {
            o.chunking.stride_left_seconds = seconds_value(args, a);
            o.chunking.stride_right_seconds = seconds_value(args, a);
        } else if (a == "--timestamps") o.timestamps = true;
        else if (a == "--words" || a == "--lexicon") {
            if (!o.words.empty()) throw cli::UsageError("give one word list (--words or --lexicon)");
            o.words = cli::word_list_option(a, args.value(a));
        }
        else if (a.size() > 1 && a[0] == '-') throw cli::UsageError("unknown option '" + a + "'");
        else o.files.push_back(a);
    }
    if (o.model.empty()) throw cli::UsageError("no model given (-m MODEL.gguf)");
    if (o.files.empty()) throw cli::UsageError("no audio file given");
    if (std::count(o.files.begin(), o.files.end(), "-") > 1) throw cli::UsageError("standard input ('-') can be read only once");
    if (o.chunking.chunk_seconds > 0) {
        try {  // the rounding to frames is checked when the model is known
            plan_chunks(o.chunking, 16000, 1, 1);
        } catch (const Error& e) {
            throw cli::UsageError(std::string("--chunk/--stride: ") + e.what());
        }
    }
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

double frame_seconds(const AudioPipeline& pipe) {
    return double(inputs_to_logits_ratio(pipe.config())) / double(pipe.sampling_rate());
}

void append_argmax(const float* rows, int64_t n, int64_t width, std::vector<int64_t>& ids) {
    for (int64_t t = 0; t < n; ++t) {
        const float* row = rows + t * width;
        ids.push_back(int64_t(std::max_element(row, row + width) - row));
    }
}

// CTC: the transcript, and with --timestamps each word's start and end in seconds
// (Wav2Vec2CTCTokenizer's word offsets times inputs_to_logits_ratio / sampling_rate).
void ctc_result(const AudioPipeline& pipe, const std::vector<int64_t>& ids, const Options& o, const std::string& file, Json& r) {
    if (!pipe.decoder()) throw Error("model file has no CTC vocabulary (vocab.json) to decode with");
    r["transcript"] = pipe.decoder()->decode(ids);
    if (!o.json) std::printf("%s: %s\n", file.c_str(), r["transcript"].get<std::string>().c_str());
    if (!o.timestamps) return;
    // frames * ratio / rate in this order, as the pipeline computes it (the same double to the last bit)
    const int64_t ratio = inputs_to_logits_ratio(pipe.config());
    const double rate = double(pipe.sampling_rate());
    r["words"] = Json::array();
    for (const auto& w : pipe.decoder()->word_offsets(ids)) {
        const double start = double(w.start * ratio) / rate, end = double(w.end * ratio) / rate;
        r["words"].push_back({{"word", w.word}, {"start", start}, {"end", end}});
        if (!o.json) std::printf("  %9.3f %9.3f  %s\n", start, end, w.word.c_str());
    }
}

// Frame classification: the label of every frame, printed as segments of one label.
void frame_result(const AudioPipeline& pipe, const std::vector<int64_t>& ids, const Options& o, const std::string& file, Json& r) {
    const auto& labels = pipe.config().labels;
    const double seconds = frame_seconds(pipe);
    r["frames"] = Json::array();
    if (!o.json) std::printf("%s:\n", file.c_str());
    size_t start = 0;
    for (size_t t = 0; t < ids.size(); ++t) {
        r["frames"].push_back(labels[size_t(ids[t])]);
        if (t + 1 == ids.size() || ids[t + 1] != ids[t]) {
            if (!o.json) std::printf("  %7.2fs - %7.2fs  %s\n", double(start) * seconds, double(t + 1) * seconds, labels[size_t(ids[t])].c_str());
            start = t + 1;
        }
    }
}

// Names the file instead of the batch index in the pipeline's messages.
Error with_file_names(const Error& e, const std::vector<std::string>& files) {
    std::string msg = e.what();
    for (size_t i = 0; i < files.size(); ++i)
        if (auto p = msg.find("audio item " + std::to_string(i) + " "); p != std::string::npos)
            msg.replace(p, 11 + std::to_string(i).size(), files[i] == "-" ? "standard input" : files[i]);
    return Error(msg);
}

// ---- one file in chunks, decoded as it is read: memory is one chunk, whatever the file's length

struct ChunkedOutput {
    std::vector<int64_t> ids;  // argmax per kept frame (CTC, frame classification)
    d2v::NdArray joined;       // the kept frames themselves, [1, frames, width] (for --dump, base model)
};

ChunkedOutput run_chunked(const AudioPipeline& pipe, const ChunkPlan& plan, const std::string& file, bool keep_frames) {
    AudioReader reader(file, pipe.sampling_rate());
    Chunker chunker(plan);
    ChunkedOutput out;
    out.joined.shape = {1, 0, 0};
    auto on_chunk = [&](const AudioChunk& c) {
        const d2v::NdArray rows = chunk_frames(pipe, plan, c);
        out.joined.shape[1] += rows.shape[0];
        out.joined.shape[2] = rows.shape[1];
        if (pipe.head() != AudioHead::Base) append_argmax(rows.data.data(), rows.shape[0], rows.shape[1], out.ids);
        if (keep_frames) out.joined.data.insert(out.joined.data.end(), rows.data.begin(), rows.data.end());
    };
    std::vector<float> block;
    while (reader.read(block)) {
        chunker.push(block.data(), block.size(), on_chunk);
        block.clear();
    }
    if (reader.source_frames_decoded() == 0) throw Error(file + ": audio contains no samples");
    chunker.finish(on_chunk);
    if (!reader.notes().empty()) std::fprintf(stderr, "d2v-audio: %s: %s\n", file.c_str(), reader.notes().c_str());
    return out;
}

Json chunked_results(const AudioPipeline& pipe, const Options& o, const LexiconDecoder* lexicon, Json& doc) {
    const ChunkPlan plan = plan_chunks(o.chunking, pipe);
    const double rate = double(pipe.sampling_rate());
    doc["chunking"] = {{"chunk", double(plan.chunk) / rate}, {"stride_left", double(plan.stride_left) / rate},
                       {"stride_right", double(plan.stride_right) / rate}};
    if (!o.dump_dir.empty() && o.files.size() != 1)
        throw cli::UsageError("--dump of chunked (long-audio) output takes one file; give --chunk 0 for a padded batch");
    Json results = Json::array();
    for (const auto& file : o.files) {
        ChunkedOutput out;
        try {
            out = run_chunked(pipe, plan, file, !o.dump_dir.empty() || pipe.head() == AudioHead::Base || lexicon);
        } catch (const Error& e) {
            throw with_file_names(e, {file});
        }
        Json r{{"file", file}};
        if (lexicon) out.ids = lexicon->best_path(out.joined.data.data(), out.joined.shape[1], out.joined.shape[2]);
        if (pipe.head() == AudioHead::CTC) ctc_result(pipe, out.ids, o, file, r);
        else if (pipe.head() == AudioHead::FrameClassification) frame_result(pipe, out.ids, o, file, r);
        else {
            r["frames"] = out.joined.shape[1];
            r["hidden_size"] = out.joined.shape[2];
            if (!o.json) std::printf("%s: last_hidden_state [%lld frames x %lld]\n", file.c_str(), (long long)out.joined.shape[1], (long long)out.joined.shape[2]);
        }
        if (!o.dump_dir.empty()) cli::dump_outputs(o.dump_dir, {{*chunkable_field(pipe.head()), out.joined}});
        results.push_back(r);
    }
    return results;
}

// ---- all files as one padded batch, each in one pass (as Transformers runs a model directly)

Json whole_file_results(const AudioPipeline& pipe, const Options& o, const LexiconDecoder* lexicon, Json& doc) {
    // Refuse, while decoding, a file whose single pass would not fit in memory (instead of an OOM kill).
    const RunOptions run_options{o.hidden_states, o.attentions};
    std::vector<std::vector<float>> waves;
    for (const auto& f : o.files) {
        AudioReader reader(f, pipe.sampling_rate());
        std::vector<float> samples;
        while (reader.read(samples))
            if (whole_pass_bytes(pipe.config(), int64_t(samples.size()), run_options) > kWholePassBudgetBytes)
                throw Error(f + ": past " + std::to_string(int(double(samples.size()) / double(pipe.sampling_rate()))) +
                            " s, one pass of this model over it would need more than " + std::to_string(int(kWholePassBudgetBytes / 1e9)) +
                            " GB of memory; " +
                            (chunkable_field(pipe.head()) ? "run it in chunks (--chunk SECONDS, without --label/--output-*)"
                                                          : pipe.file().model_class() + " pools the whole file, so cut the file into parts"));
        if (!reader.notes().empty()) std::fprintf(stderr, "d2v-audio: %s: %s\n", f.c_str(), reader.notes().c_str());
        if (samples.empty()) throw Error(f + ": audio contains no samples");
        waves.push_back(std::move(samples));
    }
    AudioBatch batch;
    try {
        batch = pipe.prepare(waves);
    } catch (const Error& e) {
        throw with_file_names(e, o.files);
    }
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
    for (size_t b = 0; b < o.files.size(); ++b) {
        Json r{{"file", o.files[b]}};
        switch (pipe.head()) {
            case AudioHead::CTC:
            case AudioHead::FrameClassification: {
                const auto& logits = out.at("logits");
                const int64_t T = logits.shape[1], V = logits.shape[2];
                const bool ctc = pipe.head() == AudioHead::CTC;
                const int64_t valid = valid_frames(cfg, batch, T, ctc && cfg.add_adapter)[b];
                std::vector<int64_t> ids;
                const float* rows = logits.data.data() + int64_t(b) * T * V;
                if (ctc && lexicon) ids = lexicon->best_path(rows, valid, V);
                else append_argmax(rows, valid, V, ids);
                if (ctc) ctc_result(pipe, ids, o, o.files[b], r);
                else frame_result(pipe, ids, o, o.files[b], r);
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
    return results;
}

int run(const Options& o) {
    d2v::set_num_threads(o.threads);
    AudioPipeline pipe(o.model, "d2v-audio");
    if (o.timestamps && pipe.head() != AudioHead::CTC) throw Error("--timestamps needs a CTC model; this file holds " + pipe.file().model_class());
    std::optional<LexiconDecoder> lexicon;
    if (!o.words.empty()) {
        if (pipe.head() != AudioHead::CTC || !pipe.decoder())
            throw Error("--words/--lexicon needs a CTC model with a vocabulary; this file holds " + pipe.file().model_class());
        lexicon.emplace(*pipe.decoder(), o.words);
    }
    const LexiconDecoder* lex = lexicon ? &*lexicon : nullptr;
    // Chunks are joined on per-frame outputs; the loss, hidden states and attentions are whole-pass
    // outputs, and --dump writes the padded batch's inputs and outputs unless --chunk asks for chunks.
    const bool chunked = o.chunking.chunk_seconds > 0 && chunkable_field(pipe.head()) && o.labels.empty() && !o.hidden_states &&
                         !o.attentions && (o.dump_dir.empty() || o.chunk_given);
    Json doc{{"model", o.model}, {"model_class", pipe.file().model_class()}};
    doc["results"] = chunked ? chunked_results(pipe, o, lex, doc) : whole_file_results(pipe, o, lex, doc);
    if (o.json) std::printf("%s\n", doc.dump(2).c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return cli::guarded_main("d2v-audio", [&] { return run(parse(argc, argv)); });
}
