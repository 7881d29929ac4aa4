#!/usr/bin/env python3
"""Reference fixtures for the vision front end (image decoding, PIL-exact resize, BeitImageProcessor).

Reference environment: the one of make_fixtures.py plus Pillow, and optionally torchvision (only to
measure how far Transformers' default torchvision backend is from the PIL path; without it the
measurements of the previous cases.json are kept for the cases it has, the others say "not measured"):

    ~/.cache/d2v-ref/bin/pip install Pillow torchvision

Run from the repository root:

    ~/.cache/d2v-ref/bin/python weights_tools/make_image_fixtures.py

What it writes (deterministic; about 6.1 MB, 4.9 MB of it the COCO 640x640 expectation):

  tests/fixtures/vision/images/       small synthetic images in every format/mode read_image() must
                                      handle: PNG L/LA/RGB/RGBA/P (8- and 4-bit)/1-bit/16-bit gray, RGB,
                                      RGBA, Adam7-interlaced; GIF (2 frames with a transparent index;
                                      hand-made ones with an offset first frame, local palette,
                                      interlacing); BMP 24/32/8-bit, 16-bit 555/565, top-down; JPEG
                                      baseline 4:2:0 and 4:4:4, progressive, gray; JPEGs of a 157x117
                                      crop of the COCO photo (4:2:0, 4:2:2, 4:4:4, progressive, restart
                                      markers, optimised tables, gray, CMYK, Adobe RGB, EXIF orientation);
                                      a palette (mode P) label map
  tests/fixtures/vision/images/bad/   broken and hostile files: truncated PNG/JPEG/BMP/GIF, a JPEG cut
                                      short with an EOI appended, corrupt JPEG (garbage after the header),
                                      a JPEG whose Huffman table counts sum past 256, a 632-byte JPEG
                                      whose frame claims 8000x8000, 0x0 PNG, a PNG header claiming
                                      100000x100000, text named .png, an empty file
  tests/fixtures/vision/preprocess/   cases.json (every case, its config, measurements) and
      pixel_values/<case>.npy  BeitImageProcessorPil output [3, H, W] float32, in full for the COCO
                               photo at 224 and 640 and the small cases, otherwise strided ("sample":
                               expected == full[:, ::sy, ::sx])
      decoded/<image>.png   Image.open(p).convert("RGB")       } uint8 expectations as plain 8-bit PNGs
      resize/<name>.png     PIL Image.resize, every filter     } (lossless, ~10x smaller than .npy)
      labels/<case>.png     segmentation labels [H, W]         }
  Decoded expectations of larger images are strided ("sample"); for those cases.json also holds the
  FNV-1a 64 hash of PIL's full decoded pixels, so every pixel is still compared.

The reference for pixel_values is Transformers' PIL backend (BeitImageProcessorPil), fed the RGB
image that PIL decodes (Image.open(p).convert("RGB"), alpha dropped).  For every case we also record
the max |difference| of the default torchvision backend (BeitImageProcessor) from it.

JPEG: both sides decode with libjpeg-turbo set up the same way (Pillow's wheel bundles 3.x, Debian
ships 2.1; their integer IDCT, upsampling and colour conversion agree bit for bit), so JPEG cases are
exact like every other format.

Segmentation labels: Transformers 5.x resizes segmentation maps with the *image* resample filter
(BILINEAR/BICUBIC on class ids, which invents ids between neighbouring classes), Transformers 4.x used
NEAREST.  We implement NEAREST; the expectation is reduce_labels (on uint8, as Transformers does it)
followed by PIL NEAREST resize, and cases.json records how many pixels Transformers 5.x gives
differently.
"""

import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import PIL
import torch
try:
    import torchvision
except ImportError:
    torchvision = None
import transformers
from PIL import Image
from transformers import BeitImageProcessor, BeitImageProcessorPil

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests/fixtures/vision"
IMAGES = OUT / "images"
BAD = IMAGES / "bad"
PRE = OUT / "preprocess"
SHARED = ROOT.parent / "shared/data"

RNG = np.random.default_rng(20240601)

# ----------------------------------------------------------------------------- helpers
def rel(p):
    p = Path(p).resolve()
    try:
        return "shared:" + str(p.relative_to(SHARED.resolve()))
    except ValueError:
        return str(p.relative_to(OUT.resolve()))


def save_npy(sub, name, arr):
    path = PRE / sub / f"{name}.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.ascontiguousarray(arr))
    return str(path.relative_to(OUT))


