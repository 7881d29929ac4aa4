// Long audio, cut the way Transformers' ASR pipeline cuts it (chunk_length_s, stride_length_s):
// overlapping chunks, each normalised and run on its own; the frames of each chunk's left and
// right strides are dropped and the rest joined. Memory is bounded by the chunk, not the file.
//
//   ChunkPlan plan = plan_chunks(ChunkSettings{}, pipe);    // 10 s chunks, strides 10/6 s
//   Chunker chunker(plan);
//   auto on_chunk = [&](const AudioChunk& c) { NdArray rows = chunk_frames(pipe, plan, c); ... };
//   while (reader.read(block)) { chunker.push(block.data(), block.size(), on_chunk); block.clear(); }
//   chunker.finish(on_chunk);
//
// Reproduced exactly (transformers/pipelines/automatic_speech_recognition.py): chunk and strides
// are rounded to whole logit frames (Python's round: half to even); chunks start every
// chunk - left - right samples; a chunk reaching the end of the input is the last (right stride 0;
// the first has left stride 0); the strides are mapped to frames by rescale_stride, which counts a
// chunk as round(samples / ratio) frames, one more than the model outputs for a full chunk, so a
// full chunk loses one frame fewer on the right than its stride - we keep exactly the frames the
// pipeline keeps. A file no longer than one chunk is one pass with no strides: the unchunked result.
#pragma once
#include <cmath>
#include <optional>

#include "d2v/audio/pipeline.h"

namespace d2v::audio {

// 10 s, as Transformers' docs run CTC models: past a few seconds of context a CTC model gains
// little, while the conv front end's memory grows with the chunk (about 100 MB at base size).
constexpr double kDefaultChunkSeconds = 10;

struct ChunkSettings {
    double chunk_seconds = kDefaultChunkSeconds;  // a chunk's length
    std::optional<double> stride_left_seconds;    // default chunk_seconds / 6, as Transformers
    std::optional<double> stride_right_seconds;   // default chunk_seconds / 6
};

struct ChunkPlan {  // in samples, each a multiple of ratio
    int64_t chunk = 0, stride_left = 0, stride_right = 0;
    int64_t ratio = 1;  // input samples per output frame
    int64_t step() const { return chunk - stride_left - stride_right; }
};

// Input samples per output frame: Transformers' inputs_to_logits_ratio (the conv strides' product).
// Transformers ignores the adapter there (and so would keep the wrong frames of an adapter model);
// we count its strides too.
inline int64_t inputs_to_logits_ratio(const AudioConfig& c) {
    int64_t r = 1;
    for (auto s : c.conv_stride) r *= s;
    if (c.add_adapter)
        for (int64_t i = 0; i < c.num_adapter_layers; ++i) r *= c.adapter_stride;
    return r;
}

namespace detail {
inline int64_t python_round(double x) { return int64_t(std::nearbyint(x)); }  // half to even, as Python's round
}  // namespace detail

inline ChunkPlan plan_chunks(const ChunkSettings& s, int64_t sampling_rate, int64_t ratio, int64_t receptive_field) {
    const double left_s = s.stride_left_seconds.value_or(s.chunk_seconds / 6);
    const double right_s = s.stride_right_seconds.value_or(s.chunk_seconds / 6);
    if (!(s.chunk_seconds > 0) || !(left_s >= 0) || !(right_s >= 0) || s.chunk_seconds > 3600 || left_s > 3600 || right_s > 3600)
        throw Error("chunk length must be in (0, 3600] s and strides in [0, 3600] s");
    auto align = [&](double seconds) { return detail::python_round(seconds * double(sampling_rate) / double(ratio)) * ratio; };
    ChunkPlan p{align(s.chunk_seconds), align(left_s), align(right_s), ratio};
    if (p.chunk < receptive_field)
        throw Error("chunk of " + std::to_string(s.chunk_seconds) + " s is shorter than the model's receptive field");
    // Transformers refuses chunk < left + right; equal would make its step 0 (range() then raises).
    if (p.step() <= 0) throw Error("chunk length must be longer than the two strides together");
    return p;
}

inline ChunkPlan plan_chunks(const ChunkSettings& s, const AudioPipeline& pipe) {
    return plan_chunks(s, pipe.sampling_rate(), inputs_to_logits_ratio(pipe.config()), receptive_field(pipe.config()));
}

struct AudioChunk {
    const float* samples = nullptr;
    int64_t size = 0;
    int64_t start = 0;  // index of its first sample in the whole input
    int64_t stride_left = 0, stride_right = 0;
    bool is_last = false;
};

// Transformers' chunk_iter over a stream: holds at most one chunk plus the block being pushed.
class Chunker {
public:
    explicit Chunker(const ChunkPlan& plan) : plan_(plan) {}

