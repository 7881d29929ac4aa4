// Reading audio files: WAV/FLAC/OGG (anything libsndfile reads, any bit depth), mixed down to mono,
// resampled with libsoxr (HQ) to the model's rate. Transformers refuses a wrong rate; we resample
// and say so through `notes`.
//
// Decoding is block by block: memory holds one block of the file plus what the caller keeps, never
// an amount taken from the header (a header can claim hours of audio the file does not hold).
// "-" reads standard input (a pipe works for WAV, FLAC and OGG: libsndfile reads them without seeking).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace d2v::audio {

// Refused source sample rates. Below 4 kHz no speech format is in use (telephony is 8 kHz) and the
// signal holds under 2 kHz of bandwidth, so upsampling it to a 16 kHz model is garbage anyway; the
// bound also caps the resampling factor (output samples per input sample) at target_rate / 4000.
// Above 768 kHz (twice the highest studio rate) is not audio we know how to treat.
constexpr int64_t kMinSourceRate = 4000;
constexpr int64_t kMaxSourceRate = 768000;
// More channels than any real recording (third-order ambisonics has 16); one block of that many
// channels is still small.
constexpr int kMaxChannels = 256;

// libsoxr HQ resampling of a mono signal, fed in pieces: the output does not depend on how the
// input is split (soxr buffers internally), so streaming and whole-file reads give the same samples.
class StreamResampler {
public:
    StreamResampler(int64_t from_rate, int64_t to_rate);
    ~StreamResampler();
    StreamResampler(const StreamResampler&) = delete;
    StreamResampler& operator=(const StreamResampler&) = delete;
    // Appends the resampled samples of `in` (n samples) to `out`; n = 0 flushes the filter's tail.
    void process(const float* in, size_t n, std::vector<float>& out);

private:
    struct State;
    std::unique_ptr<State> state_;
};

// A file (or stdin) decoded block by block into mono samples at target_rate.
class AudioReader {
public:
    AudioReader(const std::string& path, int64_t target_rate);
    ~AudioReader();
    AudioReader(const AudioReader&) = delete;
    AudioReader& operator=(const AudioReader&) = delete;

    // Appends the next block of samples to `out`; false once the stream is exhausted (then notes()
    // is final). Throws on NaN/Inf samples: they are a corrupt file, and would silently turn every
    // model output into NaN.
    bool read(std::vector<float>& out);
    const std::string& path() const;
    int64_t source_rate() const;
    int source_channels() const;
    int64_t source_frames_decoded() const;
    std::string notes() const;  // what was done to the signal (mix-down, resampling, truncation)

private:
    struct State;
    std::unique_ptr<State> state_;
};

struct DecodedAudio {
    std::vector<float> samples;  // mono, at the requested rate
    int64_t source_rate = 0;
    int source_channels = 0;
    std::string notes;           // what was done to the signal (mix-down, resampling), empty if nothing
};

// The whole file at once; refuses more than max_seconds of decoded audio (checked while decoding,
// so the refusal costs at most that much memory).
constexpr double kDefaultMaxSeconds = 4 * 3600.0;
DecodedAudio read_audio(const std::string& path, int64_t target_rate, double max_seconds = kDefaultMaxSeconds);

// libsoxr HQ resampling of a mono float signal (double-precision internally).
std::vector<float> resample(const std::vector<float>& in, int64_t from_rate, int64_t to_rate);

}  // namespace d2v::audio
