// Image decoding with stb_image (libstb.so provides the implementation; no STB_IMAGE_IMPLEMENTATION here),
// plus the few places where PIL's Image.open(p).convert("RGB") differs from stb's own RGB conversion:
// 16-bit gray PNG (PIL clips, stb keeps the high byte), 16-bit BMP (channel widening) and GIF first frames
// (transparency / frame rectangle).
// Every header is parsed by us first (bounds-checked), so size limits are enforced before stb allocates.
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "d2v/vision/image_io.h"

namespace d2v::vision {
namespace {

enum class Format { Png, Jpeg, Gif, Bmp };

const char* format_name(Format f) {
    switch (f) {
        case Format::Png: return "PNG";
        case Format::Jpeg: return "JPEG";
        case Format::Gif: return "GIF";
        case Format::Bmp: return "BMP";
    }
    return "?";
}

[[noreturn]] void fail(const std::string& path, const std::string& why) { throw Error(path + ": " + why); }

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

uint32_t be16(const uint8_t* p) { return uint32_t(p[0]) << 8 | p[1]; }
uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }
uint32_t le16(const uint8_t* p) { return uint32_t(p[1]) << 8 | p[0]; }
uint32_t le32(const uint8_t* p) { return uint32_t(p[3]) << 24 | uint32_t(p[2]) << 16 | uint32_t(p[1]) << 8 | p[0]; }

// What our own header parse learns before stb sees the file.
struct Header {
    Format format;
    int64_t width = 0, height = 0;
    int png_bit_depth = 0, png_color_type = -1;  // PNG only
};

Format detect(const std::string& path, const std::vector<uint8_t>& b) {
    auto starts = [&](const char* sig, size_t n) { return b.size() >= n && std::memcmp(b.data(), sig, n) == 0; };
    if (starts("\x89PNG\r\n\x1a\n", 8)) return Format::Png;
    if (starts("\xff\xd8\xff", 3)) return Format::Jpeg;
    if (starts("GIF87a", 6) || starts("GIF89a", 6)) return Format::Gif;
    if (starts("BM", 2)) return Format::Bmp;
    fail(path, "not a PNG, JPEG, GIF or BMP image (unrecognised file signature)");
}

Header parse_header(const std::string& path, const std::vector<uint8_t>& b) {
    Header h;
    h.format = detect(path, b);
    const size_t n = b.size();
    auto truncated = [&]() { fail(path, std::string("truncated ") + format_name(h.format) + " header"); };
    switch (h.format) {
        case Format::Png:
            if (n < 33) truncated();
            if (std::memcmp(b.data() + 12, "IHDR", 4) != 0) fail(path, "corrupt PNG: first chunk is not IHDR");
            h.width = be32(b.data() + 16);
            h.height = be32(b.data() + 20);
            h.png_bit_depth = b[24];
            h.png_color_type = b[25];
            break;
        case Format::Gif:
            if (n < 13) truncated();
            h.width = le16(b.data() + 6);
            h.height = le16(b.data() + 8);
            break;
        case Format::Bmp: {
            if (n < 26) truncated();
            const uint32_t dib = le32(b.data() + 14);
            if (dib == 12) {
                h.width = le16(b.data() + 18);
                h.height = le16(b.data() + 20);
            } else {
                h.width = int32_t(le32(b.data() + 18));
                h.height = int32_t(le32(b.data() + 22));
                if (h.height < 0) h.height = -h.height;  // top-down bitmap
                if (h.width < 0) fail(path, "corrupt BMP: negative width");
            }
            break;
        }
        case Format::Jpeg: {
            // Walk the markers up to the frame header (SOFn).
            size_t p = 2;
            for (;;) {
                while (p < n && b[p] != 0xFF) ++p;  // tolerate junk between segments, as decoders do
                while (p < n && b[p] == 0xFF) ++p;
                if (p >= n) truncated();
                const uint8_t m = b[p++];
                if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;  // no length
                if (m == 0xD9 || m == 0xDA) fail(path, "corrupt JPEG: no frame header (SOF) before the image data");
                if (p + 2 > n) truncated();
                const size_t len = be16(b.data() + p);
                if (len < 2) fail(path, "corrupt JPEG: bad segment length");
                const bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
                if (sof) {
                    if (p + 7 > n) truncated();
                    h.height = be16(b.data() + p + 3);
                    h.width = be16(b.data() + p + 5);
                    break;
                }
                p += len;
            }
            break;
        }
    }
    return h;
}

void check_size(const std::string& path, const Header& h, int64_t max_pixels) {
    if (h.width <= 0 || h.height <= 0)
        fail(path, "zero-sized image (" + std::to_string(h.width) + "x" + std::to_string(h.height) + " in the " +
                       format_name(h.format) + " header)");
    if (h.width > max_pixels / h.height)  // width * height > max_pixels, without overflow
        fail(path, "image is " + std::to_string(h.width) + "x" + std::to_string(h.height) + " = " +
                       std::to_string(uint64_t(h.width) * uint64_t(h.height)) + " pixels, more than the limit of " +
                       std::to_string(max_pixels) + "; refusing to decode it");
}

struct StbFree {
    void operator()(void* p) const { stbi_image_free(p); }
};
template <typename T>
using StbPtr = std::unique_ptr<T, StbFree>;

[[noreturn]] void stb_fail(const std::string& path, Format f) {
    const char* why = stbi_failure_reason();
    fail(path, std::string("cannot decode ") + format_name(f) + " image: " + (why ? why : "unknown error") +
                   " (truncated or corrupt file, or an unsupported variant)");
}

void check_stb_dims(const std::string& path, const Header& h, int w, int ht) {
    if (w != h.width || ht != h.height)
        fail(path, "decoded size " + std::to_string(w) + "x" + std::to_string(ht) + " differs from the header's " +
                       std::to_string(h.width) + "x" + std::to_string(h.height));
}

// ---- GIF: what PIL shows for frame 0 --------------------------------------------------------------
// PIL decodes frame 0 into a palette image that starts filled with the transparent index (or 0), and
// keeps transparent pixels' indices; convert("RGB") then maps every index through the frame's palette.
// stb instead leaves transparent / uncovered pixels at alpha 0 (or the background colour). We walk the
// blocks to the first image descriptor and repair those pixels.
struct GifFrame0 {
    int64_t left = 0, top = 0, width = 0, height = 0;
    int transparent = -1;
    const uint8_t* palette = nullptr;  // RGB triplets
    int palette_size = 0;
};

GifFrame0 parse_gif_frame0(const std::string& path, const std::vector<uint8_t>& b) {
    GifFrame0 g;
    const size_t n = b.size();
    auto need = [&](size_t end) {
        if (end > n) fail(path, "truncated GIF (before the first image)");
    };
    need(13);
    const uint8_t flags = b[10];
    size_t p = 13;
    const uint8_t* global = nullptr;
    int global_size = 0;
    if (flags & 0x80) {
        global_size = 2 << (flags & 7);
        need(p + 3 * size_t(global_size));
        global = b.data() + p;
        p += 3 * size_t(global_size);
    }
    for (;;) {
        need(p + 1);
        const uint8_t block = b[p++];
        if (block == 0x21) {  // extension
            need(p + 1);
            const uint8_t label = b[p++];
            if (label == 0xF9) {  // graphic control extension; as in PIL, a later one without the flag keeps it
                need(p + 5);
                if (b[p] >= 4 && (b[p + 1] & 1)) g.transparent = int(b[p + 4]);
            }
            for (;;) {  // skip the data sub-blocks
                need(p + 1);
                const size_t len = b[p++];
                if (len == 0) break;
                need(p + len);
                p += len;
            }
        } else if (block == 0x2C) {  // image descriptor
            need(p + 9);
            g.left = le16(b.data() + p);
            g.top = le16(b.data() + p + 2);
            g.width = le16(b.data() + p + 4);
            g.height = le16(b.data() + p + 6);
            const uint8_t lflags = b[p + 8];
            p += 9;
            if (lflags & 0x80) {
                g.palette_size = 2 << (lflags & 7);
                need(p + 3 * size_t(g.palette_size));
                g.palette = b.data() + p;
            } else {
                g.palette = global;
                g.palette_size = global_size;
            }
            if (!g.palette) fail(path, "GIF frame without a colour table is not supported");
            return g;
        } else if (block == 0x3B) {
            fail(path, "GIF without any image");
        } else {
            fail(path, "corrupt GIF: unexpected block type " + std::to_string(block));
        }
    }
}

Image decode_gif(const std::string& path, const std::vector<uint8_t>& b, const Header& h) {
    const GifFrame0 g = parse_gif_frame0(path, b);
    int w = 0, ht = 0, comp = 0;
    StbPtr<uint8_t> rgba(stbi_load_from_memory(b.data(), int(b.size()), &w, &ht, &comp, 4));
    if (!rgba) stb_fail(path, h.format);
    check_stb_dims(path, h, w, ht);
    auto colour = [&](int index, uint8_t* out) {
        if (index >= 0 && index < g.palette_size) {
            std::memcpy(out, g.palette + 3 * index, 3);
        } else {
            out[0] = out[1] = out[2] = 0;
        }
    };
    Image img{w, ht, std::vector<uint8_t>(size_t(w) * size_t(ht) * 3)};
    const uint8_t* src = rgba.get();
    for (int64_t y = 0; y < ht; ++y)
        for (int64_t x = 0; x < w; ++x) {
            const size_t i = size_t(y * w + x);
            uint8_t* out = &img.rgb[3 * i];
            const bool inside = x >= g.left && x < g.left + g.width && y >= g.top && y < g.top + g.height;
            if (!inside)
                colour(g.transparent >= 0 ? g.transparent : 0, out);
            else if (src[4 * i + 3] == 0 && g.transparent >= 0)
                colour(g.transparent, out);
            else
                std::memcpy(out, src + 4 * i, 3);
        }
    return img;
}

// ---- BMP: 16-bit pixels ---------------------------------------------------------------------------
// stb widens 5/6-bit channels by bit replication, PIL (Unpack.c BGR;15 / BGR;16) by v * 255 / (2^n - 1)
// with integer division. stb's widening keeps the n-bit value in the top bits, so we recompute PIL's.
void fix_bmp16(const std::vector<uint8_t>& b, Image& img) {
    if (b.size() < 34 || le32(b.data() + 14) < 40 || le16(b.data() + 28) != 16) return;
    const uint32_t compression = le32(b.data() + 30);
    int bits[3] = {5, 5, 5};  // R, G, B
    if (compression == 3) {   // BI_BITFIELDS: masks right after the 40-byte header (or inside a V4/V5 header)
        if (b.size() < 66) return;
        const uint32_t r = le32(b.data() + 54), g = le32(b.data() + 58), bl = le32(b.data() + 62);
        if (r == 0xF800 && g == 0x7E0 && bl == 0x1F)
            bits[1] = 6;
        else if (!(r == 0x7C00 && g == 0x3E0 && bl == 0x1F))
            return;  // a layout PIL does not read either
    } else if (compression != 0) {
        return;
    }
    for (size_t i = 0; i < img.rgb.size(); ++i) {
        const int n = bits[i % 3], v = img.rgb[i] >> (8 - n);
        img.rgb[i] = uint8_t(v * 255 / ((1 << n) - 1));
    }
}

struct Decoded {
    Header header;
    std::vector<uint8_t> bytes;
};

Decoded open_checked(const std::string& path, int64_t max_pixels) {
    stbi_set_flip_vertically_on_load_thread(0);  // whatever other code set globally, rows stay top-down here
    Decoded d;
    d.bytes = read_file(path);
    d.header = parse_header(path, d.bytes);
    check_size(path, d.header, max_pixels);
    int w = 0, h = 0, comp = 0;
    if (!stbi_info_from_memory(d.bytes.data(), int(d.bytes.size()), &w, &h, &comp)) stb_fail(path, d.header.format);
    check_stb_dims(path, d.header, w, h);
    return d;
}

}  // namespace

