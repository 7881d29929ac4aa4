// d2v-bench: time the forward pass of any converted data2vec model, batch 1.
// weights_tools/bench.py runs this beside PyTorch on the same weights and inputs and prints ratios.
//   audio:  d2v-bench -m audio.gguf -t 2 speech.wav
//   text:   d2v-bench -m text.gguf -t 2 --tokens 128        (token ids 3.. cycling, no padding)
//   vision: d2v-bench -m vision.gguf -t 2 --image-size 224   (constant pixel values)
//   --serve: after loading, one line per request on stdin, "N" = N forwards (at -t threads),
//            answered by one JSON line of times; lets bench.py interleave our runs with other
//            engines' runs without reloading the model. EOF ends it with a last line holding peak RSS.
//   --matmul-peak [--dtype f32|bf16|s8]: the host's oneDNN matmul GFLOP/s (no model).
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "matmul_peak.h"
#include "d2v/audio/audio_io.h"
#include "d2v/audio/pipeline.h"
#include "d2v/text/pipeline.h"
#include "d2v/vision/pipeline.h"

namespace {

// VmHWM, not getrusage(): ru_maxrss survives execve, so a child of a large process (bench.py with
// torch loaded) would report its parent's high-water mark.
double peak_rss_mb() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;  // in kB
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return double(usage.ru_maxrss) / 1024.0;
}

