// BeitImageProcessor (what data2vec-vision checkpoints use), equal to Transformers' PIL backend
// (BeitImageProcessorPil) to float32 rounding:
//
//   auto cfg = d2v::vision::parse_image_processor(preprocessor_json);   // preprocessor_config.json
//   d2v::NdArray pixel_values = d2v::vision::preprocess(img, cfg);       // [3, H, W] float32
//
// Steps, in Transformers' order: resize (PIL Image.resize on the uint8 RGB image, bit-exact, every
// filter incl. the antialiasing support widening on downscale) -> center crop (zero padding when the
// crop is larger) -> rescale (float64 multiply, rounded to float32) -> normalize ((x - mean) / std
// in float32). Transformers 5's default torchvision backend is not this: it differs by one or two uint8
// levels (up to 0.0157 after normalising with std 0.5) with BILINEAR/BICUBIC/LANCZOS, by up to 1.68
// with NEAREST (other sampling positions), and has no BOX/HAMMING.
//
// Segmentation labels: do_reduce_labels (0 -> 255, 255 stays, others - 1), then NEAREST resize and
// the same crop. Transformers 4.x resized label maps NEAREST; Transformers 5.x uses the image filter
// (BILINEAR/BICUBIC on class ids, which invents ids at class borders): we keep NEAREST.
// All functions are pure and thread-safe.
#pragma once
#include <array>

#include "d2v/model_file.h"
#include "d2v/ndarray.h"
#include "d2v/vision/image_io.h"

namespace d2v::vision {

enum class Resample { Nearest = 0, Lanczos = 1, Bilinear = 2, Bicubic = 3, Box = 4, Hamming = 5 };  // PIL's codes

// Defaults are Transformers 5's BeitImageProcessor class defaults (size 224x224 BICUBIC, no crop).
// (Transformers 4.x defaulted to 256 + center crop 224; real checkpoints set these fields explicitly.)
struct ImageProcessorConfig {
    bool do_resize = true;
    int64_t height = 224, width = 224;
    Resample resample = Resample::Bicubic;
    bool do_center_crop = false;
    int64_t crop_height = 224, crop_width = 224;
    bool do_rescale = true;
    double rescale_factor = 1.0 / 255;
    bool do_normalize = true;
    std::array<float, 3> image_mean{0.5f, 0.5f, 0.5f}, image_std{0.5f, 0.5f, 0.5f};
    bool do_reduce_labels = false;
};

// preprocessor_config.json -> config. null -> defaults; a missing or null field takes the default.
// "size"/"crop_size" may be an int (square), [height, width] or {"height", "width"}; aspect-preserving
// sizes (shortest_edge, ...) are refused, as is any value Transformers would not accept (the error
// names the field). Unknown keys are ignored, like Transformers; so is the legacy "reduce_labels"
// key, which Transformers 5 no longer reads (only "do_reduce_labels" counts).
ImageProcessorConfig parse_image_processor(const Json& preprocessor_json);

const char* resample_name(Resample r);

// PIL's Image.resize(( width, height), filter) of an RGB uint8 image, bit-exact (reducing_gap=None).
Image resize(const Image& img, int64_t width, int64_t height, Resample filter);

// -> pixel_values [3, H, W] float32 (channels first). Image must be non-empty RGB.
NdArray preprocess(const Image& img, const ImageProcessorConfig& c);

// Labels [height, width] (e.g. from read_label_map) -> [H, W] int64 (is_integer = true), H/W as preprocess.
NdArray preprocess_labels(const std::vector<uint8_t>& labels, int64_t width, int64_t height, const ImageProcessorConfig& c);

}  // namespace d2v::vision