Image read_image(const std::string& path, int64_t max_pixels) {
    const Decoded d = open_checked(path, max_pixels);
    const Header& h = d.header;
    const int size = int(d.bytes.size());
    if (h.format == Format::Gif) return decode_gif(path, d.bytes, h);
    int w = 0, ht = 0, comp = 0;
    if (h.format == Format::Png && h.png_bit_depth == 16 && h.png_color_type == 0) {
        // PIL: mode I;16, and convert("RGB") saturates at 255 (it does not scale).
        StbPtr<uint16_t> gray(stbi_load_16_from_memory(d.bytes.data(), size, &w, &ht, &comp, 1));
        if (!gray) stb_fail(path, h.format);
        check_stb_dims(path, h, w, ht);
        Image img{w, ht, std::vector<uint8_t>(size_t(w) * size_t(ht) * 3)};
        for (size_t i = 0; i < size_t(w) * size_t(ht); ++i)
            img.rgb[3 * i] = img.rgb[3 * i + 1] = img.rgb[3 * i + 2] = uint8_t(std::min<uint16_t>(gray.get()[i], 255));
        return img;
    }
    // Everything else: stb's RGB conversion is PIL's (alpha dropped, gray replicated, palette expanded,
    // 16-bit colour -> high byte, 1/2/4-bit gray scaled by 255/85/17).
    StbPtr<uint8_t> rgb(stbi_load_from_memory(d.bytes.data(), size, &w, &ht, &comp, 3));
    if (!rgb) stb_fail(path, h.format);
    check_stb_dims(path, h, w, ht);
    Image img{w, ht, {}};
    img.rgb.assign(rgb.get(), rgb.get() + size_t(w) * size_t(ht) * 3);
    if (h.format == Format::Bmp) fix_bmp16(d.bytes, img);
    return img;
}

