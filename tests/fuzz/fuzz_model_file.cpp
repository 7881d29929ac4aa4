// GGUF reader + model-file validation + pipeline construction for each modality, then one tiny
// forward pass when the file is accepted (config-driven code that only runs at inference).
#include "d2v/audio/pipeline.h"
#include "d2v/text/pipeline.h"
#include "d2v/vision/pipeline.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const fuzz::MemoryFile file(data, size);
    fuzz::expect_only_d2v_errors([&] {
        const std::string arch = d2v::ModelFile(file.path()).architecture();
        if (arch == "data2vec-audio") {
            const d2v::audio::AudioPipeline pipe(file.path(), "fuzz");
            const int64_t n = std::max<int64_t>(d2v::audio::receptive_field(pipe.config()), 400);
            if (n > 100000) return;  // keep one execution fast
            pipe.run(pipe.prepare({std::vector<float>(size_t(n), 0.25f)}));
        } else if (arch == "data2vec-text") {
            const d2v::text::TextPipeline pipe(file.path(), "fuzz");
            d2v::text::TextBatch batch;
            batch.input_ids = {{0, 1 % pipe.config().vocab_size}};
            batch.attention_mask = {{1, 1}};
            batch.token_type_ids = {{0, 0}};
            if (pipe.head() == d2v::text::TextHead::MultipleChoice) batch.choices = 1;
            pipe.run(batch);
        } else if (arch == "data2vec-vision") {
            const d2v::vision::VisionPipeline pipe(file.path(), "fuzz");
            // A file without a preprocessor config means BeitImageProcessor's 224x224: seconds per
            // forward pass under ASan. Legitimate cost, but too slow for fuzzing: skip.
            if (pipe.processor().height * pipe.processor().width > 32 * 32) return;
            d2v::vision::Image img;
            img.width = img.height = 16;
            img.rgb.assign(16 * 16 * 3, 128);
            pipe.run(pipe.prepare({img}));
        }
    });
    return 0;
}
