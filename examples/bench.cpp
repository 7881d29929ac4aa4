// d2v-bench: time the forward pass of any converted data2vec model, batch 1.
// weights_tools/bench.py runs this beside PyTorch on the same weights and inputs and prints ratios.
//   audio:  d2v-bench -m audio.gguf -t 2 speech.wav
//   text:   d2v-bench -m text.gguf -t 2 --tokens 128        (token ids 3.. cycling, no padding)
//   vision: d2v-bench -m vision.gguf -t 2 --image-size 224   (constant pixel values)
#include <algorithm>
#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "d2v/audio/audio_io.h"
#include "d2v/audio/pipeline.h"
#include "d2v/text/pipeline.h"
#include "d2v/vision/pipeline.h"

int main(int argc, char** argv) {
    return cli::guarded_main("d2v-bench", [&] {
        std::string model, file;
        int threads = cli::default_threads(), runs = 5, warmup = 1, tokens = 128, image_size = 224;
        cli::Args args(argc, argv);
        while (!args.done()) {
            const std::string a = args.take();
            if (a == "-h" || a == "--help") {
                std::printf("usage: d2v-bench -m MODEL.gguf [-t THREADS] [-n RUNS] [--warmup N] [--tokens N] [--image-size N] [AUDIO_FILE]\n"
                            "prints one JSON line: median and min wall time of the forward pass (ms)\n");
                return 0;
            } else if (a == "-m" || a == "--model") model = args.value(a);
            else if (a == "-t" || a == "--threads") threads = args.int_value(a, 1);
            else if (a == "-n" || a == "--runs") runs = args.int_value(a, 1);
            else if (a == "--warmup") warmup = args.int_value(a, 0);
            else if (a == "--tokens") tokens = args.int_value(a, 1);
            else if (a == "--image-size") image_size = args.int_value(a, 1);
            else if (a[0] == '-') throw cli::UsageError("unknown option '" + a + "'");
            else file = a;
        }
        if (model.empty()) throw cli::UsageError("need -m MODEL");
        d2v::set_num_threads(threads);
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
        std::vector<double> ms;
        for (int i = 0; i < warmup + runs; ++i) {
            const auto t0 = std::chrono::steady_clock::now();
            forward();
            const double dt = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
            if (i >= warmup) ms.push_back(dt);
        }
        std::sort(ms.begin(), ms.end());
        nlohmann::json r{{"architecture", arch}, {"threads", threads}, {"runs", runs}, {"median_ms", ms[ms.size() / 2]},
                         {"min_ms", ms.front()}, {"backend", d2v::Linear::backend_name()}, {"input", input}};
        std::printf("%s\n", r.dump().c_str());
        return 0;
    });
}
