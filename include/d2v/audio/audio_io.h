// Reading audio files: WAV/FLAC/OGG (anything libsndfile reads, any bit depth), mixed down to mono,
// resampled with libsoxr (HQ) to the model's rate. Transformers refuses a wrong rate; we resample
// and say so through `notes`.
#pragma once
#include <string>
#include <vector>

namespace d2v::audio {

struct DecodedAudio {
    std::vector<float> samples;  // mono, at the requested rate
    int64_t source_rate = 0;
    int source_channels = 0;
    std::string notes;           // what was done to the signal (mix-down, resampling), empty if nothing
};

DecodedAudio read_audio(const std::string& path, int64_t target_rate);

// libsoxr HQ resampling of a mono float signal (double-precision internally).
std::vector<float> resample(const std::vector<float>& in, int64_t from_rate, int64_t to_rate);

}  // namespace d2v::audio
