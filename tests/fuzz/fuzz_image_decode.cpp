// Image decoding, every format we accept (PNG, JPEG, BMP, GIF), as RGB and as a label map. The pixel
// limit is lowered so that one execution stays small; the limit logic itself is what is exercised.
#include "d2v/vision/image_io.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    constexpr int64_t kMaxPixels = 1 << 20;
    fuzz::expect_only_d2v_errors([&] {
        const d2v::vision::Image img = d2v::vision::decode_image(data, size, "fuzz", kMaxPixels);
        if (int64_t(img.rgb.size()) != img.width * img.height * 3) std::abort();
    });
    fuzz::expect_only_d2v_errors([&] {
        int64_t w = 0, h = 0;
        const auto labels = d2v::vision::decode_label_map(data, size, &w, &h, "fuzz", kMaxPixels);
        if (int64_t(labels.size()) != w * h) std::abort();
    });
    return 0;
}
