// PNG through libpng (Debian's libpng16: maintained, fuzzed upstream), reproducing the mode Pillow
// opens each PNG in. libpng reports errors by longjmp, so the two functions that call into it
// (read_png_header, read_png_rows) hold nothing with a destructor; the C++ side owns the buffers and
// destroys libpng's state in a guard outside them.
//
// Bounds: the pixel limit is checked on the IHDR before any row is allocated; the compressed data
// must be able to expand to the rows the IHDR claims (deflate expands at most 1032:1, so a file
// with too little IDAT is refused as truncated before the allocation); decoding stops as soon as the
// rows are complete, so compressed data that inflates to gigabytes past the image costs neither
// memory nor time; ancillary chunks (text, ICC profiles, ...) are skipped unread, as we use none.
#include <png.h>

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>

#include "image_decoders.h"

namespace d2v::vision::detail {
namespace {

// Everything libpng's callbacks touch: plain data, so a longjmp out of libpng skips no destructor.
struct PngSource {
    const uint8_t* data;
    size_t size;
    size_t pos;
    char error[256];
    png_uint_32 height;  // set once the IHDR is read
    bool interlaced;
    bool rows_done;  // every row was decoded when libpng asked for more data
};

// After the last row libpng goes on inflating whatever compressed data is left, only to check that the
// stream ends; a few megabytes of it can inflate to gigabytes, which costs seconds. So the first read
// once every row is done (libpng's row counter at the height, or its pass counter past the last
// Adam7 pass) stops the decoding, with the image complete.
void read_from_memory(png_structp png, png_bytep out, size_t n) {
    auto* src = static_cast<PngSource*>(png_get_io_ptr(png));
    if (src->height > 0 && (png_get_current_pass_number(png) >= 7 ||
                            (!src->interlaced && png_get_current_row_number(png) >= src->height))) {
        src->rows_done = true;
        png_error(png, "all rows decoded");
    }
    if (n > src->size - src->pos) png_error(png, "the file ends before the image does (truncated PNG)");
    std::memcpy(out, src->data + src->pos, n);
    src->pos += n;
}

void on_error(png_structp png, png_const_charp message) {
    auto* src = static_cast<PngSource*>(png_get_error_ptr(png));
    std::snprintf(src->error, sizeof src->error, "%s", message);
    png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}  // recoverable oddities decode as libpng recovers them

struct PngHeader {
    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0, interlace = 0;
};

bool read_png_header(png_structp png, png_infop info, PngHeader* h) {
    if (setjmp(png_jmpbuf(png))) return false;
    png_read_info(png, info);
    png_get_IHDR(png, info, &h->width, &h->height, &h->bit_depth, &h->color_type, &h->interlace, nullptr, nullptr);
    return true;
}

// Transforms to PIL's view of the file: palette indices one byte each (not expanded: PIL keeps mode P),
// 1/2/4-bit gray widened by v * 255 / (2^n - 1) (PIL's L;1/L;2/L;4), 16-bit samples cut to their high
// byte (PIL's RGB;16B, RGBA;16B, LA;16B) except plain 16-bit gray, which PIL keeps as I;16.
bool read_png_rows(png_structp png, png_infop info, const PngHeader& h, png_bytepp rows, size_t* row_bytes) {
    if (setjmp(png_jmpbuf(png))) return false;
    if (h.color_type == PNG_COLOR_TYPE_PALETTE && h.bit_depth < 8) png_set_packing(png);
    if (h.color_type == PNG_COLOR_TYPE_GRAY && h.bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (h.bit_depth == 16 && h.color_type != PNG_COLOR_TYPE_GRAY) png_set_strip_16(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    const size_t got = png_get_rowbytes(png, info);
    if (got != *row_bytes) {  // our expectation and libpng's disagree: refuse rather than overrun
        *row_bytes = got;
        return true;
    }
    png_read_image(png, rows);
    return true;
}

struct PngGuard {
    png_structp png = nullptr;
    png_infop info = nullptr;
    ~PngGuard() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

// Bytes of IDAT data the file really holds (chunk walk, bounds-checked; stops at a length past the end).
uint64_t idat_bytes(const uint8_t* data, size_t size) {
    uint64_t total = 0;
    for (size_t p = 8; p + 8 <= size;) {
        const uint64_t len = be32(data + p);
        if (std::memcmp(data + p + 4, "IDAT", 4) == 0) total += std::min<uint64_t>(len, size - p - 8);
        if (len > size - p - 8) break;
        p += 8 + len + 4;
    }
    return total;
}

}  // namespace

Raster decode_png(const std::string& name, const uint8_t* data, size_t size, int64_t max_pixels) {
    // Our own look at the IHDR first, so that a zero or huge size gets our message rather than libpng's.
    if (size < 33 || std::memcmp(data + 12, "IHDR", 4) != 0) fail(name, "truncated or corrupt PNG: no IHDR chunk");
    check_pixel_limit(name, "PNG", be32(data + 16), be32(data + 20), max_pixels);
    PngSource src{data, size, 0, {0}, 0, false, false};
    PngGuard g;
    g.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, on_error, on_warning);
    if (!g.png) fail(name, "cannot start the PNG decoder (out of memory)");
    g.info = png_create_info_struct(g.png);
    if (!g.info) fail(name, "cannot start the PNG decoder (out of memory)");
    png_set_read_fn(g.png, &src, read_from_memory);
    // A safety net under our own pixel check; chunk limits matter little as ancillary chunks are skipped.
    const png_uint_32 side = png_uint_32(std::min<int64_t>(max_pixels, PNG_UINT_31_MAX));
    png_set_user_limits(g.png, side, side);
    png_set_chunk_cache_max(g.png, 1000);
    png_set_chunk_malloc_max(g.png, 1 << 20);
    png_set_keep_unknown_chunks(g.png, PNG_HANDLE_CHUNK_NEVER, nullptr, -1);  // every known ancillary chunk
    png_set_keep_unknown_chunks(g.png, PNG_HANDLE_CHUNK_NEVER, nullptr, 0);   // and unknown ones
    static const png_byte trns[] = "tRNS";  // not in libpng's list above; PIL's convert("RGB") ignores it too
    png_set_keep_unknown_chunks(g.png, PNG_HANDLE_CHUNK_NEVER, trns, 1);

    PngHeader h;
    if (!read_png_header(g.png, g.info, &h)) fail(name, std::string("cannot decode PNG image: ") + src.error);
    check_pixel_limit(name, "PNG", h.width, h.height, max_pixels);

    Raster r;
    r.width = h.width;
    r.height = h.height;
    size_t bytes_per_pixel = 1;
    switch (h.color_type) {
        case PNG_COLOR_TYPE_GRAY:
            r.mode = h.bit_depth == 16 ? PilMode::I16 : PilMode::L;
            bytes_per_pixel = h.bit_depth == 16 ? 2 : 1;
            break;
        case PNG_COLOR_TYPE_GRAY_ALPHA: r.mode = PilMode::LA; bytes_per_pixel = 2; break;
        case PNG_COLOR_TYPE_RGB: r.mode = PilMode::RGB; bytes_per_pixel = 3; break;
        case PNG_COLOR_TYPE_RGB_ALPHA: r.mode = PilMode::RGBA; bytes_per_pixel = 4; break;
        case PNG_COLOR_TYPE_PALETTE: {
            r.mode = PilMode::P;
            png_colorp colours = nullptr;
            int n = 0;
            if (!png_get_PLTE(g.png, g.info, &colours, &n) || n <= 0) fail(name, "palette PNG without a PLTE chunk");
            for (int i = 0; i < n; ++i) r.palette.insert(r.palette.end(), {colours[i].red, colours[i].green, colours[i].blue});
            break;
        }
        default: fail(name, "unsupported PNG colour type " + std::to_string(h.color_type));
    }

    // The stored rows (before de-filtering: one filter byte each, samples packed at the file's bit depth)
    // are what the IDAT data must inflate to. Interlaced images add at most 7 passes' filter bytes.
    const int samples = h.color_type == PNG_COLOR_TYPE_PALETTE || h.color_type == PNG_COLOR_TYPE_GRAY ? 1
                        : h.color_type == PNG_COLOR_TYPE_GRAY_ALPHA                                 ? 2
                        : h.color_type == PNG_COLOR_TYPE_RGB                                        ? 3
                                                                                                    : 4;
    const uint64_t stored = uint64_t(h.height) * ((uint64_t(h.width) * samples * h.bit_depth + 7) / 8);
    const uint64_t compressed = idat_bytes(data, size);
    constexpr uint64_t kDeflateMaxRatio = 1032;  // a 258-byte match coded in 2 bits
    if (compressed * kDeflateMaxRatio < stored)
        fail(name, "truncated PNG: its " + std::to_string(h.width) + "x" + std::to_string(h.height) + " image needs " +
                       std::to_string(stored) + " bytes of pixel data, more than the " + std::to_string(compressed) +
                       " compressed bytes in the file can hold");

    size_t row_bytes = size_t(h.width) * bytes_per_pixel;
    r.pixels.resize(row_bytes * size_t(h.height));
    std::vector<png_bytep> rows(h.height);
    for (size_t y = 0; y < rows.size(); ++y) rows[y] = r.pixels.data() + y * row_bytes;
    const size_t expected = row_bytes;
    src.height = h.height;
    src.interlaced = h.interlace != PNG_INTERLACE_NONE;
    if (!read_png_rows(g.png, g.info, h, rows.data(), &row_bytes) && !src.rows_done)
        fail(name, std::string("cannot decode PNG image: ") + src.error);
    if (row_bytes != expected)
        fail(name, "PNG decoder produced rows of " + std::to_string(row_bytes) + " bytes, expected " + std::to_string(expected));

    if (r.mode == PilMode::I16) {
        r.gray16.resize(size_t(h.width) * size_t(h.height));
        for (size_t i = 0; i < r.gray16.size(); ++i) r.gray16[i] = uint16_t(r.pixels[2 * i] << 8 | r.pixels[2 * i + 1]);
        r.pixels.clear();
        r.pixels.shrink_to_fit();
    }
    return r;
}

}  // namespace d2v::vision::detail
