#include "d2v/audio/audio_io.h"

#include <sndfile.h>
#include <soxr.h>

#include <cmath>

#include "d2v/tensor.h"

namespace d2v::audio {

// Refuse inputs that would need more than this many samples in memory (~1 hour at 48 kHz).
constexpr int64_t kMaxFrames = int64_t(48000) * 3600;

std::vector<float> resample(const std::vector<float>& in, int64_t from_rate, int64_t to_rate) {
    if (from_rate == to_rate || in.empty()) return in;
    std::vector<double> src(in.begin(), in.end());
    const size_t out_len = size_t(std::ceil(double(in.size()) * double(to_rate) / double(from_rate)));
    std::vector<double> dst(out_len + 16);
    size_t done = 0;
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT64_I, SOXR_FLOAT64_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
    soxr_error_t err = soxr_oneshot(double(from_rate), double(to_rate), 1, src.data(), src.size(), nullptr, dst.data(),
                                    dst.size(), &done, &io, &q, nullptr);
    if (err) throw Error(std::string("resampling failed: ") + err);
    return std::vector<float>(dst.begin(), dst.begin() + std::ptrdiff_t(done));
}

DecodedAudio read_audio(const std::string& path, int64_t target_rate) {
    SF_INFO info{};
    SNDFILE* file = sf_open(path.c_str(), SFM_READ, &info);
    if (!file) {
        std::string why = sf_strerror(nullptr);
        FILE* probe = std::fopen(path.c_str(), "rb");
        if (!probe) throw Error(path + ": cannot open audio file (no such file or not readable)");
        std::fclose(probe);
        throw Error(path + ": not a readable audio file (" + why + ")");
    }
    struct Closer { SNDFILE* f; ~Closer() { sf_close(f); } } closer{file};
    if (info.channels <= 0 || info.samplerate <= 0) throw Error(path + ": audio header has no channels or no sample rate");
    if (info.frames <= 0) throw Error(path + ": audio file contains no samples");
    if (info.frames > kMaxFrames) throw Error(path + ": audio is too long (" + std::to_string(info.frames) + " frames; limit is 1 hour at 48 kHz)");
    std::vector<float> interleaved(size_t(info.frames) * size_t(info.channels));
    const sf_count_t got = sf_readf_float(file, interleaved.data(), info.frames);
    if (got <= 0) throw Error(path + ": could not decode any audio (" + std::string(sf_strerror(file)) + ")");
    DecodedAudio out;
    out.source_rate = info.samplerate;
    out.source_channels = info.channels;
    out.samples.resize(size_t(got));
    // libsndfile scales integer PCM to [-1, 1) by 1/2^(bits-1), the same as soundfile/torchaudio.
    for (sf_count_t i = 0; i < got; ++i) {
        double sum = 0;
        for (int c = 0; c < info.channels; ++c) sum += interleaved[size_t(i) * size_t(info.channels) + size_t(c)];
        out.samples[size_t(i)] = float(sum / info.channels);
    }
    if (got < info.frames) out.notes += "file is truncated: decoded " + std::to_string(got) + " of " + std::to_string(info.frames) + " frames; ";
    if (info.channels > 1) out.notes += "mixed " + std::to_string(info.channels) + " channels down to mono; ";
    if (info.samplerate != target_rate) {
        out.samples = resample(out.samples, info.samplerate, target_rate);
        out.notes += "resampled " + std::to_string(info.samplerate) + " Hz -> " + std::to_string(target_rate) + " Hz (soxr HQ); ";
    }
    return out;
}

}  // namespace d2v::audio
