// Reading images as PIL's Image.open(p).convert("RGB"): the format from the file's signature, then
// the format's decoder (image_decode_*.cpp: libpng, libjpeg-turbo, stb_image for GIF/BMP) gives the
// pixels in the mode PIL opens that file in, and PIL's conversion to RGB (or to class ids, for label
// maps) is applied here, once for all formats.
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "d2v/vision/image_io.h"
#include "image_decoders.h"

namespace d2v::vision {
namespace detail {

void fail(const std::string& name, const std::string& why) { throw Error(name + ": " + why); }

int channels_of(PilMode mode) {
    switch (mode) {
        case PilMode::L: case PilMode::P: return 1;
        case PilMode::LA: case PilMode::I16: return 2;
        case PilMode::RGB: return 3;
        case PilMode::RGBA: case PilMode::CMYK: return 4;
    }
    return 0;
}

void check_pixel_limit(const std::string& name, const char* format, int64_t width, int64_t height, int64_t max_pixels) {
    max_pixels = std::min(max_pixels, kMaxPixelsCeiling);
    if (width <= 0 || height <= 0)
        fail(name, "zero-sized image (" + std::to_string(width) + "x" + std::to_string(height) + " in the " + format +
                       " header)");
    if (width > max_pixels / height)  // width * height > max_pixels, without overflow
        fail(name, "image is " + std::to_string(width) + "x" + std::to_string(height) + " = " +
                       std::to_string(uint64_t(width) * uint64_t(height)) + " pixels, more than the limit of " +
                       std::to_string(max_pixels) + "; refusing to decode it");
}

}  // namespace detail

namespace {

using detail::fail;
using detail::PilMode;
using detail::Raster;

enum class Format { Png, Jpeg, Gif, Bmp };

Format detect(const std::string& name, const uint8_t* b, size_t n) {
    auto starts = [&](const char* sig, size_t len) { return n >= len && std::memcmp(b, sig, len) == 0; };
    if (n == 0) fail(name, "empty file, not an image");
    if (starts("\x89PNG\r\n\x1a\n", 8)) return Format::Png;
    if (starts("\xff\xd8\xff", 3)) return Format::Jpeg;
    if (starts("GIF87a", 6) || starts("GIF89a", 6)) return Format::Gif;
    if (starts("BM", 2)) return Format::Bmp;
    fail(name, "not a PNG, JPEG, GIF or BMP image (unrecognised file signature)");
}

const char* format_name(Format f) {
    switch (f) {
        case Format::Png: return "PNG";
        case Format::Jpeg: return "JPEG";
        case Format::Gif: return "GIF";
        case Format::Bmp: return "BMP";
    }
    return "?";
}

std::vector<uint8_t> read_file(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) fail(path, "is a directory, not an image file");
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    if (!f) fail(path, std::string("cannot open image file (") + std::strerror(errno) + ")");
    const std::streamoff size = f.tellg();
    if (size < 0) fail(path, "cannot read image file");
    if (size == 0) fail(path, "empty file, not an image");
    if (size >= (std::streamoff(1) << 31)) fail(path, "file of 2 GiB or more; refusing to read it as an image");
    std::vector<uint8_t> bytes(static_cast<size_t>(size));
    f.seekg(0);
    if (!f.read(reinterpret_cast<char*>(bytes.data()), size)) fail(path, "error reading image file");
    return bytes;
}

Raster decode_raster(const uint8_t* data, size_t size, const std::string& name, int64_t max_pixels, Format* format) {
    *format = detect(name, data, size);
    switch (*format) {
        case Format::Png: return detail::decode_png(name, data, size, max_pixels);
        case Format::Jpeg: return detail::decode_jpeg(name, data, size, max_pixels);
        case Format::Gif: return detail::decode_gif(name, data, size, max_pixels);
        case Format::Bmp: return detail::decode_bmp(name, data, size, max_pixels);
    }
    fail(name, "unknown image format");
}

// PIL's convert("RGB"): alpha dropped (not composited), gray replicated, palette indices looked up (an
// index past the file's palette is black), 16-bit gray saturated at 255 (PIL's I;16 -> RGB clips, it does
// not scale), CMYK by PIL's cmyk2rgb: nk = 255 - k, channel = nk - c * nk / 255 (PIL's rounded
// MULDIV255), checked exhaustively against Pillow over all (c, k).
Image to_rgb(Raster&& r) {
    Image img{r.width, r.height, {}};
    const size_t n = size_t(r.width) * size_t(r.height);
    if (r.mode == PilMode::RGB) {
        img.rgb = std::move(r.pixels);
        return img;
    }
    img.rgb.resize(3 * n);
    uint8_t* out = img.rgb.data();
    const uint8_t* in = r.pixels.data();
    for (size_t i = 0; i < n; ++i, out += 3) {
        switch (r.mode) {
            case PilMode::L: out[0] = out[1] = out[2] = in[i]; break;
            case PilMode::LA: out[0] = out[1] = out[2] = in[2 * i]; break;
            case PilMode::RGBA: std::memcpy(out, in + 4 * i, 3); break;
            case PilMode::I16: out[0] = out[1] = out[2] = uint8_t(std::min<uint16_t>(r.gray16[i], 255)); break;
            case PilMode::P: {
                const size_t index = in[i];
                if (3 * index + 3 <= r.palette.size())
                    std::memcpy(out, r.palette.data() + 3 * index, 3);
                else
                    out[0] = out[1] = out[2] = 0;
                break;
            }
            case PilMode::CMYK: {
                const int nk = 255 - in[4 * i + 3];
                for (int c = 0; c < 3; ++c) {
                    const int t = in[4 * i + c] * nk + 128;
                    out[c] = uint8_t(std::clamp(nk - (((t >> 8) + t) >> 8), 0, 255));
                }
                break;
            }
            case PilMode::RGB: break;  // moved above
        }
    }
    return img;
}

// np.array(Image.open(p)) for a single-channel image: mode L values, mode P indices, I;16 values < 256.
std::vector<uint8_t> to_labels(Raster&& r, Format format, const std::string& name) {
    switch (r.mode) {
        case PilMode::L: return std::move(r.pixels);
        case PilMode::P:
            if (format == Format::Png) return std::move(r.pixels);
            break;
        case PilMode::I16: {
            std::vector<uint8_t> labels(r.gray16.size());
            for (size_t i = 0; i < labels.size(); ++i) {
                if (r.gray16[i] > 255)
                    fail(name, "16-bit label map holds a class id above 255 (" + std::to_string(r.gray16[i]) + ")");
                labels[i] = uint8_t(r.gray16[i]);
            }
            return labels;
        }
        default: break;
    }
    fail(name, "a label map must be a single-channel image (8-bit grayscale, or a palette PNG); this " +
                   std::string(format_name(format)) + " has " + std::to_string(detail::channels_of(r.mode)) + " channels");
}

}  // namespace

