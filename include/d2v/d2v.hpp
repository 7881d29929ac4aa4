// data2vec.cpp for applications: load a model file, run it, read its outputs and decoded result.
//
//   #include "d2v/d2v.hpp"
//
//   d2v::Model model("models/digits-ctc.gguf");             // any data2vec-audio/-text/-vision file
//   d2v::Result r = model.run_audio_files({"samples/seven.wav"});
//   std::cout << r.items[0].text << "\n";                   // "SEVEN"
//   const d2v::Array& logits = r.outputs.at("logits");      // shape [1, frames, vocab]
//
// One model, many threads: every run_* method is const and may be called concurrently on one Model.
//
// This header is all an application includes: the model code (Eigen, oneDNN, the tokenizer, the
// decoders) is compiled once into libd2v with the library's own optimisation, so a Debug build of
// the application runs at the library's speed and compiles in about a second. Failures (bad file,
// bad input) throw std::runtime_error whose what() is a message meant for the end user. To compose
// your own model from the building blocks, include the d2v/core, d2v/kernels and d2v/<modality>
// headers instead (target d2v::core).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "d2v/version.h"

namespace d2v {

// Threads for the matrix products and the parallel loops of every model (process-wide).
void set_num_threads(int n);

enum class Modality { Audio, Text, Vision };

// A tensor named like the Transformers output field ("logits", "last_hidden_state",
// "hidden_states.3", "input_values", ...): row-major float32; integer fields (attention_mask,
// input_ids) hold exact integers and say so.
struct Array {
    std::vector<int64_t> shape;
    std::vector<float> data;
    bool is_integer = false;
};
using Outputs = std::map<std::string, Array>;

// A class (or token, or choice) with its probability.
struct Label {
    std::string label;
    int64_t id = -1;
    float score = 0.0f;
};

// A labelled piece of the input. Token classification: a word, bytes [start, end) of the text;
// audio frame classification: frames [start, end) with one label (Result::seconds_per_frame);
// question answering: the answer, bytes [start, end) of the context, score = start + end logit;
// fill-mask: the <mask> at token position start (end = start + 1), labels = its top-k tokens.
struct Span {
    int64_t start = 0, end = 0;
    std::string text;
    std::vector<Label> labels;  // best first
};

// Class id per pixel at the image's own size (semantic segmentation).
struct ClassMap {
    int64_t width = 0, height = 0;
    std::vector<int32_t> ids;  // row-major, width * height
};

// What the head means for one input (one audio, one text (with its pair/choices), one image).
// Only the fields of the model's head are filled.
struct Item {
    std::string text;           // CTC transcript; generated text (causal LM); the answer (QA)
    std::vector<Label> labels;  // classification: top-k classes (regression: one entry, the value);
                                // multiple choice: every choice in order (softmax over choices)
    std::vector<Span> spans;    // token classification, frame classification, QA, fill-mask
    ClassMap mask;              // semantic segmentation
    std::vector<int64_t> token_ids;  // causal LM: the generated tokens (without the prompt)
};

struct Result {
    Outputs outputs;  // every model output plus the model inputs, as the CLIs' --dump writes them
    std::vector<Item> items;
    double seconds_per_frame = 0.0;  // audio: duration of one output frame
    std::vector<std::string> notes;  // what was done to the input: resampling, truncation, UTF-8 repair
};

struct AudioOptions {
    int top_k = 5;  // classification labels per item
    bool hidden_states = false, attentions = false;
    std::vector<std::string> words;  // CTC: transcribe with these words only (empty: greedy decoding)
};

// One text input and the fields its head needs.
struct TextInput {
    std::string text;                  // every head but QA
    std::string pair;                  // sequence classification / base model: optional second text
    std::string question, context;     // question answering
    std::vector<std::string> choices;  // multiple choice: the endings (at least two)
};

struct TextOptions {
    int top_k = 5;                   // labels / fill-mask tokens to report
    bool truncate = true;            // false: refuse an input longer than the model's maximum
    int64_t max_answer_length = 30;  // question answering, in tokens
    // causal LM generation (defaults: greedy, as Transformers' generate())
    int64_t max_new_tokens = 20;
    bool sample = false;
    int64_t sample_top_k = 0;  // 0: off
    float top_p = 1.0f, temperature = 1.0f;
    uint64_t seed = 0;
    bool hidden_states = false, attentions = false;
};

struct RgbImage {
    int64_t width = 0, height = 0;
    std::vector<uint8_t> rgb;  // 8-bit RGB, HWC row-major (height * width * 3 bytes)
};

struct VisionOptions {
    int top_k = 5;
    bool hidden_states = false, attentions = false;
};

class Model {
public:
    // Reads and validates the whole file (every tensor against the config); throws on any problem.
    explicit Model(const std::string& path);
    ~Model();
    Model(Model&&) noexcept;
    Model& operator=(Model&&) noexcept;

    Modality modality() const;
    const std::string& model_class() const;  // "Data2VecAudioForCTC", ...
    int64_t sampling_rate() const;           // audio models: the rate inputs must have (0 otherwise)
    const std::vector<std::string>& labels() const;  // id2label (empty for heads without classes)

    // Audio: mono float samples at sampling_rate(); several are padded into one batch.
    Result run_audio(const std::vector<std::vector<float>>& waves, const AudioOptions& = {}) const;
    // Audio files (WAV/FLAC/OGG), mixed down and resampled to sampling_rate().
    Result run_audio_files(const std::vector<std::string>& paths, const AudioOptions& = {}) const;
    // Text: one input (invalid UTF-8 is replaced by U+FFFD, as Python's errors="replace").
    Result run_text(const TextInput& input, const TextOptions& = {}) const;
    // Images (all preprocessed to one size, as the model's image processor does).
    Result run_images(const std::vector<RgbImage>& images, const VisionOptions& = {}) const;
    Result run_image_files(const std::vector<std::string>& paths, const VisionOptions& = {}) const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

// Reads an image file the way the model's preprocessing expects (PIL's convert("RGB")).
RgbImage read_image(const std::string& path);

}  // namespace d2v
