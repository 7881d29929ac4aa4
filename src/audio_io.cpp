#include "d2v/audio/audio_io.h"

#include <sndfile.h>
#include <soxr.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "d2v/tensor.h"

namespace d2v::audio {

namespace {

// Frames decoded per read: small enough that a many-channel file stays a few MB per block.
constexpr sf_count_t kBlockFrames = 4096;

std::string display_name(const std::string& path) { return path == "-" ? "standard input" : path; }

// Standard input for libsndfile's virtual I/O, read as the decoder asks for it. libsndfile's own
// pipe mode cannot replay the bytes it sniffed the format from (FLAC then "loses sync"), so the
// first kPrefix bytes are kept for seeks back into the header, and a window of kWindow bytes behind
// the read position for the decoders' short look-backs; nothing else is kept, whatever the length.
class StdinSource {
public:
    static constexpr int64_t kPrefix = 1 << 20, kWindow = 1 << 20;

    SF_VIRTUAL_IO io() const { return SF_VIRTUAL_IO{&length, &seek, &read, &write, &tell}; }

private:
    std::string prefix_, window_;  // stream bytes [0, prefix_.size()) and [window_begin_, end_)
    int64_t window_begin_ = 0, end_ = 0, pos_ = 0;
    bool eof_ = false;

    bool fill_to(int64_t wanted) {  // reads stdin until end_ >= wanted or EOF
        char buf[65536];
        while (end_ < wanted && !eof_) {
            const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
            if (n <= 0) {
                if (n < 0 && errno == EINTR) continue;
                eof_ = true;
                break;
            }
            const int64_t to_prefix = std::clamp<int64_t>(kPrefix - end_, 0, n);
            prefix_.append(buf, size_t(to_prefix));
            if (window_.empty()) window_begin_ = end_ + to_prefix;
            window_.append(buf + to_prefix, size_t(n - to_prefix));
            end_ += n;
        }
        return end_ >= wanted;
    }
    void trim() {  // drop window bytes more than kWindow behind the read position
        const int64_t drop = pos_ - kWindow - window_begin_;
        if (drop > kWindow) {  // in large steps: erase() moves the rest
            window_.erase(0, size_t(drop));
            window_begin_ += drop;
        }
    }
    static StdinSource& self(void* p) { return *static_cast<StdinSource*>(p); }
    // The length is unknown until the end; "very long" lets decoders read on until EOF.
    static sf_count_t length(void*) { return SF_COUNT_MAX / 2; }
    static sf_count_t tell(void* p) { return self(p).pos_; }
    static sf_count_t seek(sf_count_t offset, int whence, void* p) {
        StdinSource& s = self(p);
        const int64_t target = whence == SEEK_SET ? offset : whence == SEEK_CUR ? s.pos_ + offset : -1;
        if (target < 0) return -1;  // SEEK_END: not without reading everything
        if (target < s.end_ && target >= int64_t(s.prefix_.size()) && target < s.window_begin_) return -1;  // dropped
        s.pos_ = target;
        return s.pos_;
    }
    static sf_count_t read(void* ptr, sf_count_t count, void* p) {
        StdinSource& s = self(p);
        s.fill_to(s.pos_ + count);
        char* out = static_cast<char*>(ptr);
        sf_count_t done = 0;
        while (done < count && s.pos_ < s.end_) {
            if (s.pos_ < int64_t(s.prefix_.size())) {
                out[done++] = s.prefix_[size_t(s.pos_++)];
            } else if (s.pos_ >= s.window_begin_) {
                const int64_t n = std::min<int64_t>(count - done, s.end_ - s.pos_);
                std::memcpy(out + done, s.window_.data() + (s.pos_ - s.window_begin_), size_t(n));
                done += n;
                s.pos_ += n;
            } else {
                break;  // inside dropped bytes (seek refuses to go there)
            }
        }
        s.trim();
        return done;
    }
    static sf_count_t write(const void*, sf_count_t, void*) { return 0; }
};

}  // namespace

// ---- resampling

struct StreamResampler::State {
    soxr_t soxr = nullptr;
    double ratio = 1;
    std::vector<double> in, out;
    ~State() {
        if (soxr) soxr_delete(soxr);
    }
};

StreamResampler::StreamResampler(int64_t from_rate, int64_t to_rate) : state_(std::make_unique<State>()) {
    soxr_error_t err = nullptr;
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT64_I, SOXR_FLOAT64_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
    state_->soxr = soxr_create(double(from_rate), double(to_rate), 1, &err, &io, &q, nullptr);
    if (err || !state_->soxr) throw Error(std::string("cannot create the resampler: ") + (err ? err : "unknown error"));
    state_->ratio = double(to_rate) / double(from_rate);
}

StreamResampler::~StreamResampler() = default;

void StreamResampler::process(const float* in, size_t n, std::vector<float>& out) {
    State& s = *state_;
    s.in.assign(in, in + n);  // float -> double: soxr runs in double precision
    s.out.resize(size_t(double(n) * s.ratio) + 256);
    const double* src = n ? s.in.data() : nullptr;  // a null input tells soxr the stream has ended
    size_t left = n;
    for (;;) {
        size_t used = 0, made = 0;
        if (soxr_error_t err = soxr_process(s.soxr, src, left, &used, s.out.data(), s.out.size(), &made))
            throw Error(std::string("resampling failed: ") + err);
        out.insert(out.end(), s.out.begin(), s.out.begin() + std::ptrdiff_t(made));
        if (src) {
            src += used;
            left -= used;
        }
        // Done when the input is consumed and soxr had no more output than the buffer held.
        if (left == 0 && made < s.out.size()) break;
    }
}

std::vector<float> resample(const std::vector<float>& in, int64_t from_rate, int64_t to_rate) {
    if (from_rate == to_rate || in.empty()) return in;
    StreamResampler r(from_rate, to_rate);
    std::vector<float> out;
    r.process(in.data(), in.size(), out);
    r.process(nullptr, 0, out);
    return out;
}

// ---- decoding

struct AudioReader::State {
    std::string path;
    int64_t target_rate = 0;
    SNDFILE* file = nullptr;
    SF_INFO info{};
    std::unique_ptr<StdinSource> stdin_source;
    SF_VIRTUAL_IO stdin_io{};
    std::unique_ptr<StreamResampler> resampler;
    std::vector<float> interleaved, mono;
    int64_t decoded = 0;
    bool finished = false;
    ~State() {
        if (file) sf_close(file);
    }
};

AudioReader::AudioReader(const std::string& path, int64_t target_rate) : state_(std::make_unique<State>()) {
    State& s = *state_;
    s.path = path;
    s.target_rate = target_rate;
    const std::string name = display_name(path);
    if (path == "-") {
        s.stdin_source = std::make_unique<StdinSource>();
        s.stdin_io = s.stdin_source->io();
        s.file = sf_open_virtual(&s.stdin_io, SFM_READ, &s.info, s.stdin_source.get());
    } else {
        s.file = sf_open(path.c_str(), SFM_READ, &s.info);
    }
    if (!s.file) {
        const std::string why = sf_strerror(nullptr);
        if (path != "-") {
            FILE* probe = std::fopen(path.c_str(), "rb");
            if (!probe) throw Error(name + ": cannot open audio file (no such file or not readable)");
            std::fclose(probe);
        }
        throw Error(name + ": not a readable audio file (" + why + ")");
    }
    const SF_INFO& info = s.info;
    if (info.channels <= 0 || info.samplerate <= 0) throw Error(name + ": audio header has no channels or no sample rate");
    if (info.channels > kMaxChannels)
        throw Error(name + ": audio header claims " + std::to_string(info.channels) + " channels; at most " +
                    std::to_string(kMaxChannels) + " are accepted");
    if (info.samplerate < kMinSourceRate || info.samplerate > kMaxSourceRate)
        throw Error(name + ": sample rate " + std::to_string(info.samplerate) + " Hz is outside the accepted " +
                    std::to_string(kMinSourceRate) + ".." + std::to_string(kMaxSourceRate) + " Hz");
    if (info.frames == 0) throw Error(name + ": audio file contains no samples");
    if (info.samplerate != target_rate) s.resampler = std::make_unique<StreamResampler>(info.samplerate, target_rate);
    s.interleaved.resize(size_t(kBlockFrames) * size_t(info.channels));
}

AudioReader::~AudioReader() = default;

bool AudioReader::read(std::vector<float>& out) {
    State& s = *state_;
    if (s.finished) return false;
    const sf_count_t got = sf_readf_float(s.file, s.interleaved.data(), kBlockFrames);
    if (got <= 0) {
        s.finished = true;
        if (!s.resampler) return false;
        const size_t before = out.size();
        s.resampler->process(nullptr, 0, out);
        return out.size() > before;
    }
    const int channels = s.info.channels;
    s.mono.resize(size_t(got));
    // libsndfile scales integer PCM to [-1, 1) by 1/2^(bits-1), the same as soundfile/torchaudio.
    for (sf_count_t i = 0; i < got; ++i) {
        double sum = 0;
        for (int c = 0; c < channels; ++c) {
            const float v = s.interleaved[size_t(i) * size_t(channels) + size_t(c)];
            if (!std::isfinite(v))
                throw Error(display_name(s.path) + ": sample " + std::to_string(s.decoded + i) + " (channel " + std::to_string(c) +
                            ") is " + (std::isnan(v) ? "NaN" : "infinite") + "; the audio is corrupt");
            sum += v;
        }
        s.mono[size_t(i)] = float(sum / channels);
    }
    s.decoded += got;
    if (s.resampler) s.resampler->process(s.mono.data(), s.mono.size(), out);
    else out.insert(out.end(), s.mono.begin(), s.mono.end());
    return true;
}

const std::string& AudioReader::path() const { return state_->path; }
int64_t AudioReader::source_rate() const { return state_->info.samplerate; }
int AudioReader::source_channels() const { return state_->info.channels; }
int64_t AudioReader::source_frames_decoded() const { return state_->decoded; }

std::string AudioReader::notes() const {
    const State& s = *state_;
    std::string notes;
    // A stream's header may not know its length (writers to a pipe put a placeholder there).
    const bool length_known = s.info.frames > 0 && s.info.frames < SF_COUNT_MAX && !s.stdin_source;
    if (s.finished && length_known && s.decoded < s.info.frames)
        notes += "file is truncated: decoded " + std::to_string(s.decoded) + " of " + std::to_string(s.info.frames) + " frames; ";
    if (s.info.channels > 1) notes += "mixed " + std::to_string(s.info.channels) + " channels down to mono; ";
    if (s.resampler)
        notes += "resampled " + std::to_string(s.info.samplerate) + " Hz -> " + std::to_string(s.target_rate) + " Hz (soxr HQ); ";
    return notes;
}

DecodedAudio read_audio(const std::string& path, int64_t target_rate, double max_seconds) {
    AudioReader reader(path, target_rate);
    DecodedAudio out;
    const double limit = max_seconds * double(target_rate);
    while (reader.read(out.samples))
        if (double(out.samples.size()) > limit)
            throw Error(display_name(path) + ": audio is longer than the limit of " + std::to_string(int64_t(max_seconds)) +
                        " s for reading a whole file at once");
    if (reader.source_frames_decoded() == 0) throw Error(display_name(path) + ": audio file contains no samples");
    out.source_rate = reader.source_rate();
    out.source_channels = reader.source_channels();
    out.notes = reader.notes();
    return out;
}

}  // namespace d2v::audio
