// d2v-audio as a user meets it: bad inputs give a readable message and a non-zero exit; odd but
// valid audio formats work and give the same model input as the plain 16-bit file.
#include <sndfile.h>

#include "cli_util.h"
#include "d2v/audio/audio_io.h"

namespace {

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
