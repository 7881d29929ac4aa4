// Internal to the image reader (src/image_*.cpp): one decoder per file format, each handing back the
// pixels in the mode PIL's Image.open gives that file, so that image_io.cpp applies PIL's
// convert("RGB") (or the label-map rules) in one place for every format.
//
// Every decoder checks the pixel limit on the dimensions its library parsed BEFORE the library
// allocates the image, refuses a file that holds less data than its header needs (truncation),
// and throws d2v::Error("<name>: <reason>").
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "d2v/tensor.h"

namespace d2v::vision::detail {

// PIL's image modes, as far as our formats produce them.
enum class PilMode {
    L,     // 8-bit gray
    LA,    // gray + alpha
    RGB,
    RGBA,
    P,     // palette indices (one byte each) + `palette`
    I16,   // 16-bit gray (PNG), in `gray16`
    CMYK,  // as PIL holds a JPEG's CMYK after its "CMYK;I" (Adobe, inverted) unpacking
};

int channels_of(PilMode mode);

struct Raster {
    int64_t width = 0, height = 0;
    PilMode mode = PilMode::RGB;
    std::vector<uint8_t> pixels;    // channels_of(mode) bytes per pixel, rows top-down
    std::vector<uint16_t> gray16;   // I16 only
    std::vector<uint8_t> palette;   // P only: RGB triplets as the file lists them (indices past the end are black)
};

[[noreturn]] void fail(const std::string& name, const std::string& why);

// width * height <= max_pixels (and both > 0), else a d2v::Error naming the file.
void check_pixel_limit(const std::string& name, const char* format, int64_t width, int64_t height,
                       int64_t max_pixels);

Raster decode_png(const std::string& name, const uint8_t* data, size_t size, int64_t max_pixels);
Raster decode_jpeg(const std::string& name, const uint8_t* data, size_t size, int64_t max_pixels);
// GIF (first frame) and BMP through stb_image, already converted to RGB exactly as PIL converts them.
Raster decode_gif(const std::string& name, const uint8_t* data, size_t size, int64_t max_pixels);
Raster decode_bmp(const std::string& name, const uint8_t* data, size_t size, int64_t max_pixels);

}  // namespace d2v::vision::detail
