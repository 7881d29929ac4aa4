// BeitImageProcessor (PIL backend) and a bit-exact reimplementation of PIL's Image.resize for 8-bit images.
//
// Resize follows what Pillow's libImaging does (facts taken from Resample.c / Geometry.c, our code):
//   * NEAREST is an affine "scale" transform: source x of output column i is floor(x0 + i * (in/out)) with
//     x0 = (in/out) / 2, accumulated by repeated addition in double.
//   * The other filters are separable convolutions. Per output pixel: center = (i + 0.5) * scale,
//     support = filter_support * max(scale, 1) (this widening is the antialiasing on downscale), taps
//     [int(center - support + 0.5), int(center + support + 0.5)) clipped to the image, weights
//     filter((j - center + 0.5) / max(scale, 1)) normalised to sum 1, then rounded to 22-bit fixed point.
//     Each pass accumulates integers from 2^21, shifts right by 22 and clamps to 0..255, so the
//     intermediate image is uint8 and the pass order matters: horizontal first unless the height
//     shrinks by more than twice as many pixels as the width does.
// Floating-point contraction (FMA) would change the rounding of center/weights: it is disabled here.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "d2v/vision/image_processor.h"

#include <cmath>
#include <cstring>

namespace d2v::vision {
namespace {

// ---- PIL's filter kernels ------------------------------------------------------------------------
double box_kernel(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }

double triangle_kernel(double x) {
    x = std::fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

double hamming_kernel(double x) {
    x = std::fabs(x);
    if (x == 0.0) return 1.0;
    if (x >= 1.0) return 0.0;
    x *= M_PI;
    return std::sin(x) / x * (0.54f + 0.46f * std::cos(x));  // float constants, as in Pillow
}

double cubic_kernel(double x) {  // Keys' cubic convolution, a = -0.5
    constexpr double a = -0.5;
    x = std::fabs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

double sinc(double x) {
    if (x == 0.0) return 1.0;
    x *= M_PI;
    return std::sin(x) / x;
}

double lanczos_kernel(double x) { return (x >= -3.0 && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0; }

struct Kernel {
    double (*fn)(double);
    double support;
};

Kernel kernel_for(Resample r) {
    switch (r) {
        case Resample::Box: return {box_kernel, 0.5};
        case Resample::Bilinear: return {triangle_kernel, 1.0};
        case Resample::Hamming: return {hamming_kernel, 1.0};
        case Resample::Bicubic: return {cubic_kernel, 2.0};
        case Resample::Lanczos: return {lanczos_kernel, 3.0};
        case Resample::Nearest: break;
    }
    throw Error("resize: no convolution kernel for NEAREST");
}

constexpr int kPrecisionBits = 32 - 8 - 2;

// One axis: for each output index, the first input index, the tap count and the fixed-point weights.
struct Taps {
    int64_t ksize = 0;
    std::vector<int64_t> first, count;
    std::vector<int32_t> weights;  // [out * ksize]
};

Taps compute_taps(int64_t in_size, int64_t out_size, const Kernel& k) {
    const double scale = double(float(in_size)) / double(out_size);
    const double filterscale = scale < 1.0 ? 1.0 : scale;
    const double support = k.support * filterscale;
    Taps t;
    t.ksize = int64_t(std::ceil(support)) * 2 + 1;
    t.first.resize(size_t(out_size));
    t.count.resize(size_t(out_size));
    t.weights.assign(size_t(out_size * t.ksize), 0);
    std::vector<double> w(size_t(t.ksize));
    const double inv_filterscale = 1.0 / filterscale;
    for (int64_t o = 0; o < out_size; ++o) {
        const double center = (o + 0.5) * scale;
        int64_t lo = int64_t(center - support + 0.5);  // truncation, as C's (int) cast
        if (lo < 0) lo = 0;
        int64_t hi = int64_t(center + support + 0.5);
        if (hi > in_size) hi = in_size;
        const int64_t n = hi - lo;
        double sum = 0.0;
        for (int64_t j = 0; j < n; ++j) {
            w[size_t(j)] = k.fn((double(j + lo) - center + 0.5) * inv_filterscale);
            sum += w[size_t(j)];
        }
        if (sum != 0.0)
            for (int64_t j = 0; j < n; ++j) w[size_t(j)] /= sum;
        for (int64_t j = 0; j < n; ++j) {
            const double v = w[size_t(j)] * double(1 << kPrecisionBits);
            t.weights[size_t(o * t.ksize + j)] = int32_t(w[size_t(j)] < 0 ? -0.5 + v : 0.5 + v);
        }
        t.first[size_t(o)] = lo;
        t.count[size_t(o)] = n;
    }
    return t;
}

inline uint8_t clip8(int64_t acc) {
    const int64_t v = acc >> kPrecisionBits;  // arithmetic shift: floor, as Pillow's table lookup
    return uint8_t(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Interleaved 8-bit image with C channels.
struct Plane {
    int64_t w = 0, h = 0, c = 0;
    std::vector<uint8_t> px;
};

Plane pass_horizontal(const Plane& in, int64_t out_w, const Taps& t) {
    Plane out{out_w, in.h, in.c, std::vector<uint8_t>(size_t(out_w * in.h * in.c))};
    for (int64_t y = 0; y < in.h; ++y) {
        const uint8_t* row = &in.px[size_t(y * in.w * in.c)];
        uint8_t* dst = &out.px[size_t(y * out_w * in.c)];
        for (int64_t x = 0; x < out_w; ++x) {
            const int32_t* k = &t.weights[size_t(x * t.ksize)];
            const uint8_t* src = row + t.first[size_t(x)] * in.c;
            for (int64_t ch = 0; ch < in.c; ++ch) {
                int64_t acc = 1 << (kPrecisionBits - 1);
                for (int64_t j = 0; j < t.count[size_t(x)]; ++j) acc += int64_t(src[j * in.c + ch]) * k[j];
                dst[x * in.c + ch] = clip8(acc);
            }
        }
    }
    return out;
}

Plane pass_vertical(const Plane& in, int64_t out_h, const Taps& t) {
    const int64_t stride = in.w * in.c;
    Plane out{in.w, out_h, in.c, std::vector<uint8_t>(size_t(in.w * out_h * in.c))};
    std::vector<int64_t> acc(static_cast<size_t>(stride));
    for (int64_t y = 0; y < out_h; ++y) {
        const int32_t* k = &t.weights[size_t(y * t.ksize)];
        std::fill(acc.begin(), acc.end(), int64_t(1) << (kPrecisionBits - 1));
        for (int64_t j = 0; j < t.count[size_t(y)]; ++j) {
            const uint8_t* row = &in.px[size_t((t.first[size_t(y)] + j) * stride)];
            for (int64_t i = 0; i < stride; ++i) acc[size_t(i)] += int64_t(row[i]) * k[j];
        }
        uint8_t* dst = &out.px[size_t(y * stride)];
        for (int64_t i = 0; i < stride; ++i) dst[i] = clip8(acc[size_t(i)]);
    }
    return out;
}

// NEAREST: Pillow's affine scale transform (Geometry.c ImagingScaleAffine), sample positions accumulated.
std::vector<int64_t> nearest_index(int64_t in_size, int64_t out_size) {
    const double step = double(float(in_size)) / double(out_size);
    std::vector<int64_t> idx(static_cast<size_t>(out_size));
    double pos = step * 0.5;
    for (int64_t o = 0; o < out_size; ++o) {
        const int64_t i = pos < 0.0 ? -1 : int64_t(pos);
        idx[size_t(o)] = (i >= 0 && i < in_size) ? i : -1;  // -1: outside, PIL leaves the pixel 0
        pos += step;
    }
    return idx;
}

Plane resize_plane(const Plane& in, int64_t out_w, int64_t out_h, Resample filter) {
    if (out_w < 1 || out_h < 1) throw Error("resize: target size must be positive, got " + std::to_string(out_w) + "x" + std::to_string(out_h));
    if (in.w < 1 || in.h < 1) throw Error("resize: empty image");
    if (out_w == in.w && out_h == in.h) return in;  // PIL copies
    if (filter == Resample::Nearest) {
        const auto xs = nearest_index(in.w, out_w), ys = nearest_index(in.h, out_h);
        Plane out{out_w, out_h, in.c, std::vector<uint8_t>(size_t(out_w * out_h * in.c), 0)};
        for (int64_t y = 0; y < out_h; ++y) {
            if (ys[size_t(y)] < 0) continue;
            const uint8_t* row = &in.px[size_t(ys[size_t(y)] * in.w * in.c)];
            uint8_t* dst = &out.px[size_t(y * out_w * in.c)];
            for (int64_t x = 0; x < out_w; ++x)
                if (xs[size_t(x)] >= 0) std::memcpy(dst + x * in.c, row + xs[size_t(x)] * in.c, size_t(in.c));
        }
        return out;
    }
    const Kernel k = kernel_for(filter);
    const bool need_h = out_w != in.w, need_v = out_h != in.h;
    const bool horizontal_first = !((in.h - out_h) > 0 && (in.h - out_h) > (in.w - out_w) * 2);
    Plane cur = in;
    if (horizontal_first) {
        if (need_h) cur = pass_horizontal(cur, out_w, compute_taps(in.w, out_w, k));
        if (need_v) cur = pass_vertical(cur, out_h, compute_taps(in.h, out_h, k));
    } else {
        if (need_v) cur = pass_vertical(cur, out_h, compute_taps(in.h, out_h, k));
        if (need_h) cur = pass_horizontal(cur, out_w, compute_taps(in.w, out_w, k));
    }
    return cur;
}

// Transformers' center_crop on the uint8 image. When the crop is larger than the image it pads with zeros,
// centring the image with ceil((crop - size) / 2) before it; either way output row y is source row
// floor((H - crop_h) / 2) + y (column likewise), zero where that falls outside the image.
Plane center_crop(const Plane& in, int64_t crop_h, int64_t crop_w) {
    auto floordiv2 = [](int64_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); };
    const int64_t top = floordiv2(in.h - crop_h), left = floordiv2(in.w - crop_w);
    Plane out{crop_w, crop_h, in.c, std::vector<uint8_t>(size_t(crop_w * crop_h * in.c), 0)};
    for (int64_t y = 0; y < crop_h; ++y) {
        const int64_t sy = top + y;
        if (sy < 0 || sy >= in.h) continue;
        for (int64_t x = 0; x < crop_w; ++x) {
            const int64_t sx = left + x;
            if (sx < 0 || sx >= in.w) continue;
            std::memcpy(&out.px[size_t((y * crop_w + x) * in.c)], &in.px[size_t((sy * in.w + sx) * in.c)], size_t(in.c));
        }
    }
    return out;
}

// ---- config parsing ----------------------------------------------------------------------------------
[[noreturn]] void bad_field(const std::string& field, const Json& value, const std::string& why) {
    throw Error("preprocessor config field '" + field + "' = " + value.dump() + ": " + why);
}

const Json* field(const Json& j, const char* key) {
    auto it = j.find(key);
    return (it == j.end() || it->is_null()) ? nullptr : &*it;
}

bool get_bool(const Json& j, const char* key, bool fallback) {
    const Json* v = field(j, key);
    if (!v) return fallback;
    if (!v->is_boolean()) bad_field(key, *v, "expected true or false");
    return v->get<bool>();
}

int64_t positive_int(const std::string& key, const Json& v) {
    if (!v.is_number_integer() || v.get<int64_t>() <= 0) bad_field(key, v, "expected a positive integer");
    if (v.get<int64_t>() > (1 << 16)) bad_field(key, v, "larger than 65536");
    return v.get<int64_t>();
}

// int (square), [height, width] or {"height": h, "width": w}, as Transformers' get_size_dict.
void read_size(const char* key, const Json* v, int64_t& height, int64_t& width) {
    if (v->is_number()) {
        height = width = positive_int(key, *v);
    } else if (v->is_array()) {
        if (v->size() != 2) bad_field(key, *v, "expected [height, width]");
        height = positive_int(key, (*v)[0]);
        width = positive_int(key, (*v)[1]);
    } else if (v->is_object()) {
        bool other = false;
        for (const auto& [k, x] : v->items()) other |= k != "height" && k != "width" && !x.is_null();
        if (!v->contains("height") || !v->contains("width") || other)
            bad_field(key, *v, "only {\"height\", \"width\"} sizes are supported (BeitImageProcessor resizes to a fixed size; "
                               "shortest_edge / longest_edge / max_height sizes are not)");
        height = positive_int(key, (*v)["height"]);
        width = positive_int(key, (*v)["width"]);
    } else {
        bad_field(key, *v, "expected an int, [height, width] or {\"height\", \"width\"}");
    }
}

// The processed image is what the encoder runs on: a hostile file must not make preprocessing (float
// pixel_values) or attention (patches^2) allocate tens of GB. 2048 per side is 10x the area of 640^2.
constexpr int64_t kMaxProcessedSide = 2048;

void get_size(const Json& j, const char* key, int64_t& height, int64_t& width) {
    const Json* v = field(j, key);
    if (!v) return;
    read_size(key, v, height, width);
    if (height > kMaxProcessedSide || width > kMaxProcessedSide)
        bad_field(key, *v, "sizes above " + std::to_string(kMaxProcessedSide) + " pixels per side are refused");
}

void get_triple(const Json& j, const char* key, std::array<float, 3>& out) {
    const Json* v = field(j, key);
    if (!v) return;
    if (v->is_number()) {
        out.fill(float(v->get<double>()));  // np.array(mean, dtype=float32)
    } else if (v->is_array() && v->size() == 3 && (*v)[0].is_number() && (*v)[1].is_number() && (*v)[2].is_number()) {
        for (size_t i = 0; i < 3; ++i) out[i] = float((*v)[i].get<double>());
    } else {
        bad_field(key, *v, "expected a number or a list of 3 numbers (one per RGB channel)");
    }
}

}  // namespace

const char* resample_name(Resample r) {
    switch (r) {
        case Resample::Nearest: return "NEAREST";
        case Resample::Lanczos: return "LANCZOS";
        case Resample::Bilinear: return "BILINEAR";
        case Resample::Bicubic: return "BICUBIC";
        case Resample::Box: return "BOX";
        case Resample::Hamming: return "HAMMING";
    }
    return "?";
}

ImageProcessorConfig parse_image_processor(const Json& j) {
    ImageProcessorConfig c;
    if (j.is_null()) return c;
    if (!j.is_object()) throw Error("preprocessor config is not a JSON object: " + j.dump().substr(0, 200));
    c.do_resize = get_bool(j, "do_resize", c.do_resize);
    get_size(j, "size", c.height, c.width);
    if (const Json* v = field(j, "resample")) {
        if (!v->is_number_integer() || v->get<int64_t>() < 0 || v->get<int64_t>() > 5)
            bad_field("resample", *v, "expected a PIL filter code 0..5 (NEAREST, LANCZOS, BILINEAR, BICUBIC, BOX, HAMMING)");
        c.resample = Resample(v->get<int64_t>());
    }
    c.do_center_crop = get_bool(j, "do_center_crop", c.do_center_crop);
    get_size(j, "crop_size", c.crop_height, c.crop_width);
    c.do_rescale = get_bool(j, "do_rescale", c.do_rescale);
    if (const Json* v = field(j, "rescale_factor")) {
        if (!v->is_number()) bad_field("rescale_factor", *v, "expected a number");
        c.rescale_factor = v->get<double>();
    }
    c.do_normalize = get_bool(j, "do_normalize", c.do_normalize);
    get_triple(j, "image_mean", c.image_mean);
    get_triple(j, "image_std", c.image_std);
    for (float s : c.image_std)
        if (s == 0.0f) bad_field("image_std", j["image_std"], "a standard deviation of 0");
    c.do_reduce_labels = get_bool(j, "do_reduce_labels", c.do_reduce_labels);
    if (const Json* v = field(j, "do_convert_rgb"); v && !v->is_boolean()) bad_field("do_convert_rgb", *v, "expected true or false");
    if (const Json* v = field(j, "do_pad"); v && v->is_boolean() && v->get<bool>())
        bad_field("do_pad", *v, "padding is not part of BeitImageProcessor");
    return c;
}

Image resize(const Image& img, int64_t width, int64_t height, Resample filter) {
    if (img.width <= 0 || img.height <= 0 || img.rgb.size() != size_t(img.width * img.height * 3))
        throw Error("resize: image is empty or its pixel buffer does not match " + std::to_string(img.width) + "x" +
                    std::to_string(img.height) + " RGB");
    Plane p = resize_plane(Plane{img.width, img.height, 3, img.rgb}, width, height, filter);
    return Image{p.w, p.h, std::move(p.px)};
}

NdArray preprocess(const Image& img, const ImageProcessorConfig& c) {
    if (img.width <= 0 || img.height <= 0 || img.rgb.size() != size_t(img.width * img.height * 3))
        throw Error("preprocess: image is empty or its pixel buffer does not match " + std::to_string(img.width) + "x" +
                    std::to_string(img.height) + " RGB");
    Plane p{img.width, img.height, 3, img.rgb};
    if (c.do_resize) p = resize_plane(p, c.width, c.height, c.resample);
    if (c.do_center_crop) p = center_crop(p, c.crop_height, c.crop_width);
    NdArray out;
    out.shape = {3, p.h, p.w};
    out.data.resize(size_t(3 * p.h * p.w));
    const size_t n = size_t(p.h * p.w);
    for (size_t ch = 0; ch < 3; ++ch) {
        // Transformers: rescale = float32(float64(x) * factor); normalize = (x - float32(mean)) / float32(std) in float32.
        float lut[256];
        for (int v = 0; v < 256; ++v) {
            float x = c.do_rescale ? float(double(v) * c.rescale_factor) : float(v);
            if (c.do_normalize) x = (x - c.image_mean[ch]) / c.image_std[ch];
            lut[v] = x;
        }
        float* dst = &out.data[ch * n];
        for (size_t i = 0; i < n; ++i) dst[i] = lut[p.px[3 * i + ch]];
    }
    return out;
}

NdArray preprocess_labels(const std::vector<uint8_t>& labels, int64_t width, int64_t height, const ImageProcessorConfig& c) {
    if (width <= 0 || height <= 0 || labels.size() != size_t(width * height))
        throw Error("preprocess_labels: label map is empty or does not hold " + std::to_string(width) + "x" +
                    std::to_string(height) + " values");
    Plane p{width, height, 1, labels};
    if (c.do_reduce_labels)  // Transformers on uint8: 0 -> 255, then - 1, then 254 -> 255
        for (auto& v : p.px) v = (v == 0 || v == 255) ? 255 : uint8_t(v - 1);
    if (c.do_resize) p = resize_plane(p, c.width, c.height, Resample::Nearest);
    if (c.do_center_crop) p = center_crop(p, c.crop_height, c.crop_width);
    NdArray out;
    out.shape = {p.h, p.w};
    out.data.assign(p.px.begin(), p.px.end());
    out.is_integer = true;
    return out;
}

}  // namespace d2v::vision