def save_png(sub, name, arr):
    """uint8 expectations (decoded pixels, resized images, labels) as plain 8-bit RGB / L PNGs: lossless and ~10x
    smaller than .npy.  The C++ test reads them with read_image / read_label_map; the plain 8-bit RGB and gray PNG
    paths are checked independently (COCO pixel_values .npy)."""
    path = PRE / sub / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    Image.fromarray(arr, "RGB" if arr.ndim == 3 else "L").save(path)
    assert np.array_equal(np.array(Image.open(path)), arr), path
    return str(path.relative_to(OUT))


def fnv1a64(arr):
    """FNV-1a 64 of the bytes of a uint8 array (C order); the C++ test hashes its decoded pixels the same way."""
    h = 0xCBF29CE484222325
    for b in np.ascontiguousarray(arr, dtype=np.uint8).tobytes():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def adam7_rows(pixels):
    """The scanlines of an interlaced PNG (8/16-bit samples): each pass's sub-image, empty passes left out."""
    rows = []
    for x0, y0, dx, dy in ADAM7:
        sub = pixels[y0::dy, x0::dx]
        if sub.shape[0] and sub.shape[1]:
            rows += [sub[y].tobytes() for y in range(sub.shape[0])]
    return rows


def png_bytes(width, height, bit_depth, color_type, rows, extra_chunks=(), interlace=0):
    """A PNG written by hand (PIL cannot write 16-bit RGB or interlaced PNGs); rows are raw scanline bytes."""

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + r for r in rows)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, interlace)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    for tag, data in extra_chunks:
        out += chunk(tag, data)
    return out + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def gif_lzw(indices, min_code_size):
    """GIF LZW data that only uses literal codes (a CLEAR before the table would grow a bit)."""
    clear, eoi = 1 << min_code_size, (1 << min_code_size) + 1
    width = min_code_size + 1
    run = (1 << min_code_size) - 4
    codes = []
    for i in range(0, len(indices), run):
        codes.append(clear)
        codes.extend(int(v) for v in indices[i : i + run])
    codes.append(eoi)
    bits, nbits, out = 0, 0, bytearray()
    for c in codes:
        bits |= c << nbits
        nbits += width
        while nbits >= 8:
            out.append(bits & 0xFF)
            bits >>= 8
            nbits -= 8
    if nbits:
        out.append(bits & 0xFF)
    blocks = bytearray([min_code_size])
    for i in range(0, len(out), 255):
        part = out[i : i + 255]
        blocks += bytes([len(part)]) + part
    return bytes(blocks + b"\x00")


