// d2v-audio as a user meets it: bad inputs give a readable message and a non-zero exit; odd but
// valid audio formats work and give the same model input as the plain 16-bit file.
#include <sndfile.h>

#include "cli_util.h"
#include "d2v/version.h"
#include "d2v/audio/audio_io.h"
#include "d2v/model_file.h"

namespace {

using d2v::Json;

CliResult run_cli(const std::string& args) { return run_program(D2V_AUDIO_CLI, args); }

std::string model() { return fixtures_dir() + "/audio/ctc/model.gguf"; }
std::string tmp(const std::string& name) { return temp_path("cli_" + name); }

// The first 2 s of jfk.wav as float samples.
std::vector<float> jfk_2s() {
    auto a = d2v::audio::read_audio(shared_data("speech/jfk.wav"), 16000);
    a.samples.resize(32000);
    return a.samples;
}

std::string write_wav(const std::string& name, const std::vector<float>& mono, int format, int channels = 1, int rate = 16000) {
    const std::string path = tmp(name);
    SF_INFO info{};
    info.samplerate = rate;
    info.channels = channels;
    info.format = format;
    SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
    EXPECT_NE(f, nullptr) << sf_strerror(nullptr);
    // Written as 32-bit ints (libsndfile keeps the top bits for each format): exact for the 16-bit
    // source in every format, unlike float writes, which libsndfile scales by 32767.
    std::vector<int> interleaved;
    for (float v : mono)
        for (int c = 0; c < channels; ++c) interleaved.push_back(int(std::lround(double(v) * 32768.0)) * 65536);
    sf_writef_int(f, interleaved.data(), sf_count_t(mono.size()));
    sf_close(f);
    return path;
}

d2v::NdArray dumped_input(const std::string& wav, const std::string& dir) {
    const CliResult r = run_cli("-m " + model() + " --dump " + tmp(dir) + " " + wav);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return d2v::read_npy(tmp(dir) + "/input_values.npy");
}

TEST(Cli, VersionExitsZero) {
    const CliResult r = run_cli("--version");
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.output, std::string("d2v-audio ") + D2V_VERSION_STRING + "\n");
}

TEST(Cli, HelpExitsZero) {
    const CliResult r = run_cli("--help");
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.output.find("usage: d2v-audio"), std::string::npos);
}

TEST(Cli, UnknownOptionIsAUsageError) {
    const CliResult r = run_cli("-m " + model() + " --bogus x.wav");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.output.find("unknown option '--bogus'"), std::string::npos) << r.output;
}

TEST(Cli, MissingAudioFile) { expect_error(run_cli("-m " + model() + " /nonexistent/a.wav"), "cannot open audio file"); }

TEST(Cli, TextFileNamedWav) {
    write_file(tmp("text.wav"), "hello, I am not audio\n");
    expect_error(run_cli("-m " + model() + " " + tmp("text.wav")), "not a readable audio file");
}

