// The packed JSON documents: config.json for each modality (and the tensor table it implies for one
// head, chosen by the input's length, expanded against a file of 4096 tensors),
// preprocessor_config.json, id2label.
#include "d2v/audio/feature_extractor.h"
#include "d2v/audio/tensor_names.h"
#include "d2v/text/tensor_names.h"
#include "d2v/vision/image_processor.h"
#include "d2v/vision/tensor_names.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const d2v::Json j = d2v::Json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return 0;
    constexpr uint64_t kFileTensors = 4096;
    const size_t pick = size;  // which head's table to build: one per execution keeps executions fast
    fuzz::expect_only_d2v_errors([&] {
        const auto c = d2v::audio::parse_audio_config(j);
        d2v::audio::receptive_field(c);
        d2v::audio::feature_length(c, 16000, true);
        const d2v::audio::AudioHead heads[] = {d2v::audio::AudioHead::Base, d2v::audio::AudioHead::CTC,
                                                d2v::audio::AudioHead::SequenceClassification,
                                                d2v::audio::AudioHead::FrameClassification, d2v::audio::AudioHead::XVector};
        d2v::audio::audio_tensor_table(c, heads[pick % 5]).expanded(kFileTensors);
    });
    fuzz::expect_only_d2v_errors([&] {
        const auto c = d2v::text::parse_text_config(j);
        const int h = int(pick % (int(d2v::text::TextHead::QuestionAnswering) + 1));
        d2v::text::text_tensor_table(c, d2v::text::TextHead(h), pick % 2 == 0).expanded(kFileTensors);
    });
    fuzz::expect_only_d2v_errors([&] {
        const auto c = d2v::vision::parse_vision_config(j);
        const d2v::vision::VisionHead heads[] = {d2v::vision::VisionHead::Base, d2v::vision::VisionHead::ImageClassification,
                                                 d2v::vision::VisionHead::SemanticSegmentation};
        d2v::vision::vision_tensor_table(c, heads[pick % 3], pick % 2 == 0).expanded(kFileTensors);
    });
    fuzz::expect_only_d2v_errors([&] { d2v::audio::parse_feature_extractor(j); });
    fuzz::expect_only_d2v_errors([&] { d2v::vision::parse_image_processor(j); });
    fuzz::expect_only_d2v_errors([&] { d2v::read_labels(j); });
    return 0;
}