def bmp_bytes(width, height, bpp, rows, palette=b""):
    """An uncompressed BMP by hand: rows in file order (bottom-up, or top-down when height < 0), unpadded."""
    stride = (width * bpp + 31) // 32 * 4
    data = b"".join(r.ljust(stride, b"\0") for r in rows)
    offset = 14 + 40 + len(palette)
    out = b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset)
    out += struct.pack("<IiiHHIIiiII", 40, width, height, 1, bpp, 0, len(data), 2835, 2835, len(palette) // 4, 0)
    return out + palette + data


def pattern_rgb(w, h, smooth=False):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / max(w - 1, 1)
    g = 255 * y / max(h - 1, 1)
    b = 127.5 + 127.5 * np.sin(x * 0.7) * np.cos(y * 0.5)
    img = np.stack([r, g, b], -1)
    img[(x // 8 + y // 8) % 2 == 0] *= 0.6  # sharp edges
    img[h // 3 : h // 3 + 4, w // 4 : 3 * w // 4] = [250, 20, 200]
    if not smooth:
        img += RNG.normal(0, 25, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def pattern_gray(w, h):
    return pattern_rgb(w, h)[..., 1].copy()


# ----------------------------------------------------------------------------- images
def write_images():
    IMAGES.mkdir(parents=True, exist_ok=True)
    BAD.mkdir(parents=True, exist_ok=True)
    made = {}

    def save(name, im, **kw):
        im.save(IMAGES / name, **kw)
        made[name] = IMAGES / name

    W, H = 37, 23
    rgb = pattern_rgb(W, H)
    save("rgb_37x23.png", Image.fromarray(rgb, "RGB"))
    save("gray_37x23.png", Image.fromarray(pattern_gray(W, H), "L"))
    la = np.stack([pattern_gray(W, H), RNG.integers(0, 256, (H, W), dtype=np.uint8)], -1)
    la[0, :, 1] = 0  # fully transparent row: alpha must be dropped, not composited
    save("gray_alpha_37x23.png", Image.fromarray(la, "LA"))
    rgba = np.concatenate([pattern_rgb(W, H), RNG.integers(0, 256, (H, W, 1), dtype=np.uint8)], -1)
    rgba[:, :3, 3] = 0
    save("rgba_37x23.png", Image.fromarray(rgba, "RGBA"))
    pal = Image.fromarray(pattern_rgb(W, H)).quantize(colors=40, dither=Image.Dither.NONE)
    save("palette_37x23.png", pal, transparency=3)
    pal16 = Image.fromarray(pattern_rgb(W, H)).quantize(colors=16, dither=Image.Dither.NONE)
    save("palette4bit_37x23.png", pal16, bits=4)
    save("bilevel_37x23.png", Image.fromarray(pattern_gray(W, H)).convert("1", dither=Image.Dither.NONE))
    # 16-bit gray: PIL opens it as I;16 and convert("RGB") CLIPS to 255 (values < 256 pass through).
    g16 = (pattern_gray(W, H).astype(np.uint32) * 257).astype(np.uint16)
    g16[: H // 2] //= 300  # small values (< 256) survive the clip, large ones saturate
    save("gray16_37x23.png", Image.fromarray(g16))
    # 16-bit RGB / RGBA by hand: PIL keeps the high byte.
    c16 = (pattern_rgb(W, H).astype(np.uint32) * 257 + RNG.integers(0, 257, (H, W, 3))).astype(">u2")
    (IMAGES / "rgb16_37x23.png").write_bytes(png_bytes(W, H, 16, 2, [c16[y].tobytes() for y in range(H)]))
    made["rgb16_37x23.png"] = IMAGES / "rgb16_37x23.png"
    a16 = np.concatenate([c16, RNG.integers(0, 65536, (H, W, 1)).astype(">u2")], -1).astype(">u2")
    (IMAGES / "rgba16_37x23.png").write_bytes(png_bytes(W, H, 16, 6, [a16[y].tobytes() for y in range(H)]))
    made["rgba16_37x23.png"] = IMAGES / "rgba16_37x23.png"
    ga16 = np.stack([g16.astype(">u2") * 3 + 7, RNG.integers(0, 65536, (H, W)).astype(">u2")], -1).astype(">u2")
    (IMAGES / "gray_alpha16_37x23.png").write_bytes(png_bytes(W, H, 16, 4, [ga16[y].tobytes() for y in range(H)]))
    made["gray_alpha16_37x23.png"] = IMAGES / "gray_alpha16_37x23.png"

    W2, H2 = 64, 48
    save("rgb_37x23.bmp", Image.fromarray(pattern_rgb(W, H)))
    save("palette_37x23.bmp", Image.fromarray(pattern_rgb(W, H)).quantize(colors=64))
    save("rgba_37x23.bmp", Image.fromarray(np.concatenate(
        [pattern_rgb(W, H), RNG.integers(0, 256, (H, W, 1), dtype=np.uint8)], -1), "RGBA"))
    # 16-bit BMPs by hand (PIL cannot write them): RGB555 (BI_RGB) and RGB565 (BI_BITFIELDS).
    for name, masks in [("rgb555_37x23.bmp", None), ("rgb565_37x23.bmp", (0xF800, 0x7E0, 0x1F))]:
        px = RNG.integers(0, 1 << 16, (H, W)).astype("<u2")
        if masks is None:
            px &= 0x7FFF
        row = (W * 2 + 3) // 4 * 4
        data = b"".join(px[H - 1 - y].tobytes().ljust(row, b"\0") for y in range(H))
        extra = struct.pack("<III", *masks) if masks else b""
        offset = 14 + 40 + len(extra)
        bmp = b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset)
        bmp += struct.pack("<IiiHHIIiiII", 40, W, H, 1, 16, 3 if masks else 0, len(data), 2835, 2835, 0, 0) + extra
        (IMAGES / name).write_bytes(bmp + data)
        made[name] = IMAGES / name
    smooth = Image.fromarray(pattern_rgb(W2, H2, smooth=True))
    save("baseline_64x48.jpg", smooth, quality=90)
    save("progressive_64x48.jpg", smooth, quality=90, progressive=True)
    save("baseline444_37x23.jpg", Image.fromarray(pattern_rgb(W, H, smooth=True)), quality=85, subsampling=0)
    save("gray_37x23.jpg", Image.fromarray(pattern_rgb(W, H, smooth=True)[..., 0]), quality=85)

    # GIF, 2 frames, transparent index on frame 0 (the first frame is what is read).
    f0 = Image.fromarray(pattern_rgb(W2, H2, smooth=True)).quantize(colors=32, dither=Image.Dither.NONE)
    f1 = Image.fromarray(255 - pattern_rgb(W2, H2, smooth=True)).quantize(colors=32, dither=Image.Dither.NONE)
    f0.save(IMAGES / "anim_64x48.gif", save_all=True, append_images=[f1], duration=100, loop=0,
            transparency=5, optimize=False)
    made["anim_64x48.gif"] = IMAGES / "anim_64x48.gif"

    # GIF by hand: 40x30 screen, first frame 20x15 at (5, 4) with a local palette and a transparent index,
    # background index 2 (stb and PIL fill the uncovered area differently; read_image must give PIL's answer).
    gct = bytes(np.array([[i * 30 % 256, 255 - i * 20, i * 7] for i in range(8)], np.uint8).tobytes())
    lct = bytes(np.array([[200 - i * 9, i * 13, 50 + i * 11] for i in range(16)], np.uint8).tobytes())
    idx = RNG.integers(0, 16, 20 * 15)
    idx[:25] = 9  # transparent index: PIL keeps palette[9], stb gives alpha 0
    gif = b"GIF89a" + struct.pack("<HHBBB", 40, 30, 0x80 | 2, 2, 0) + gct
    gif += b"\x21\xf9\x04" + bytes([0x05]) + struct.pack("<H", 10) + bytes([9, 0])
    gif += b"\x2c" + struct.pack("<HHHHB", 5, 4, 20, 15, 0x80 | 3) + lct + gif_lzw(idx, 4)
    idx2 = RNG.integers(0, 8, 40 * 30)
    gif += b"\x21\xf9\x04\x04\x0a\x00\x00\x00" + b"\x2c" + struct.pack("<HHHHB", 0, 0, 40, 30, 0) + gif_lzw(idx2, 3)
    gif += b"\x3b"
    (IMAGES / "offset_frame_40x30.gif").write_bytes(gif)
    made["offset_frame_40x30.gif"] = IMAGES / "offset_frame_40x30.gif"
    # No graphic control extension, global palette only, interlaced 17x9 frame at (3, 2), background index 5:
    # PIL fills the uncovered area with index 0 (not the background colour, as stb does).
    gif = b"GIF87a" + struct.pack("<HHBBB", 24, 14, 0x80 | 2, 5, 0) + gct
    gif += b"\x2c" + struct.pack("<HHHHB", 3, 2, 17, 9, 0x40) + gif_lzw(RNG.integers(1, 8, 17 * 9), 3) + b"\x3b"
    (IMAGES / "interlaced_offset_24x14.gif").write_bytes(gif)
    made["interlaced_offset_24x14.gif"] = IMAGES / "interlaced_offset_24x14.gif"

    # A palette label map (P mode, VOC-like colour map): read_label_map must return the indices.
    lab = (np.arange(W)[None, :] // 6 + 3 * (np.arange(H)[:, None] // 5)) % 21
    lab[-3:, -5:] = 255
    cmap = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap += [r, g, b]
    lim = Image.fromarray(lab.astype(np.uint8), "P")
    lim.putpalette(cmap)
    save("labels_palette_37x23.png", lim)

    rng = np.random.default_rng(20261129)  # its own stream: the images and bad files above stay as they were
    # Top-down BMPs (negative height; Pillow reads them): 24-bit with the pixels of rgb_37x23.bmp, 32-bit, 8-bit.
    bottom_up = np.array(Image.open(IMAGES / "rgb_37x23.bmp").convert("RGB"))
    top_down = {
        "topdown_rgb_37x23.bmp": bmp_bytes(W, -H, 24, [bottom_up[y, :, ::-1].tobytes() for y in range(H)]),
        "topdown_bgrx_37x23.bmp": bmp_bytes(W, -H, 32, [np.concatenate(
            [bottom_up[y, :, ::-1], rng.integers(0, 256, (W, 1), dtype=np.uint8)], -1).tobytes() for y in range(H)]),
        "topdown_palette_37x23.bmp": bmp_bytes(
            W, -H, 8, [rng.integers(0, 64, W, dtype=np.uint8).tobytes() for _ in range(H)],
            rng.integers(0, 256, 256, dtype=np.uint8).tobytes()),
    }
    for name, data in top_down.items():
        (IMAGES / name).write_bytes(data)
        made[name] = IMAGES / name
    # Adam7-interlaced PNGs by hand (PIL cannot write them): 8-bit RGB, 16-bit gray, and 3x2 RGBA (empty passes).
    ilace = np.array(Image.open(IMAGES / "rgb_37x23.png"))
    (IMAGES / "interlaced_rgb_37x23.png").write_bytes(png_bytes(W, H, 8, 2, adam7_rows(ilace), interlace=1))
    (IMAGES / "interlaced_gray16_37x23.png").write_bytes(
        png_bytes(W, H, 16, 0, adam7_rows(g16.astype(">u2")), interlace=1))
    (IMAGES / "interlaced_rgba_3x2.png").write_bytes(
        png_bytes(3, 2, 8, 6, adam7_rows(rng.integers(0, 256, (2, 3, 4), dtype=np.uint8)), interlace=1))
    for name in ("interlaced_rgb_37x23.png", "interlaced_gray16_37x23.png", "interlaced_rgba_3x2.png"):
        made[name] = IMAGES / name

    # JPEG variants of a real photo (a 157x117 crop of the COCO image: partial MCUs at both edges).
    photo = Image.open(SHARED / "images/coco_000000039769.png").convert("RGB").crop((200, 150, 357, 267))
    save("photo_420_157x117.jpg", photo, quality=90)
    save("photo_422_157x117.jpg", photo, quality=90, subsampling=1)
    save("photo_444_157x117.jpg", photo, quality=95, subsampling=0)
    save("photo_progressive_157x117.jpg", photo, quality=90, progressive=True)
    save("photo_restart_157x117.jpg", photo, quality=90, restart_marker_rows=1)
    save("photo_optimized_157x117.jpg", photo, quality=75, optimize=True)
    save("photo_gray_157x117.jpg", photo.convert("L"), quality=90)
    save("photo_cmyk_157x117.jpg", photo.convert("CMYK"), quality=90)  # Adobe marker, inverted CMYK
    save("photo_adobe_rgb_157x117.jpg", photo, quality=90, keep_rgb=True)  # Adobe transform 0: RGB, no YCbCr
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": Image.open does not apply it, so neither do we
    save("photo_exif_rotated_157x117.jpg", photo, quality=90, exif=exif)

    return made


def write_bad(made):
    good_png = (IMAGES / "rgb_37x23.png").read_bytes()
    (BAD / "truncated.png").write_bytes(good_png[: len(good_png) * 2 // 3])
    jpg = (IMAGES / "baseline_64x48.jpg").read_bytes()
    sos = jpg.index(b"\xff\xda")
    garbage = bytes((RNG.integers(0, 255, 3000) | 1).astype(np.uint8))  # no 0xFF byte: no marker anywhere
    garbage = garbage.replace(b"\xff", b"\x01")
    (BAD / "corrupt.jpg").write_bytes(jpg[:sos] + garbage)
    (BAD / "zero_size.png").write_bytes(png_bytes(0, 0, 8, 2, []))
    # A valid-looking PNG claiming 100000x100000 RGB (30 GB decoded); the IDAT holds just 2 rows.
    (BAD / "huge_100000x100000.png").write_bytes(
        png_bytes(100000, 100000, 8, 2, [bytes(300000)] * 2))
    (BAD / "not_an_image.png").write_text("This is a text file, not a PNG image.\n")
    (BAD / "empty.jpg").write_bytes(b"")
    # Huffman table whose 16 code counts sum to 272 (> 256 symbols): stb_image 2.27 wrote past its
    # size[257] array on this (issue #10, finding 1); libjpeg refuses the table.
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 8, 8, 1) + b"\x01\x11\x00"
    (BAD / "dht_overflow.jpg").write_bytes(b"\xff\xd8\xff\xc4" + struct.pack(">H", 19) + b"\x00" + bytes([17] * 16) + sof)
    # 632 bytes (a progressive JPEG cut short, then an EOI) whose frame header claims 8000x8000: stb decoded
    # it to 8000x8000 of padding, 560 MB and exit 0 (finding 8); Pillow also pads it (with gray); we refuse it.
    prog = bytearray((IMAGES / "photo_progressive_157x117.jpg").read_bytes())
    struct.pack_into(">HH", prog, prog.index(b"\xff\xc2") + 5, 8000, 8000)
    (BAD / "truncated_8000x8000.jpg").write_bytes(bytes(prog[:630]) + b"\xff\xd9")
    photo = (IMAGES / "photo_420_157x117.jpg").read_bytes()
    (BAD / "cut_half.jpg").write_bytes(photo[: len(photo) // 2])
    (BAD / "cut_half_eoi.jpg").write_bytes(photo[: len(photo) // 2] + b"\xff\xd9")  # PIL fills the rest with gray
    bmp = (IMAGES / "rgb_37x23.bmp").read_bytes()
    (BAD / "truncated.bmp").write_bytes(bmp[: len(bmp) // 2])
    gif = (IMAGES / "anim_64x48.gif").read_bytes()
    (BAD / "truncated.gif").write_bytes(gif[: len(gif) // 3])
    bad = []
    for name, reason in [
        ("truncated.png", "truncated.png"),
        ("corrupt.jpg", "corrupt.jpg"),
        ("zero_size.png", "zero-sized"),
        ("huge_100000x100000.png", "100000x100000"),
        ("not_an_image.png", "not a PNG, JPEG, GIF or BMP"),
        ("empty.jpg", "empty"),
        ("dht_overflow.jpg", "Bogus Huffman table definition"),
        ("truncated_8000x8000.jpg", "truncated JPEG: its 8000x8000 frame"),
        ("cut_half.jpg", "truncated JPEG: Premature end of JPEG file"),
        ("cut_half_eoi.jpg", "truncated JPEG: Corrupt JPEG data: premature end of data segment"),
        ("truncated.bmp", "truncated BMP"),
        ("truncated.gif", "truncated GIF"),
    ]:
        try:
            Image.open(BAD / name).convert("RGB")
            pil = "PIL decodes it"
        except Exception as e:  # noqa: BLE001
            pil = f"PIL: {type(e).__name__}: {e}"
        bad.append({"file": rel(BAD / name), "message_contains": reason, "pil": pil})
    return bad


# ----------------------------------------------------------------------------- processors
def pil_rgb(path):
    return Image.open(path).convert("RGB")


def run_pil(img, config):
    return BeitImageProcessorPil.from_dict(dict(config))(images=img, return_tensors="np")["pixel_values"][0]


# Measurements a run without torchvision keeps (inputs and configs of existing cases do not change).
PREVIOUS_TV_DIFF = {}
if (PRE / "cases.json").exists():
    PREVIOUS_TV_DIFF = {c["name"]: c["torchvision_vs_pil_max_abs_diff"]
                        for c in json.loads((PRE / "cases.json").read_text()).get("preprocess", [])}


def run_tv(img, config):
    return BeitImageProcessor.from_dict(dict(config))(images=img, return_tensors="np")["pixel_values"][0]


CHECKPOINT_224 = {  # facebook/data2vec-vision-base-ft1k style (legacy int sizes, BeitFeatureExtractor era)
    "crop_size": 224, "do_center_crop": False, "do_normalize": True, "do_resize": True,
    "feature_extractor_type": "BeitFeatureExtractor", "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5], "resample": 3, "size": 224,
}
ADE_640 = {  # BEiT/data2vec-vision ADE20k UperNet style
    "do_center_crop": False, "do_normalize": True, "do_resize": True, "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5], "do_reduce_labels": True, "resample": 2, "size": 640,
    "image_processor_type": "BeitImageProcessor",
}
SMALL = {"size": {"height": 15, "width": 25}, "do_center_crop": True, "crop_size": {"height": 12, "width": 20},
         "resample": 3}


def preprocess_cases(made):
    coco = SHARED / "images/coco_000000039769.png"
    ade = SHARED / "images/ade20k_val_00000001.jpg"
    cases = [
        ("coco_224_bicubic_ft1k", coco, CHECKPOINT_224, (1, 1), "(a) checkpoint-like: size 224, no crop, BICUBIC"),
        ("coco_640_bilinear_ade", coco, ADE_640, (1, 1), "(c) ADE20k segmentation checkpoint-like: 640, BILINEAR"),
        ("coco_256_crop224", coco, {"size": 256, "do_center_crop": True, "crop_size": 224, "resample": 3}, (8, 8),
         "(b) Transformers 4.x BEiT default: 256 BICUBIC + center crop 224"),
        ("coco_224_nearest", coco, {"size": 224, "resample": 0}, (8, 8), "(d) NEAREST"),
        ("coco_224_bilinear", coco, {"size": 224, "resample": 2}, (8, 8), "(d) BILINEAR"),
        ("coco_defaults", coco, {}, (16, 16), "no fields: Transformers 5.x defaults (224x224 BICUBIC, no crop)"),
        ("coco_lanczos_300x200", coco, {"size": {"height": 200, "width": 300}, "resample": 1},
         (16, 16), "LANCZOS, non-square"),
        ("coco_box_32x24", coco, {"size": {"height": 24, "width": 32}, "resample": 4}, (1, 1), "BOX"),
        ("coco_hamming_24x32", coco, {"size": {"height": 32, "width": 24}, "resample": 5}, (1, 1), "HAMMING"),
        ("ade_640_bilinear", ade, ADE_640, (32, 32), "ADE20k photo (JPEG) at the segmentation config"),
        ("upscale_rgb37_to_224", IMAGES / "rgb_37x23.png", {"size": 224, "resample": 3}, (16, 16),
         "(e) upscale 37x23 -> 224"),
        ("upscale_rgb37_to_224_bilinear", IMAGES / "rgb_37x23.png", {"size": 224, "resample": 2}, (16, 16),
         "(e) upscale, BILINEAR"),
        ("rgb37_pad_crop", IMAGES / "rgb_37x23.png",
         {"do_resize": False, "do_center_crop": True, "crop_size": {"height": 27, "width": 25}}, (1, 1),
         "crop taller than the image: zero padding, as Transformers' center_crop"),
        ("rgb37_imagenet_norm", IMAGES / "rgb_37x23.png",
         {"size": {"height": 17, "width": 21}, "resample": 2, "image_mean": [0.485, 0.456, 0.406],
          "image_std": [0.229, 0.224, 0.225]}, (1, 1), "ImageNet mean/std (float32 normalisation)"),
        ("rgb37_no_rescale", IMAGES / "rgb_37x23.png",
         {"size": {"height": 20, "width": 30}, "do_rescale": False, "image_mean": 100.0, "image_std": 50.0},
         (1, 1), "no rescale, scalar mean/std"),
        ("rgb37_raw", IMAGES / "rgb_37x23.png",
         {"size": {"height": 11, "width": 17}, "do_rescale": False, "do_normalize": False}, (1, 1),
         "no rescale, no normalise: the resized uint8 pixels"),
        ("rgb37_rescale_only", IMAGES / "rgb_37x23.png",
         {"size": {"height": 11, "width": 17}, "do_normalize": False, "rescale_factor": 0.0039}, (1, 1),
         "rescale only, odd factor"),
    ]
    for name in sorted(made):
        if name.startswith("labels_") or name == "rgb_37x23.png":
            continue
        cases.append((f"fmt_{Path(name).stem}_{Path(name).suffix[1:]}", made[name], SMALL, (1, 1),
                      f"odd format {name}: 15x25 BICUBIC + crop 12x20"))

    out = []
    for name, path, config, (sy, sx), note in cases:
        img = pil_rgb(path)
        ref = run_pil(img, config)
        assert ref.dtype == np.float32 or not (config.get("do_rescale", True) or config.get("do_normalize", True)), ref.dtype
        ref = ref.astype(np.float32)  # with neither rescale nor normalise Transformers returns the uint8 pixels
        if torchvision is None:
            tv_diff = PREVIOUS_TV_DIFF.get(name, "not measured (torchvision not installed)")
        else:
            try:
                tv = run_tv(img, config)
                tv_diff = float(np.abs(tv.astype(np.float64) - ref).max())
            except Exception as e:  # noqa: BLE001  (e.g. the torchvision backend has no BOX / HAMMING)
                tv_diff = f"torchvision backend fails: {type(e).__name__}: {str(e)[:160]}"
        entry = {
            "name": name, "image": rel(path), "config": config, "note": note,
            "shape": list(ref.shape), "sample": [sy, sx],
            "expected": save_npy("pixel_values", name, ref[:, ::sy, ::sx]),
            "tolerance": 1e-5,
            "torchvision_vs_pil_max_abs_diff": tv_diff,
        }
        out.append(entry)
        print(f"{name:40s} {str(ref.shape):16s} tv-vs-pil {str(entry['torchvision_vs_pil_max_abs_diff'])[:60]}")
    return out


def decode_cases(made):
    """Image.open(p).convert("RGB") for every fixture image and the real photos: the full pixels (or a strided
    sample of large ones) as a PNG, and the hash of the full pixels."""
    paths = [made[name] for name in sorted(made)]
    paths += [SHARED / "images/coco_000000039769.png", SHARED / "images/ade20k_val_00000001.jpg"]
    out = []
    for path in paths:
        im = Image.open(path)
        pil = np.array(im.convert("RGB"))
        ds = 1 if pil.shape[0] * pil.shape[1] <= 64 * 64 else 4 if pil.shape[0] * pil.shape[1] <= 200 * 200 else 8
        out.append({"image": rel(path), "pil_mode": im.mode, "shape": list(pil.shape), "sample": [ds, ds],
                    "expected": save_png("decoded", Path(path).stem + "_" + Path(path).suffix[1:], pil[::ds, ::ds]),
                    "fnv1a64": fnv1a64(pil), "exact": True})
        print(f"decode {out[-1]['image']:45s} {im.mode:5s} {pil.shape}")
    return out


def resize_cases():
    src = IMAGES / "rgb_37x23.png"
    img = pil_rgb(src)
    out = []
    sizes = [(17, 11), (61, 50), (40, 5), (37, 11), (12, 23), (37, 23), (1, 1), (5, 90)]
    names = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}
    for f, fname in names.items():
        for w, h in sizes:
            r = np.array(img.resize((w, h), resample=f, reducing_gap=None))
            name = f"rgb37_{fname}_{w}x{h}"
            out.append({"image": rel(src), "filter": f, "width": w, "height": h,
                        "expected": save_png("resize", name, r)})
    # a real photo, downscale with every filter (strided expectation to keep the fixtures small)
    coco = SHARED / "images/coco_000000039769.png"
    cimg = pil_rgb(coco)
    for f, fname in names.items():
        for w, h in [(64, 48), (630, 6)]:  # (630, 6): the vertical pass runs first
            r = np.array(cimg.resize((w, h), resample=f, reducing_gap=None))
            out.append({"image": rel(coco), "filter": f, "width": w, "height": h,
                        "expected": save_png("resize", f"coco_{fname}_{w}x{h}", r)})
    return out


def label_cases():
    ade = SHARED / "images/ade20k_val_00000001.annotation.png"
    pal = IMAGES / "labels_palette_37x23.png"
    out = []
    for name, path, config, (sy, sx) in [
        ("ade_labels_640_reduce", ade, ADE_640, (4, 4)),
        ("ade_labels_256_crop224", ade, {"size": 256, "do_center_crop": True, "crop_size": 224,
                                         "do_reduce_labels": False, "resample": 3}, (2, 2)),
        ("palette_labels_30x50_reduce", pal, dict(SMALL, do_reduce_labels=True), (1, 1)),
    ]:
        im = Image.open(path)
        raw = np.array(im)
        assert raw.ndim == 2 and raw.dtype == np.uint8, (raw.shape, raw.dtype)
        lab = raw.copy()
        if config.get("do_reduce_labels"):
            lab[lab == 0] = 255
            lab = lab - 1
            lab[lab == 254] = 255
        proc = BeitImageProcessorPil.from_dict(dict(config))
        size = proc.size
        ref = np.array(Image.fromarray(lab).resize((size["width"], size["height"]), Image.NEAREST))
        if config.get("do_center_crop"):
            ch, cw = proc.crop_size["height"], proc.crop_size["width"]
            top, left = (ref.shape[0] - ch) // 2, (ref.shape[1] - cw) // 2
            ref = ref[top : top + ch, left : left + cw]
        ref = ref.astype(np.int64)
        # What Transformers 5.x itself gives (it resizes the label map with the image filter):
        rgb = Image.new("RGB", im.size)
        hf = proc(images=rgb, segmentation_maps=im, return_tensors="np")["labels"][0]
        out.append({
            "name": name, "label_map": rel(path), "config": config, "shape": list(ref.shape), "sample": [sy, sx],
            "pil_mode": im.mode, "decoded_histogram": np.bincount(raw.ravel(), minlength=256).tolist(),
            "expected": save_png("labels", name, ref[::sy, ::sx].astype(np.uint8)),
            "transformers_5_pixels_differing_from_nearest": int((hf != ref).sum()),
            "transformers_5_distinct_values": int(len(np.unique(hf))),
            "nearest_distinct_values": int(len(np.unique(ref))),
        })
        print(f"labels {name:30s} {ref.shape} transformers-5 differs at {out[-1]['transformers_5_pixels_differing_from_nearest']} px")
    return out


def main():
    for sub in ("pixel_values", "decoded", "resize", "labels"):
        for f in list((PRE / sub).glob("*.npy")) + list((PRE / sub).glob("*.png")):
            f.unlink()
    made = write_images()
    bad = write_bad(made)
    pre = preprocess_cases(made)
    doc = {
        "generator": "weights_tools/make_image_fixtures.py",
        "versions": {"transformers": transformers.__version__, "pillow": PIL.__version__,
                     "torch": torch.__version__, "torchvision": torchvision.__version__ if torchvision else None,
                     "numpy": np.__version__},
        "reference": "BeitImageProcessorPil (Transformers' PIL backend) on Image.open(p).convert('RGB')",
        "paths": "relative to tests/fixtures/vision; 'shared:' = <repo>/../shared/data",
        "decode": decode_cases(made),
        "resize": resize_cases(),
        "preprocess": pre,
        "labels": label_cases(),
        "bad": bad,
    }
    # one entry per line: readable in a diff, and small
    lines = ["{"]
    for i, (key, value) in enumerate(doc.items()):
        comma = "," if i + 1 < len(doc) else ""
        if isinstance(value, list):
            items = [" " * 4 + json.dumps(v) for v in value]
            lines.append(f"  {json.dumps(key)}: [\n" + ",\n".join(items) + f"\n  ]{comma}")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}{comma}")
    (PRE / "cases.json").write_text("\n".join(lines) + "\n}\n")
    json.loads((PRE / "cases.json").read_text())
    total = sum(f.stat().st_size for d in (IMAGES, PRE) for f in d.rglob("*") if f.is_file())
    print(f"images/ + preprocess/: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    sys.exit(main())
