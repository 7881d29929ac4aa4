// Long audio: chunked inference equals Transformers' ASR pipeline (logits, transcript, word
// timestamps) on a minute of real speech; stdin streams; memory does not grow with the file.
//
// Reference: tests/fixtures/audio/long, made by weights_tools/make_long_audio_fixtures.py with the
// pipeline on models/digits-ctc.gguf rebuilt in PyTorch. The clip is rebuilt here from the recipe
// (FSDD recordings + silence, 8 kHz) and resampled by d2v-audio, as the generator resampled it.
// Tolerances: joined logits 1e-4 (the project's model tolerance; python-soxr and libsoxr agree to
// ~1e-7 on these inputs, see test_audio_parity); transcripts and words exact; times exact doubles
// (computed as frames * ratio / rate in the pipeline's order).
#include <sndfile.h>

#include "cli_util.h"
#include "d2v/audio/chunking.h"

namespace {

using d2v::Json;
using namespace d2v::audio;

std::string long_dir() { return fixtures_dir() + "/audio/long"; }
std::string digits_model() { return std::string(D2V_SOURCE_DIR) + "/models/digits-ctc.gguf"; }
std::string tiny_ctc_model() { return fixtures_dir() + "/audio/ctc/model.gguf"; }
Json expected() { return Json::parse(read_text(long_dir() + "/expected.json")); }

void write_pcm16(const std::string& path, const std::vector<short>& samples, int rate) {
    SF_INFO info{};
    info.samplerate = rate;
    info.channels = 1;
    info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
    SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
    ASSERT_NE(f, nullptr) << sf_strerror(nullptr);
    ASSERT_EQ(sf_write_short(f, samples.data(), sf_count_t(samples.size())), sf_count_t(samples.size()));
    sf_close(f);
}

std::vector<short> read_pcm16(const std::string& path) {
    SF_INFO info{};
    SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
    EXPECT_NE(f, nullptr) << path;
    if (!f) return {};
    std::vector<short> s(size_t(info.frames) * size_t(info.channels));
    sf_read_short(f, s.data(), sf_count_t(s.size()));
    sf_close(f);
    return s;
}

// The recipe's clip as an 8 kHz PCM16 WAV (written once per test run).
const std::string& clip_wav() {
    static const std::string path = [] {
        const Json recipe = Json::parse(read_text(long_dir() + "/recipe.json"));
        std::vector<short> clip;
        for (const auto& item : recipe.at("items")) {
            const auto s = read_pcm16(shared_data(recipe.at("fsdd_dir").get<std::string>() + "/" + item.at("file").get<std::string>()));
            clip.insert(clip.end(), s.begin(), s.end());
            clip.insert(clip.end(), size_t(item.at("silence_after").get<int64_t>()), 0);
        }
        const std::string p = temp_path("long_clip.wav");
        write_pcm16(p, clip, 8000);
        return p;
    }();
    return path;
}

// Real speech repeated to `seconds`, 16 kHz PCM16.
std::string repeated_speech(double seconds) {
    const std::string path = temp_path("speech_" + std::to_string(int(seconds)) + "s.wav");
    if (fs::exists(path)) return path;
    const auto jfk = read_pcm16(shared_data("speech/jfk.wav"));
    std::vector<short> out;
    out.reserve(size_t(seconds * 16000));
    while (out.size() < size_t(seconds * 16000)) out.insert(out.end(), jfk.begin(), jfk.end());
    out.resize(size_t(seconds * 16000));
    write_pcm16(path, out, 16000);
    return path;
}

std::string setting_args(const Json& setting) {
    std::string a = " --chunk " + std::to_string(setting.at("chunk").get<double>());
    if (!setting.at("stride").is_null())
        a += " --stride " + std::to_string(setting["stride"][0].get<double>()) + " " + std::to_string(setting["stride"][1].get<double>());
    return a;
}

void expect_same_result(const Json& ours, const Json& setting) {
    EXPECT_EQ(ours.at("transcript"), setting.at("text"));
    const Json& words = ours.at("words");
    ASSERT_EQ(words.size(), setting.at("words").size());
    for (size_t i = 0; i < words.size(); ++i) {
        SCOPED_TRACE("word " + std::to_string(i));
        EXPECT_EQ(words[i].at("word"), setting["words"][i].at("word"));
        EXPECT_EQ(words[i].at("start").get<double>(), setting["words"][i].at("start").get<double>());
        EXPECT_EQ(words[i].at("end").get<double>(), setting["words"][i].at("end").get<double>());
    }
}

// The JSON document of a run (stderr, merged by run_program, carries the resampling note first).
Json json_of(const CliResult& r) {
    const size_t at = r.output.rfind("\n{") == std::string::npos ? 0 : r.output.rfind("\n{") + 1;
    return Json::parse(r.output.substr(at));
}

Json run_json(const std::string& args) {
    const CliResult r = run_program(D2V_AUDIO_CLI, "-m " + digits_model() + " --json --timestamps " + args);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return r.exit_code == 0 ? json_of(r) : Json();
}

TEST(LongAudio, DefaultChunkingEqualsThePipelineLogitsTranscriptAndWords) {
    const Json setting = expected().at("settings").at(0);
    ASSERT_EQ(setting.at("chunk").get<double>(), kDefaultChunkSeconds) << "the fixture's first setting is the CLI default";
    const std::string dump = temp_path("long_dump");
    const Json doc = run_json("--chunk 10 --dump " + dump + " " + clip_wav());
    ASSERT_FALSE(doc.is_null());
    expect_same_result(doc["results"][0], setting);
    const Json by_default = run_json(clip_wav());  // no --chunk: the default
    ASSERT_FALSE(by_default.is_null());
    expect_same_result(by_default["results"][0], setting);
    EXPECT_TRUE(AllClose(d2v::read_npy(dump + "/logits.npy"), d2v::read_npy(long_dir() + "/logits.npy"), 1e-4));
    // The transcript is speech, not noise: most spoken digits are recognised (the model's WER on
    // this held-out speaker is 13 %).
    const std::string spoken = expected().at("spoken"), heard = doc["results"][0]["transcript"];
    size_t same_words = 0;
    std::istringstream a(spoken), b(heard);
    for (std::string x, y; a >> x && b >> y;) same_words += x == y;
    EXPECT_GT(double(same_words), 0.5 * double(std::count(spoken.begin(), spoken.end(), ' ') + 1)) << heard;
}

TEST(LongAudio, OtherSettingsEqualThePipeline) {
    const Json all = expected();
    ASSERT_EQ(all.at("settings").size(), 3u);
    for (size_t k = 1; k < 3; ++k) {  // setting 0 (the default) is checked above
        const Json& setting = all["settings"][k];
        SCOPED_TRACE(setting.dump());
        const Json doc = run_json(setting_args(setting) + " " + clip_wav());
        ASSERT_FALSE(doc.is_null());
        expect_same_result(doc["results"][0], setting);
    }
}

TEST(LongAudio, StdinStreamsTheSameResult) {
    const Json setting = expected().at("settings").at(1);
    // Through a pipe (not seekable), in chunked mode.
    const CliResult r = run_program("cat " + clip_wav() + " |", std::string(D2V_AUDIO_CLI) + " -m " + digits_model() +
                                                                     " --json --timestamps" + setting_args(setting) + " -");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("-: resampled 8000 Hz -> 16000 Hz"), std::string::npos) << r.output;
    expect_same_result(json_of(r)["results"][0], setting);
}

