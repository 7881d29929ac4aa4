// GIF and BMP through stb_image (libstb.so provides the implementation; no STB_IMAGE_IMPLEMENTATION
// here): Debian ships no maintained BMP decoder, and giflib would still need the frame/transparency
// handling below. stb only ever sees a file whose header we have parsed and checked ourselves: the
// pixel limit (stb's working memory is at most 9 bytes per pixel of the GIF screen / 4 per BMP
// pixel), and that the file holds the data its header needs (a short BMP or a GIF whose first
// frame's data is cut off is refused as truncated, as Pillow refuses them, instead of stb filling
// the rest with zeros). Both then get the few fixes that make stb's RGB equal PIL's convert("RGB").
#include <stb/stb_image.h>

#include <climits>
#include <cstring>
#include <memory>

#include "image_decoders.h"

namespace d2v::vision::detail {
namespace {

uint32_t le16(const uint8_t* p) { return uint32_t(p[1]) << 8 | p[0]; }
uint32_t le32(const uint8_t* p) { return uint32_t(p[3]) << 24 | uint32_t(p[2]) << 16 | uint32_t(p[1]) << 8 | p[0]; }

struct StbFree {
    void operator()(void* p) const { stbi_image_free(p); }
};

// stb's RGB (or RGBA) pixels for a file whose header said width x height.
std::unique_ptr<uint8_t, StbFree> stb_decode(const std::string& name, const char* format, const uint8_t* data, size_t size,
                                             int64_t width, int64_t height, int channels) {
    if (size > size_t(INT_MAX)) fail(name, std::string(format) + " file of 2 GiB or more");
    stbi_set_flip_vertically_on_load_thread(0);  // whatever other code set globally, rows stay top-down here
    int w = 0, h = 0, comp = 0;
    std::unique_ptr<uint8_t, StbFree> px(stbi_load_from_memory(data, int(size), &w, &h, &comp, channels));
    if (!px) {
        const char* why = stbi_failure_reason();
        fail(name, std::string("cannot decode ") + format + " image: " + (why ? why : "unknown error") +
                       " (corrupt file, or an unsupported variant)");
    }
    if (w != width || h != height)
        fail(name, "decoded size " + std::to_string(w) + "x" + std::to_string(h) + " differs from the header's " +
                       std::to_string(width) + "x" + std::to_string(height));
    return px;
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

GifFrame0 parse_gif_frame0(const std::string& name, const uint8_t* b, size_t n) {
    GifFrame0 g;
    auto need = [&](size_t end) {
        if (end > n) fail(name, "truncated GIF (the file ends inside its first image)");
    };
    auto skip_sub_blocks = [&](size_t& p) {  // data sub-blocks up to the zero-length terminator
        for (;;) {
            need(p + 1);
            const size_t len = b[p++];
            if (len == 0) return;
            need(p + len);
            p += len;
        }
    };
    need(13);
    const uint8_t flags = b[10];
    size_t p = 13;
    const uint8_t* global = nullptr;
    int global_size = 0;
    if (flags & 0x80) {
        global_size = 2 << (flags & 7);
        need(p + 3 * size_t(global_size));
        global = b + p;
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
            skip_sub_blocks(p);
        } else if (block == 0x2C) {  // image descriptor
            need(p + 9);
            g.left = le16(b + p);
            g.top = le16(b + p + 2);
            g.width = le16(b + p + 4);
            g.height = le16(b + p + 6);
            const uint8_t lflags = b[p + 8];
            p += 9;
            if (lflags & 0x80) {
                g.palette_size = 2 << (lflags & 7);
                need(p + 3 * size_t(g.palette_size));
                g.palette = b + p;
                p += 3 * size_t(g.palette_size);
            } else {
                g.palette = global;
                g.palette_size = global_size;
            }
            if (!g.palette) fail(name, "GIF frame without a colour table is not supported");
            need(p + 1);  // LZW minimum code size, then the image data: all of it must be there (Pillow: truncated)
            ++p;
            skip_sub_blocks(p);
            return g;
        } else if (block == 0x3B) {
            fail(name, "GIF without any image");
        } else {
            fail(name, "corrupt GIF: unexpected block type " + std::to_string(block));
        }
    }
}

// ---- BMP: 16-bit pixels ---------------------------------------------------------------------------
// stb widens 5/6-bit channels by bit replication, PIL (Unpack.c BGR;15 / BGR;16) by v * 255 / (2^n - 1)
// with integer division. stb's widening keeps the n-bit value in the top bits, so we recompute PIL's.
void fix_bmp16(const uint8_t* b, size_t size, Raster& img) {
    if (size < 34 || le32(b + 14) < 40 || le16(b + 28) != 16) return;
    const uint32_t compression = le32(b + 30);
    int bits[3] = {5, 5, 5};  // R, G, B
    if (compression == 3) {   // BI_BITFIELDS: masks right after the 40-byte header (or inside a V4/V5 header)
        if (size < 66) return;
        const uint32_t r = le32(b + 54), g = le32(b + 58), bl = le32(b + 62);
        if (r == 0xF800 && g == 0x7E0 && bl == 0x1F)
            bits[1] = 6;
        else if (!(r == 0x7C00 && g == 0x3E0 && bl == 0x1F))
            return;  // a layout PIL does not read either
    } else if (compression != 0) {
        return;
    }
    for (size_t i = 0; i < img.pixels.size(); ++i) {
        const int n = bits[i % 3], v = img.pixels[i] >> (8 - n);
        img.pixels[i] = uint8_t(v * 255 / ((1 << n) - 1));
    }
}

}  // namespace

Raster decode_gif(const std::string& name, const uint8_t* b, size_t size, int64_t max_pixels) {
    if (size < 13) fail(name, "truncated GIF header");
    const int64_t width = le16(b + 6), height = le16(b + 8);
    check_pixel_limit(name, "GIF", width, height, max_pixels);
    const GifFrame0 g = parse_gif_frame0(name, b, size);
    const auto rgba = stb_decode(name, "GIF", b, size, width, height, 4);
    auto colour = [&](int index, uint8_t* out) {
        if (index >= 0 && index < g.palette_size) {
            std::memcpy(out, g.palette + 3 * index, 3);
        } else {
            out[0] = out[1] = out[2] = 0;
        }
    };
    Raster img;
    img.width = width;
    img.height = height;
    img.pixels.resize(size_t(width) * size_t(height) * 3);
    const uint8_t* src = rgba.get();
    for (int64_t y = 0; y < height; ++y)
        for (int64_t x = 0; x < width; ++x) {
            const size_t i = size_t(y * width + x);
            uint8_t* out = &img.pixels[3 * i];
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

Raster decode_bmp(const std::string& name, const uint8_t* b, size_t size, int64_t max_pixels) {
    if (size < 26) fail(name, "truncated BMP header");
    const uint32_t offset = le32(b + 10), dib = le32(b + 14);
    int64_t width = 0, height = 0;
    uint32_t bpp = 0, compression = 0;
    if (dib == 12) {  // OS/2 BITMAPCOREHEADER
        width = le16(b + 18);
        height = le16(b + 20);
        bpp = le16(b + 24);
    } else {
        if (size < 34) fail(name, "truncated BMP header");
        width = int32_t(le32(b + 18));
        height = int32_t(le32(b + 22));  // negative: rows stored top-down (stb and Pillow read both)
        bpp = le16(b + 28);
        compression = le32(b + 30);
        if (width < 0) fail(name, "corrupt BMP: negative width");
        if (height < 0) height = -height;
    }
    check_pixel_limit(name, "BMP", width, height, max_pixels);
    // Uncompressed and bit-field pixels take a fixed size: the file must hold all of it (stb would read zeros).
    if ((compression == 0 || compression == 3 || compression == 6) && bpp > 0 && bpp <= 32) {
        const uint64_t stride = (uint64_t(width) * bpp + 31) / 32 * 4;
        const uint64_t needed = uint64_t(offset) + stride * uint64_t(height);
        if (needed > size)
            fail(name, "truncated BMP: its " + std::to_string(width) + "x" + std::to_string(height) + " " +
                           std::to_string(bpp) + "-bit pixels need " + std::to_string(needed) + " bytes, the file has " +
                           std::to_string(size));
    }
    const auto rgb = stb_decode(name, "BMP", b, size, width, height, 3);
    Raster img;
    img.width = width;
    img.height = height;
    img.pixels.assign(rgb.get(), rgb.get() + size_t(width) * size_t(height) * 3);
    fix_bmp16(b, size, img);
    return img;
}

}  // namespace d2v::vision::detail