std::vector<uint8_t> read_label_map(const std::string& path, int64_t* width, int64_t* height, int64_t max_pixels) {
    const Decoded d = open_checked(path, max_pixels);
    const Header& h = d.header;
    const int size = int(d.bytes.size());
    int w = 0, ht = 0, comp = 0;
    stbi_info_from_memory(d.bytes.data(), size, &w, &ht, &comp);
    std::vector<uint8_t> labels(size_t(w) * size_t(ht));
    if (h.format == Format::Png && h.png_color_type == 3) {
        // Mode P: recover the indices from the colours stb expanded, through the PLTE chunk.
        std::map<uint32_t, int> index_of;  // colour -> index, -1 if several indices share it
        bool have_plte = false;
        for (size_t p = 8; p + 12 <= d.bytes.size();) {
            const size_t len = be32(d.bytes.data() + p);
            if (len > d.bytes.size() - p - 12) break;
            if (std::memcmp(d.bytes.data() + p + 4, "PLTE", 4) == 0) {
                have_plte = true;
                const uint8_t* pal = d.bytes.data() + p + 8;
                for (size_t i = 0; i + 3 <= len && i / 3 < 256; i += 3) {
                    const uint32_t c = uint32_t(pal[i]) << 16 | uint32_t(pal[i + 1]) << 8 | pal[i + 2];
                    auto [it, inserted] = index_of.emplace(c, int(i / 3));
                    if (!inserted) it->second = -1;
                }
                break;
            }
            p += len + 12;
        }
        if (!have_plte) fail(path, "palette PNG without a PLTE chunk");
        StbPtr<uint8_t> rgb(stbi_load_from_memory(d.bytes.data(), size, &w, &ht, &comp, 3));
        if (!rgb) stb_fail(path, h.format);
        check_stb_dims(path, h, w, ht);
        for (size_t i = 0; i < labels.size(); ++i) {
            const uint8_t* c = rgb.get() + 3 * i;
            auto it = index_of.find(uint32_t(c[0]) << 16 | uint32_t(c[1]) << 8 | c[2]);
            if (it == index_of.end()) fail(path, "palette label map: a pixel's colour is not in the palette");
            if (it->second < 0)
                fail(path, "palette label map: its palette repeats a colour that the image uses, so the class ids "
                           "cannot be recovered; save it as an 8-bit grayscale (mode L) PNG");
            labels[i] = uint8_t(it->second);
        }
    } else if (h.format == Format::Png && h.png_bit_depth == 16 && h.png_color_type == 0) {
        StbPtr<uint16_t> gray(stbi_load_16_from_memory(d.bytes.data(), size, &w, &ht, &comp, 1));
        if (!gray) stb_fail(path, h.format);
        check_stb_dims(path, h, w, ht);
        for (size_t i = 0; i < labels.size(); ++i) {
            if (gray.get()[i] > 255)
                fail(path, "16-bit label map holds a class id above 255 (" + std::to_string(gray.get()[i]) + ")");
            labels[i] = uint8_t(gray.get()[i]);
        }
    } else {
        if (comp != 1 || h.format == Format::Gif)
            fail(path, "a label map must be a single-channel image (8-bit grayscale, or a palette PNG); this " +
                           std::string(format_name(h.format)) + " has " + std::to_string(comp) + " channels");
        StbPtr<uint8_t> gray(stbi_load_from_memory(d.bytes.data(), size, &w, &ht, &comp, 1));
        if (!gray) stb_fail(path, h.format);
        check_stb_dims(path, h, w, ht);
        labels.assign(gray.get(), gray.get() + labels.size());
    }
    *width = w;
    *height = ht;
    return labels;
}

bool write_png(const std::string& path, const Image& img) {
    if (img.width <= 0 || img.height <= 0 || img.rgb.size() != size_t(img.width * img.height * 3)) return false;
    if (img.width > (1 << 24) || img.height > (1 << 24)) return false;
    return stbi_write_png(path.c_str(), int(img.width), int(img.height), 3, img.rgb.data(), int(img.width * 3)) != 0;
}

}  // namespace d2v::vision