TEST(LongAudio, FrameClassificationIsChunkedToo) {
    // No Transformers pipeline exists for frame labels; the chunks are cut and joined as for CTC.
    // Against one whole pass of the same 66 s: the same number of frames, and the same label on
    // almost every frame (measured 98 % with the tiny random model; frames near a chunk edge see
    // less context, so they may differ).
    const std::string frame_model = fixtures_dir() + "/audio/frame/model.gguf", wav = repeated_speech(66);
    const CliResult chunked = run_program(D2V_AUDIO_CLI, "-m " + frame_model + " --json " + wav);
    const CliResult whole = run_program(D2V_AUDIO_CLI, "-m " + frame_model + " --json --chunk 0 " + wav);
    ASSERT_EQ(chunked.exit_code, 0) << chunked.output;
    ASSERT_EQ(whole.exit_code, 0) << whole.output;
    const Json a = json_of(chunked)["results"][0]["frames"], b = json_of(whole)["results"][0]["frames"];
    ASSERT_EQ(a.size(), b.size());
    size_t same = 0;
    for (size_t t = 0; t < a.size(); ++t) same += a[t] == b[t];
    EXPECT_GT(double(same), 0.9 * double(b.size()));
}

// ---- the library pieces

TEST(Chunking, PlanRoundsLikeThePipeline) {
    // chunk_len = round(chunk_s * rate / ratio) * ratio with Python's round (half to even).
    const ChunkPlan p = plan_chunks({10.0, std::nullopt, std::nullopt}, 16000, 320, 400);
    EXPECT_EQ(p.chunk, 160000);
    EXPECT_EQ(p.stride_left, 83 * 320);  // 10/6 s = 83.33 frames
    EXPECT_EQ(p.stride_right, 83 * 320);
    // 0.01 s = 0.5 frames -> 0 (half to even), 0.03 s = 1.5 frames -> 2.
    const ChunkPlan q = plan_chunks({1.0, 0.01, 0.03}, 16000, 320, 400);
    EXPECT_EQ(q.stride_left, 0);
    EXPECT_EQ(q.stride_right, 640);
    EXPECT_THROW(plan_chunks({1.0, 0.5, 0.5}, 16000, 320, 400), d2v::Error);   // no step left
    EXPECT_THROW(plan_chunks({0.01, 0.0, 0.0}, 16000, 320, 400), d2v::Error);  // under the receptive field
}