TEST(Cli, TruncatedWavHeader) {
    const std::string wav = write_wav("full.wav", jfk_2s(), SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    std::ifstream f(wav, std::ios::binary);
    std::string bytes(std::istreambuf_iterator<char>(f), {});
    write_file(tmp("truncated.wav"), bytes.substr(0, 30));
    expect_error(run_cli("-m " + model() + " " + tmp("truncated.wav")), "not a readable audio file");
}

TEST(Cli, ZeroLengthAudio) {
    const std::string wav = write_wav("empty.wav", {}, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    expect_error(run_cli("-m " + model() + " " + wav), "contains no samples");
}

TEST(Cli, AudioShorterThanTheReceptiveField) {
    const std::string wav = write_wav("short.wav", std::vector<float>(100, 0.1f), SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    const CliResult r = run_cli("-m " + model() + " " + wav);
    expect_error(r, "the model's conv feature encoder needs at least");
    EXPECT_NE(r.output.find(wav), std::string::npos) << "the message should name the file";
}

TEST(Cli, OddSampleFormatsAndStereoGiveTheSameInput) {
    const auto samples = jfk_2s();
    const d2v::NdArray reference = dumped_input(write_wav("pcm16.wav", samples, SF_FORMAT_WAV | SF_FORMAT_PCM_16), "dump16");
    // 24-bit / float hold the 16-bit source exactly; stereo of identical channels mixes down exactly.
    for (auto [name, format, channels] : {std::tuple{"pcm24.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_24, 1},
                                          std::tuple{"float.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 1},
                                          std::tuple{"stereo.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 2},
                                          std::tuple{"flac.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 1}}) {
        SCOPED_TRACE(name);
        EXPECT_TRUE(AllClose(dumped_input(write_wav(name, samples, format, channels), std::string("dump_") + name), reference, 1e-5));
    }
    // 8-bit keeps only 8 bits: the normalised input is a coarser version of the same signal.
    const d2v::NdArray u8 = dumped_input(write_wav("pcm_u8.wav", samples, SF_FORMAT_WAV | SF_FORMAT_PCM_U8), "dump_u8");
    ASSERT_EQ(u8.shape, reference.shape);
    double dot = 0, na = 0, nb = 0;
    for (size_t i = 0; i < u8.data.size(); ++i) {
        dot += double(u8.data[i]) * reference.data[i];
        na += double(u8.data[i]) * u8.data[i];
        nb += double(reference.data[i]) * reference.data[i];
    }
    EXPECT_GT(dot / std::sqrt(na * nb), 0.99) << "8-bit input does not correlate with the 16-bit input";
}

TEST(Cli, ResamplesOtherRatesAndSaysSo) {
    const std::string wav = write_wav("8k.wav", std::vector<float>(8000, 0.0f), SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1, 8000);
    const CliResult r = run_cli("-m " + model() + " " + wav);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("resampled 8000 Hz -> 16000 Hz"), std::string::npos) << r.output;
}

// ---- hostile audio files (issue #10): refused or decoded within bounds, never a memory blow-up

TEST(Cli, FlacHeaderClaimingAnHourOfEightChannelsAllocatesOnlyWhatIsThere) {
    // A real 2 s, 8-channel FLAC whose STREAMINFO claims 1 h (172.8M frames: 5.5 GB as float).
    const std::string flac = write_wav("claims_an_hour.flac", jfk_2s(), SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 8);
    std::ifstream in(flac, std::ios::binary);
    std::string bytes(std::istreambuf_iterator<char>(in), {});
    ASSERT_EQ(bytes.substr(0, 4), "fLaC");
    // STREAMINFO body starts at byte 8; bytes 10..17 hold rate(20) channels-1(3) bits-1(5) total(36).
    uint64_t packed = 0;
    for (int i = 0; i < 8; ++i) packed = packed << 8 | uint8_t(bytes[size_t(18 + i)]);
    packed = (packed & ~((uint64_t(1) << 36) - 1)) | uint64_t(48000) * 3600;
    for (int i = 7; i >= 0; --i, packed >>= 8) bytes[size_t(18 + i)] = char(packed & 0xff);
    write_file(tmp("claims_an_hour_patched.flac"), bytes);
    const CliResult r = run_program_bounded(D2V_AUDIO_CLI, "-m " + model() + " " + tmp("claims_an_hour_patched.flac"), 1024, 60);
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("file is truncated: decoded 32000 of 172800000 frames"), std::string::npos) << r.output;
    EXPECT_LT(r.peak_rss_kb / 1024, 300) << "memory must follow what is decoded, not the header";
}

TEST(Cli, SampleRateBelowTheMinimumIsRefused) {
    // 8 KB at 1 Hz would be resampled x16000 (an 8 KB file once took 276 s and 2.1 GB).
    const std::string wav = write_wav("1hz.wav", std::vector<float>(4000, 0.1f), SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1, 1);
    expect_bounded_error(run_program_bounded(D2V_AUDIO_CLI, "-m " + model() + " " + wav, 1024, 30), "sample rate 1 Hz is outside", 300);
    const std::string low = write_wav("3999hz.wav", std::vector<float>(4000, 0.1f), SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1, 3999);
    expect_bounded_error(run_program_bounded(D2V_AUDIO_CLI, "-m " + model() + " " + low, 1024, 30), "sample rate 3999 Hz is outside", 300);
}

TEST(Cli, TooManyChannelsAreRefused) {
    const std::string wav = write_wav("300ch.wav", std::vector<float>(1000, 0.1f), SF_FORMAT_WAV | SF_FORMAT_PCM_16, 300);
    expect_bounded_error(run_program_bounded(D2V_AUDIO_CLI, "-m " + model() + " " + wav, 1024, 30), "claims 300 channels", 300);
}

TEST(Cli, NanOrInfiniteSamplesAreRefused) {
    for (float bad : {NAN, INFINITY}) {
        std::vector<float> samples = jfk_2s();
        samples[12345] = bad;
        const std::string path = tmp("bad_sample.wav");
        SF_INFO info{};
        info.samplerate = 16000;
        info.channels = 1;
        info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
        SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
        ASSERT_NE(f, nullptr);
        sf_writef_float(f, samples.data(), sf_count_t(samples.size()));
        sf_close(f);
        expect_bounded_error(run_program_bounded(D2V_AUDIO_CLI, "-m " + model() + " " + path, 1024, 30),
                             std::string("sample 12345 (channel 0) is ") + (std::isnan(bad) ? "NaN" : "infinite"), 300);
    }
}

// ---- long-audio options

TEST(Cli, ChunkOptionsAreChecked) {
    const std::string wav = shared_data("speech/jfk.wav");
    for (const char* bad : {"--chunk -1", "--chunk abc", "--chunk 5 --stride 3 3", "--stride 1", "--chunk 1e9"}) {
        SCOPED_TRACE(bad);
        const CliResult r = run_cli("-m " + model() + " " + bad + " " + wav);
        EXPECT_EQ(r.exit_code, 2) << r.output;
    }
    EXPECT_EQ(run_cli("-m " + model() + " - - < " + wav).exit_code, 2) << "stdin twice";
    expect_error(run_cli("-m " + fixtures_dir() + "/audio/xvector/model.gguf --timestamps " + wav), "--timestamps needs a CTC model");
}

TEST(Cli, FileShorterThanAChunkIsTheUnchunkedPass) {
    // jfk.wav is 11 s: one 20 s chunk, no strides, exactly the whole-file logits (--dump without
    // --chunk is the whole-file batch).
    const std::string wav = shared_data("speech/jfk.wav");
    ASSERT_EQ(run_cli("-m " + model() + " --chunk 20 --dump " + tmp("chunk20") + " " + wav).exit_code, 0);
    ASSERT_EQ(run_cli("-m " + model() + " --dump " + tmp("chunk0") + " " + wav).exit_code, 0);
    EXPECT_TRUE(AllClose(d2v::read_npy(tmp("chunk20") + "/logits.npy"), d2v::read_npy(tmp("chunk0") + "/logits.npy"), 0.0));
}

TEST(Cli, StdinGivesTheSameInputAsTheFile) {
    const std::string wav = write_wav("stdin.flac", jfk_2s(), SF_FORMAT_FLAC | SF_FORMAT_PCM_16);
    const CliResult file = run_cli("-m " + model() + " --chunk 0 --json " + wav);
    const CliResult piped = run_program("cat " + wav + " |", std::string(D2V_AUDIO_CLI) + " -m " + model() + " --chunk 0 --json -");
    ASSERT_EQ(file.exit_code, 0) << file.output;
    ASSERT_EQ(piped.exit_code, 0) << piped.output;
    EXPECT_EQ(Json::parse(file.output)["results"][0]["transcript"], Json::parse(piped.output)["results"][0]["transcript"]);
    expect_error(run_program("echo not audio |", std::string(D2V_AUDIO_CLI) + " -m " + model() + " -"), "standard input: not a readable audio file");
}

TEST(Cli, WholeFileHeadsRefuseWhatOnePassCannotHold) {
    // Sequence classification / x-vector pool the whole file, so they are not chunked; above the
    // 2 GB single-pass budget (81 min for this tiny model) the file is refused while decoding.
    // 90 minutes of silence are a small FLAC.
    const std::string flac = tmp("silence_90min.flac");
    {
        SF_INFO info{};
        info.samplerate = 16000;
        info.channels = 1;
        info.format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
        SNDFILE* f = sf_open(flac.c_str(), SFM_WRITE, &info);
        ASSERT_NE(f, nullptr);
        const std::vector<short> minute(16000 * 60, 0);
        for (int m = 0; m < 90; ++m) sf_write_short(f, minute.data(), sf_count_t(minute.size()));
        sf_close(f);
    }
    for (const char* head : {"xvector", "seqcls"}) {
        SCOPED_TRACE(head);
        expect_bounded_error(run_program_bounded(D2V_AUDIO_CLI, "-m " + fixtures_dir() + "/audio/" + head + "/model.gguf " + flac, 2048, 120),
                             "cut the file into parts", 1024);
    }
}

TEST(Cli, TruncatedModelFile) {
    std::ifstream f(model(), std::ios::binary);
    std::string bytes(std::istreambuf_iterator<char>(f), {});
    write_file(tmp("truncated.gguf"), bytes.substr(0, bytes.size() / 2));
    expect_error(run_cli("-m " + tmp("truncated.gguf") + " " + shared_data("speech/jfk.wav")), "outside the file");
}

TEST(Cli, ModelOfAnotherModalityIsRefused) {
    for (const char* other : {"data2vec-text", "data2vec-vision"})
        expect_error(run_cli("-m " + fixtures_dir() + "/other/" + other + ".gguf " + shared_data("speech/jfk.wav")),
                     std::string("holds a '") + other + "' model");
}

TEST(Cli, TranscribesAndDumpsEveryField) {
    const CliResult r = run_cli("-m " + model() + " --json --output-hidden-states --dump " + tmp("dump_all") + " " +
                                shared_data("speech/jfk.wav"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("\"transcript\""), std::string::npos) << r.output;
    for (const char* f : {"input_values", "attention_mask", "logits", "hidden_states.0", "hidden_states.2"})
        EXPECT_TRUE(fs::exists(tmp("dump_all") + "/" + f + ".npy")) << f;
}

}  // namespace
