// Reading images the way the Transformers examples do: Image.open(path).convert("RGB") in PIL.
//
//   d2v::vision::Image img = d2v::vision::read_image("cat.jpg");   // 8-bit RGB, HWC
//
// Formats and decoders: PNG (libpng), JPEG (libjpeg-turbo: 8-bit samples, 1, 3 or 4 components, as
// Pillow), BMP and GIF (first frame) through stb_image, for which Debian has no maintained decoder that
// fits. Converted to RGB with PIL's rules:
//   - gray, gray+alpha, RGBA: alpha is DROPPED (not composited), gray replicated to R = G = B;
//   - palette images: the palette colour of each index;
//   - 16-bit PNG: RGB / RGBA / gray+alpha keep the high byte; 16-bit GRAY is clipped to 255
//     (PIL opens it as mode I;16 and convert("RGB") saturates, so values >= 256 become 255);
//   - CMYK JPEG: inverted as Adobe writes it, then PIL's cmyk2rgb;
//   - GIF: the first frame exactly as PIL shows it (a transparent index keeps its palette colour,
//     pixels outside the first frame's rectangle take the transparent index or index 0);
//   - 16-bit BMP (RGB555 / RGB565): channels widened as v * 255 / 31 (or 63), as PIL.
// Bit-exact with Pillow for every format, JPEG included (libjpeg-turbo set up as Pillow sets it up).
// Not applied (neither does Image.open): EXIF orientation, ICC profiles, PNG gamma.
//
// Hostile files: errors are d2v::Error naming the file and the reason. The pixel limit is checked on
// the dimensions the decoder parsed before anything image-sized is allocated, and a file must hold the
// data its header claims (truncated files are refused, as Pillow refuses them), so memory is bounded by
// the file's real content and the limit. Thread-safe.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "d2v/tensor.h"

namespace d2v::vision {

struct Image {
    int64_t width = 0, height = 0;
    std::vector<uint8_t> rgb;  // 8-bit RGB, HWC row-major (width * height * 3 bytes)
};

// 64 Mi pixels (8192 x 8192; 192 MiB as RGB): above any camera photo, below Pillow's decompression-bomb
// error (2 x 89.5 M pixels).
constexpr int64_t kDefaultMaxPixels = 64LL * 1024 * 1024;
// No limit passed in goes above this: stb_image sizes a GIF's RGBA buffers in `int` (4 bytes a pixel).
constexpr int64_t kMaxPixelsCeiling = 0x7FFFFFFF / 4;

Image read_image(const std::string& path, int64_t max_pixels = kDefaultMaxPixels);
// The same from bytes in memory (`name` is used in error messages).
Image decode_image(const uint8_t* data, size_t size, const std::string& name = "<memory>",
                   int64_t max_pixels = kDefaultMaxPixels);

// A segmentation map (class id per pixel), as np.array(Image.open(path)) gives it: 8-bit gray PNG/JPEG
// (mode L) or a palette PNG (mode P: the palette INDICES, not the colours), or 16-bit gray PNG with ids < 256.
// Anything with colour channels is refused.
std::vector<uint8_t> read_label_map(const std::string& path, int64_t* width, int64_t* height,
                                    int64_t max_pixels = kDefaultMaxPixels);
std::vector<uint8_t> decode_label_map(const uint8_t* data, size_t size, int64_t* width, int64_t* height,
                                      const std::string& name = "<memory>", int64_t max_pixels = kDefaultMaxPixels);

// 8-bit RGB PNG (stb_image_write). Returns false if the file cannot be written.
bool write_png(const std::string& path, const Image& img);

}  // namespace d2v::vision