TEST(Chunking, ChunksDoNotDependOnHowTheInputArrives) {
    const ChunkPlan plan{1000, 200, 100, 10};
    std::vector<float> input(4321);
    for (size_t i = 0; i < input.size(); ++i) input[i] = float(i);
    auto collect = [&](size_t block) {
        std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t, bool, float>> chunks;
        Chunker c(plan);
        auto on = [&](const AudioChunk& k) { chunks.emplace_back(k.start, k.size, k.stride_left, k.stride_right, k.is_last, k.samples[0]); };
        for (size_t i = 0; i < input.size(); i += block) c.push(input.data() + i, std::min(block, input.size() - i), on);
        c.finish(on);
        return chunks;
    };
    const auto whole = collect(input.size());
    // chunk_iter: starts every 700 samples; the chunk reaching the end (3500 + 1000 >= 4321) is last.
    ASSERT_EQ(whole.size(), 6u);
    EXPECT_EQ(whole[0], std::make_tuple(int64_t(0), int64_t(1000), int64_t(0), int64_t(100), false, 0.0f));
    EXPECT_EQ(whole[1], std::make_tuple(int64_t(700), int64_t(1000), int64_t(200), int64_t(100), false, 700.0f));
    EXPECT_EQ(whole[5], std::make_tuple(int64_t(3500), int64_t(821), int64_t(200), int64_t(0), true, 3500.0f));
    for (size_t block : {1u, 7u, 999u, 1000u, 1001u}) EXPECT_EQ(collect(block), whole) << "block " << block;
}

TEST(Chunking, KeptFramesFollowRescaleStride) {
    // A full 160000-sample chunk: the pipeline counts round(160000/320) = 500 frames, the model gives
    // 499; items[:, 83:500-83] keeps 83..416.
    const float dummy = 0;
    const FrameRange full = kept_frames(AudioChunk{&dummy, 160000, 26560, 26560, 26560, false}, 320, 499);
    EXPECT_EQ(full.begin, 83);
    EXPECT_EQ(full.end, 417);
    // A short last chunk: strides rescaled by its own length.
    const FrameRange last = kept_frames(AudioChunk{&dummy, 50000, 26560, 26560, 0, true}, 320, 155);
    EXPECT_EQ(last.begin, 83);  // round(26560 / 50000 * 156) = round(82.87)
    EXPECT_EQ(last.end, 155);   // 156 clipped to the 155 frames there are
}

// ---- memory and time do not grow with the file

#ifndef D2V_TEST_UNDER_ASAN
// 20 minutes, as issue #9 asks, in the Release run.
constexpr double kShortSeconds = 120, kLongSeconds = 1200;
constexpr long kAllowanceMb = 400, kGrowthSlackMb = 64;  // 64: allocator noise; 20 min of samples would be 77
#else
// Under ASan the same property on 1 and 5 minutes (a 20-minute ASan run alone takes minutes of
// CPU), and 400 MB more allowance for ASan's own memory: its shadow and the quarantine of freed
// blocks (256 MB by default), which fill within the first chunks and then stay flat.
constexpr double kShortSeconds = 60, kLongSeconds = 300;
constexpr long kAllowanceMb = 800, kGrowthSlackMb = 300;  // measured 58 MB growth: the quarantine still filling
#endif

TEST(LongAudio, LongFileRunsInBoundedMemory) {
    const long model_mb = long(fs::file_size(tiny_ctc_model()) >> 20) + 1;
    const CliResult short_run = run_program_bounded(D2V_AUDIO_CLI, "-m " + tiny_ctc_model() + " " + repeated_speech(kShortSeconds), 2048, 300);
    const CliResult long_run = run_program_bounded(D2V_AUDIO_CLI, "-m " + tiny_ctc_model() + " " + repeated_speech(kLongSeconds), 2048, 600);
    for (const CliResult* r : {&short_run, &long_run}) {
        EXPECT_FALSE(r->timed_out);
        EXPECT_EQ(r->exit_code, 0) << r->output.substr(0, 2000);
    }
    std::printf("peak RSS: %g s %ld MB, %g s %ld MB\n", kShortSeconds, short_run.peak_rss_kb / 1024, kLongSeconds,
                long_run.peak_rss_kb / 1024);
    EXPECT_LT(long_run.peak_rss_kb / 1024, model_mb + kAllowanceMb);
    // Ten times the audio, the same memory: only the transcript grows (under ASan this bound is
    // weak; the Release run is the sharp one).
    EXPECT_LT(long_run.peak_rss_kb - short_run.peak_rss_kb, kGrowthSlackMb * 1024);
}

}  // namespace