// The wait policy libgomp started with (examples/omp_policy.cpp or the user's environment).
nlohmann::json omp_environment() {
    nlohmann::json r = nlohmann::json::object();
    for (const char* name : {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"})
        if (const char* v = std::getenv(name)) r[name] = v;
    return r;
}

std::vector<double> time_runs(const std::function<void()>& forward, int warmup, int runs) {
    std::vector<double> ms;
    for (int i = 0; i < warmup + runs; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        forward();
        const double dt = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (i >= warmup) ms.push_back(dt);
    }
    return ms;
}

// --serve: "RUNS" per line -> {"ms": [...]}; a malformed line is an error, not a guess. The thread
// count stays the one given with -t: oneDNN fixes a primitive's thread count when it creates it (at
// the first forward), so switching later would not time what a fresh process at that count runs.
void serve(const std::function<void()>& forward, nlohmann::json info) {
    std::string line;
    while (std::getline(std::cin, line)) {
        if (line.empty()) continue;
        int runs = 0;
        char extra = 0;
        if (std::sscanf(line.c_str(), "%d %c", &runs, &extra) != 1 || runs < 1)
            throw d2v::Error("--serve: expected a number of runs, got '" + line + "'");
        std::printf("%s\n", nlohmann::json{{"ms", time_runs(forward, 0, runs)}}.dump().c_str());
        std::fflush(stdout);
    }
    info["peak_rss_mb"] = peak_rss_mb();
    std::printf("%s\n", info.dump().c_str());
}

}  // namespace

int main(int argc, char** argv) {
    return cli::guarded_main("d2v-bench", [&] {
        std::string model, file;
        std::string dtype = "f32";
        int threads = cli::default_threads(), runs = 5, warmup = 1, tokens = 128, image_size = 224;
        bool serve_mode = false, peak_mode = false;
        cli::Args args(argc, argv);
        while (!args.done()) {
            const std::string a = args.take();
            if (a == "-h" || a == "--help") {
                std::printf("usage: d2v-bench -m MODEL.gguf [-t THREADS] [-n RUNS] [--warmup N] [--tokens N] [--image-size N] [--serve] [AUDIO_FILE]\n"
                            "       d2v-bench --matmul-peak [--dtype f32|bf16|s8] [-t THREADS]\n"
                            "prints one JSON line: median and min wall time of the forward pass (ms), peak RSS (MB);\n"
                            "--serve reads 'RUNS' lines on stdin and answers each with the times of RUNS forwards;\n"
                            "--matmul-peak times a 1024x1024x4096 oneDNN matmul (prepacked weights) and prints GFLOP/s\n");
                return 0;
            } else if (a == "-m" || a == "--model") model = args.value(a);
            else if (a == "-t" || a == "--threads") threads = args.int_value(a, 1);
            else if (a == "-n" || a == "--runs") runs = args.int_value(a, 1);
            else if (a == "--warmup") warmup = args.int_value(a, 0);
            else if (a == "--tokens") tokens = args.int_value(a, 1);
            else if (a == "--image-size") image_size = args.int_value(a, 1);
            else if (a == "--serve") serve_mode = true;
            else if (a == "--matmul-peak") peak_mode = true;
            else if (a == "--dtype") dtype = args.value(a);
            else if (a[0] == '-') throw cli::UsageError("unknown option '" + a + "'");
            else file = a;
        }
        d2v::set_num_threads(threads);
        if (peak_mode) {
            nlohmann::json r = cli::matmul_peak(dtype, 1024, 1024, 4096, 1.0);
            r["threads"] = threads;
            r["omp"] = omp_environment();
            std::printf("%s\n", r.dump().c_str());
            return 0;
        }
        if (model.empty()) throw cli::UsageError("need -m MODEL");
        const std::string arch = d2v::GgufFile(model).get_string("general.architecture");
        std::function<void()> forward;
        nlohmann::json input;
        std::unique_ptr<d2v::audio::AudioPipeline> audio;
        std::unique_ptr<d2v::text::TextPipeline> text;
        std::unique_ptr<d2v::vision::VisionPipeline> vision;
        d2v::audio::AudioBatch audio_batch;
        d2v::text::TextBatch text_batch;
        d2v::vision::VisionBatch vision_batch;
        if (arch == "data2vec-audio") {
            if (file.empty()) throw cli::UsageError("an audio model needs an AUDIO_FILE");
            audio = std::make_unique<d2v::audio::AudioPipeline>(model, "d2v-bench");
            audio_batch = audio->prepare({d2v::audio::read_audio(file, audio->sampling_rate()).samples});
            input = {{"samples", audio_batch.input_values.cols()}};
            forward = [&] { audio->run(audio_batch); };
        } else if (arch == "data2vec-text") {
            text = std::make_unique<d2v::text::TextPipeline>(model, "d2v-bench");
            std::vector<int64_t> ids(static_cast<size_t>(tokens));
            for (int i = 0; i < tokens; ++i) ids[size_t(i)] = 3 + i % 1000;
            text_batch.input_ids = {ids};
            text_batch.attention_mask = {std::vector<int64_t>(size_t(tokens), 1)};
            input = {{"tokens", tokens}};
            forward = [&] { text->run(text_batch); };
        } else if (arch == "data2vec-vision") {
            vision = std::make_unique<d2v::vision::VisionPipeline>(model, "d2v-bench");
            vision_batch.pixel_values = d2v::NdArray{{1, 3, image_size, image_size}, std::vector<float>(size_t(3 * image_size * image_size), 0.1f)};
            input = {{"image_size", image_size}};
            forward = [&] { vision->run(vision_batch); };
        } else {
            throw d2v::Error("unknown architecture '" + arch + "'");
        }
        struct stat st{};
        const double model_mb = stat(model.c_str(), &st) == 0 ? double(st.st_size) / (1024.0 * 1024.0) : 0.0;
        nlohmann::json r{{"architecture", arch}, {"backend", d2v::Linear::backend_name()}, {"input", input},
                         {"threads", threads}, {"model_mb", model_mb}, {"omp", omp_environment()}};
        if (serve_mode) {
            time_runs(forward, warmup, 0);
            std::printf("%s\n", nlohmann::json{{"ready", true}}.dump().c_str());
            std::fflush(stdout);
            serve(forward, r);
            return 0;
        }
        std::vector<double> ms = time_runs(forward, warmup, runs);
        std::sort(ms.begin(), ms.end());
        r.update({{"runs", runs}, {"median_ms", ms[ms.size() / 2]}, {"min_ms", ms.front()},
                  {"peak_rss_mb", peak_rss_mb()}});
        std::printf("%s\n", r.dump().c_str());
        return 0;
    });
}
