// d2v-bench-audio: time the forward pass of a data2vec-audio model on one file (batch 1).
// weights_tools/bench_audio.py runs this beside PyTorch on the same weights and prints the ratio.
#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "d2v/audio/audio_io.h"
#include "d2v/audio/pipeline.h"

int main(int argc, char** argv) {
    return cli::guarded_main("d2v-bench-audio", [&] {
        std::string model, file;
        int threads = cli::default_threads(), runs = 5, warmup = 1;
        cli::Args args(argc, argv);
        while (!args.done()) {
            const std::string a = args.take();
            if (a == "-h" || a == "--help") {
                std::printf("usage: d2v-bench-audio -m MODEL.gguf [-t THREADS] [-n RUNS] [--warmup N] FILE\n"
                            "prints one JSON line: median and min wall time of the forward pass (ms)\n");
                return 0;
            } else if (a == "-m" || a == "--model") model = args.value(a);
            else if (a == "-t" || a == "--threads") threads = args.int_value(a, 1);
            else if (a == "-n" || a == "--runs") runs = args.int_value(a, 1);
            else if (a == "--warmup") warmup = args.int_value(a, 0);
            else if (a[0] == '-') throw cli::UsageError("unknown option '" + a + "'");
            else file = a;
        }
        if (model.empty() || file.empty()) throw cli::UsageError("need -m MODEL and an audio FILE");
        d2v::set_num_threads(threads);
        d2v::audio::AudioPipeline pipe(model, "d2v-bench-audio");
        auto batch = pipe.prepare({d2v::audio::read_audio(file, pipe.sampling_rate()).samples});
        std::vector<double> ms;
        for (int i = 0; i < warmup + runs; ++i) {
            const auto t0 = std::chrono::steady_clock::now();
            auto out = pipe.run(batch);
            const double dt = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
            if (i >= warmup) ms.push_back(dt);
        }
        std::sort(ms.begin(), ms.end());
        nlohmann::json r{{"threads", threads}, {"runs", runs}, {"median_ms", ms[ms.size() / 2]}, {"min_ms", ms.front()},
                         {"backend", d2v::Linear::backend_name()}, {"samples", batch.input_values.cols()}};
        std::printf("%s\n", r.dump().c_str());
        return 0;
    });
}
