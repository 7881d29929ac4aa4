// JPEG through libjpeg-turbo, set up as Pillow sets it up (JpegDecode.c), so that the pixels are
// Pillow's: libjpeg's defaults (ISLOW integer IDCT, fancy upsampling), the colour space libjpeg infers
// from the JFIF/Adobe markers, output gray (1 component), RGB (3) or CMYK (4; Pillow reads it as
// "CMYK;I", i.e. inverted, assuming Adobe's convention). Any other component count or a sample
// precision other than 8 bits is refused, as Pillow refuses it.
//
// Truncation: Pillow refuses a file that ends before the image does ("image file is truncated"); we
// refuse it too (libjpeg's "Premature end of JPEG file"), and also a scan that stops early at a marker
// ("premature end of data segment", e.g. a cut file with an EOI appended), which Pillow silently fills
// with gray. Other corrupt-data warnings decode as libjpeg recovers them, as in Pillow.
//
// Bounds, before jpeg_start_decompress allocates anything image-sized (a progressive file's
// coefficient buffers are 128 bytes per 8x8 block): the pixel limit, and for Huffman-coded files the
// data must hold at least one bit per 8x8 block (every block codes at least its DC difference), so a
// small file cannot claim a huge frame. Arithmetic-coded files can code a block in far less than a
// bit; for them the pixel limit is the bound.
//
// libjpeg reports errors by longjmp, so the two functions that call into it (read_jpeg_header,
// read_jpeg_rows) hold nothing with a destructor.
#include <cstdio>  // jpeglib.h needs FILE and size_t first

#include <jerror.h>
#include <jpeglib.h>

#include <csetjmp>
#include <cstring>

#include "image_decoders.h"

namespace d2v::vision::detail {
namespace {

struct JpegErrors {
    jpeg_error_mgr mgr;  // first member: libjpeg hands our callbacks &mgr as cinfo->err
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    int truncation;  // JWRN_JPEG_EOF or JWRN_HIT_MARKER when decoding stopped at one, else 0
};

void on_error(j_common_ptr cinfo) {
    auto* e = reinterpret_cast<JpegErrors*>(cinfo->err);
    cinfo->err->format_message(cinfo, e->message);
    longjmp(e->jump, 1);
}

void on_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return;  // trace output
    const int code = cinfo->err->msg_code;
    if (code != JWRN_JPEG_EOF && code != JWRN_HIT_MARKER) return;  // recoverable corruption: decode on, as Pillow
    auto* e = reinterpret_cast<JpegErrors*>(cinfo->err);
    cinfo->err->format_message(cinfo, e->message);
    e->truncation = code;
    longjmp(e->jump, 1);
}

bool read_jpeg_header(jpeg_decompress_struct* cinfo, JpegErrors* e, const uint8_t* data, size_t size) {
    if (setjmp(e->jump)) return false;
    cinfo->err = jpeg_std_error(&e->mgr);
    e->mgr.error_exit = on_error;
    e->mgr.emit_message = on_message;
    jpeg_create_decompress(cinfo);
    jpeg_mem_src(cinfo, data, static_cast<unsigned long>(size));
    jpeg_read_header(cinfo, TRUE);
    return true;
}

bool read_jpeg_rows(jpeg_decompress_struct* cinfo, JpegErrors* e, uint8_t* out, size_t row_bytes) {
    if (setjmp(e->jump)) return false;
    jpeg_calc_output_dimensions(cinfo);
    if (size_t(cinfo->output_width) * size_t(cinfo->output_components) != row_bytes) {
        std::snprintf(e->message, sizeof e->message, "unexpected output row size");
        return false;
    }
    jpeg_start_decompress(cinfo);
    while (cinfo->output_scanline < cinfo->output_height) {
        JSAMPROW row = out + size_t(cinfo->output_scanline) * row_bytes;
        jpeg_read_scanlines(cinfo, &row, 1);
    }
    // No jpeg_finish_decompress: what follows the last scan (EOI, trailing bytes) cannot change the pixels.
    return true;
}

struct JpegGuard {
    jpeg_decompress_struct cinfo;
    JpegErrors errors;
    JpegGuard() {
        std::memset(&cinfo, 0, sizeof cinfo);
        std::memset(&errors, 0, sizeof errors);
    }
    ~JpegGuard() { jpeg_destroy_decompress(&cinfo); }  // safe on a zeroed or half-made struct
};

}  // namespace

Raster decode_jpeg(const std::string& name, const uint8_t* data, size_t size, int64_t max_pixels) {
    if (size > 0xFFFFFFFFull) fail(name, "JPEG file of 4 GiB or more");
    JpegGuard g;
    jpeg_decompress_struct* cinfo = &g.cinfo;
    auto refuse = [&]() {
        if (g.errors.truncation == JWRN_JPEG_EOF)
            fail(name, std::string("truncated JPEG: ") + g.errors.message +
                           " (the file ends before the image does; Pillow refuses it too)");
        if (g.errors.truncation == JWRN_HIT_MARKER)
            fail(name, std::string("truncated JPEG: ") + g.errors.message +
                           " (the image data stops before the image is complete; refusing a partly gray image)");
        fail(name, std::string("cannot decode JPEG image: ") + g.errors.message);
    };
    if (!read_jpeg_header(cinfo, &g.errors, data, size)) refuse();
    check_pixel_limit(name, "JPEG", cinfo->image_width, cinfo->image_height, max_pixels);
    if (cinfo->data_precision != 8)
        fail(name, "JPEG with " + std::to_string(cinfo->data_precision) + "-bit samples is not supported (Pillow refuses it too)");
    Raster r;
    r.width = cinfo->image_width;
    r.height = cinfo->image_height;
    switch (cinfo->num_components) {
        case 1: r.mode = PilMode::L; cinfo->out_color_space = JCS_GRAYSCALE; break;
        case 3: r.mode = PilMode::RGB; cinfo->out_color_space = JCS_RGB; break;
        case 4: r.mode = PilMode::CMYK; cinfo->out_color_space = JCS_CMYK; break;
        default:
            fail(name, "JPEG with " + std::to_string(cinfo->num_components) + " components is not supported (Pillow refuses it too)");
    }
    if (!cinfo->arith_code) {
        uint64_t blocks = 0;
        for (int c = 0; c < cinfo->num_components; ++c)
            blocks += uint64_t(cinfo->comp_info[c].width_in_blocks) * cinfo->comp_info[c].height_in_blocks;
        const uint64_t left = cinfo->src->bytes_in_buffer;  // everything after the first scan header
        if (blocks > 8 * left)
            fail(name, "truncated JPEG: its " + std::to_string(r.width) + "x" + std::to_string(r.height) + " frame has " +
                           std::to_string(blocks) + " 8x8 blocks, more than the " + std::to_string(left) +
                           " bytes of image data left in the file can code (at least one bit each)");
    }
    const size_t row_bytes = size_t(r.width) * size_t(channels_of(r.mode));
    r.pixels.resize(row_bytes * size_t(r.height));
    if (!read_jpeg_rows(cinfo, &g.errors, r.pixels.data(), row_bytes)) refuse();
    if (r.mode == PilMode::CMYK)
        for (uint8_t& v : r.pixels) v = uint8_t(255 - v);  // Pillow's "CMYK;I" unpacking
    return r;
}

}  // namespace d2v::vision::detail
