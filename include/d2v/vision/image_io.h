// Reading images the way the Transformers examples do: Image.open(path).convert("RGB") in PIL.
//
//   d2v::vision::Image img = d2v::vision::read_image("cat.jpg");   // 8-bit RGB, HWC
//
// Formats: PNG, JPEG (baseline and progressive), BMP, GIF (first frame), decoded by stb_image and
// converted to RGB with PIL's rules:
//   - gray, gray+alpha, RGBA: alpha is DROPPED (not composited), gray replicated to R = G = B;
//   - palette images: the palette colour of each index;
//   - 16-bit PNG: RGB / RGBA / gray+alpha keep the high byte; 16-bit GRAY is clipped to 255
//     (PIL opens it as mode I;16 and convert("RGB") saturates, so values >= 256 become 255);
//   - GIF: the first frame exactly as PIL shows it (a transparent index keeps its palette colour,
//     pixels outside the first frame's rectangle take the transparent index or index 0);
//   - 16-bit BMP (RGB555 / RGB565): channels widened as v * 255 / 31 (or 63), as PIL.
// Bit-exact with PIL for PNG, BMP and GIF. JPEG pixels are stb's IDCT/upsampling,
// within a few levels of libjpeg-turbo's (measured: max 3 levels, ~5 % of samples differ on a photo).
// Not applied (neither does Image.open): EXIF orientation, ICC profiles, PNG gamma.
// Errors are d2v::Error naming the file and the reason; the pixel limit is checked on the header,
// before anything is decoded. Thread-safe.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "d2v/tensor.h"

namespace d2v::vision {

struct Image {
    int64_t width = 0, height = 0;
    std::vector<uint8_t> rgb;  // 8-bit RGB, HWC row-major (width * height * 3 bytes)
};

constexpr int64_t kDefaultMaxPixels = 64LL * 1024 * 1024;

Image read_image(const std::string& path, int64_t max_pixels = kDefaultMaxPixels);

// A segmentation map (class id per pixel), as np.array(Image.open(path)) gives it: 8-bit gray PNG/JPEG/BMP
// (mode L) or a palette PNG (mode P: the palette INDICES, not the colours), or 16-bit gray PNG with ids < 256.
// Anything with colour channels is refused.
std::vector<uint8_t> read_label_map(const std::string& path, int64_t* width, int64_t* height,
                                    int64_t max_pixels = kDefaultMaxPixels);

// 8-bit RGB PNG (stb_image_write). Returns false if the file cannot be written.
bool write_png(const std::string& path, const Image& img);

}  // namespace d2v::vision