Image decode_image(const uint8_t* data, size_t size, const std::string& name, int64_t max_pixels) {
    Format format;
    return to_rgb(decode_raster(data, size, name, max_pixels, &format));
}

Image read_image(const std::string& path, int64_t max_pixels) {
    const std::vector<uint8_t> bytes = read_file(path);
    return decode_image(bytes.data(), bytes.size(), path, max_pixels);
}

std::vector<uint8_t> decode_label_map(const uint8_t* data, size_t size, int64_t* width, int64_t* height,
                                      const std::string& name, int64_t max_pixels) {
    Format format;
    Raster r = decode_raster(data, size, name, max_pixels, &format);
    *width = r.width;
    *height = r.height;
    return to_labels(std::move(r), format, name);
}

std::vector<uint8_t> read_label_map(const std::string& path, int64_t* width, int64_t* height, int64_t max_pixels) {
    const std::vector<uint8_t> bytes = read_file(path);
    return decode_label_map(bytes.data(), bytes.size(), width, height, path, max_pixels);
}

bool write_png(const std::string& path, const Image& img) {
    if (img.width <= 0 || img.height <= 0 || img.rgb.size() != size_t(img.width * img.height * 3)) return false;
    if (img.width > (1 << 24) || img.height > (1 << 24)) return false;
    return stbi_write_png(path.c_str(), int(img.width), int(img.height), 3, img.rgb.data(), int(img.width * 3)) != 0;
}

}  // namespace d2v::vision