    // Emits every chunk known not to be the last (more input follows its end).
    template <typename OnChunk>
    void push(const float* x, size_t n, OnChunk&& on_chunk) {
        buffer_.insert(buffer_.end(), x, x + n);
        while (int64_t(buffer_.size()) > plan_.chunk) {
            on_chunk(AudioChunk{buffer_.data(), plan_.chunk, start_, start_ == 0 ? 0 : plan_.stride_left, plan_.stride_right, false});
            buffer_.erase(buffer_.begin(), buffer_.begin() + plan_.step());
            start_ += plan_.step();
        }
    }

    // Emits the last chunk (nothing if no sample was ever pushed).
    template <typename OnChunk>
    void finish(OnChunk&& on_chunk) {
        if (buffer_.empty()) return;
        const int64_t left = start_ == 0 ? 0 : plan_.stride_left;
        // chunk_iter skips a last chunk that lies inside the previous one's stride; after a full
        // chunk the rest is always longer than both strides, so this only guards the arithmetic.
        if (int64_t(buffer_.size()) > left) on_chunk(AudioChunk{buffer_.data(), int64_t(buffer_.size()), start_, left, 0, true});
        buffer_.clear();
    }

    int64_t samples_seen() const { return start_ + int64_t(buffer_.size()); }

private:
    ChunkPlan plan_;
    std::vector<float> buffer_;
    int64_t start_ = 0;
};

// The frames of a chunk's output that the pipeline keeps: rescale_stride + items[:, left:n - right].
struct FrameRange {
    int64_t begin = 0, end = 0;
};

inline FrameRange kept_frames(const AudioChunk& c, int64_t ratio, int64_t output_frames) {
    const int64_t token_n = detail::python_round(double(c.size) * (1.0 / double(ratio)));
    const int64_t left = detail::python_round(double(c.stride_left) / double(c.size) * double(token_n));
    const int64_t right = detail::python_round(double(c.stride_right) / double(c.size) * double(token_n));
    FrameRange r{std::min(left, output_frames), std::clamp<int64_t>(token_n - right, 0, output_frames)};
    r.end = std::max(r.end, r.begin);
    return r;
}

// The per-frame field a head's chunks are joined on; heads that pool the whole file have none.
inline std::optional<std::string> chunkable_field(AudioHead head) {
    switch (head) {
        case AudioHead::CTC:
        case AudioHead::FrameClassification: return "logits";
        case AudioHead::Base: return "last_hidden_state";
        default: return std::nullopt;
    }
}

// Runs one chunk (normalised on its own, as the pipeline's feature extractor call does) and returns
// the kept frames of the head's per-frame field, [frames, width].
inline NdArray chunk_frames(const AudioPipeline& pipe, const ChunkPlan& plan, const AudioChunk& c) {
    const auto field = chunkable_field(pipe.head());
    if (!field) throw Error(pipe.file().model_class() + " pools the whole input: it cannot be run in chunks");
    // A last chunk shorter than the receptive field (only possible with a left stride under it) has
    // no output frame; Transformers' conv would raise. A file that short is refused by prepare().
    if (c.start > 0 && c.size < receptive_field(pipe.config())) return NdArray{{0, 0}, {}};
    const NamedOutputs out = pipe.run(pipe.prepare({std::vector<float>(c.samples, c.samples + c.size)}));
    const NdArray& all = out.at(*field);  // [1, T, width]
    const int64_t T = all.shape[1], width = all.shape[2];
    const FrameRange keep = kept_frames(c, plan.ratio, T);
    NdArray rows;
    rows.shape = {keep.end - keep.begin, width};
    rows.data.assign(all.data.begin() + keep.begin * width, all.data.begin() + keep.end * width);
    return rows;
}

// Activation memory of one unchunked forward pass over `samples`, estimated from the largest
// activation, the first conv layer's output (conv_dim[0] floats per conv_stride[0] samples), counted
// twice; measured 1.5 times at base size (66 s: 1395 MB peak RSS, 645 MB of it above the weights).
// Plus what the options keep (attention probabilities grow with the square of the frames); the
// attention scores themselves are computed in bounded blocks (core/attention.h).
inline double whole_pass_bytes(const AudioConfig& c, int64_t samples, const RunOptions& options = {}) {
    double bytes = double(samples) / double(c.conv_stride.at(0)) * double(c.conv_dim.at(0)) * 4.0 * 2.0;
    const double frames = double(std::max<int64_t>(feature_length(c, samples, false), 0));
    if (options.attentions) bytes += double(c.num_hidden_layers * c.num_attention_heads) * frames * frames * 4.0;
    if (options.hidden_states) bytes += double(c.num_hidden_layers + 1) * frames * double(c.hidden_size) * 4.0;
    return bytes;
}

}  // namespace d2v::audio
