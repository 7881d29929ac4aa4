// The kernels against plain double-precision loops: the matrix-product interface (whichever
// backend was built) for row counts oneDNN handles with different code paths, and im2col conv1d.
// Tolerance 1e-4 on values of magnitude ~sqrt(K) * 0.5: fp32 accumulation error only.
// Activations against Transformers' own (weights_tools/make_activation_fixtures.py), tolerance below.
#include <random>
#include <set>

#include "d2v/kernels/conv1d.h"
#include "d2v/kernels/image_ops.h"
#include "d2v/kernels/ops.h"
#include "test_util.h"

namespace {

d2v::Matrix random_matrix(int64_t r, int64_t c, uint32_t seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    d2v::Matrix m(r, c);
    for (int64_t i = 0; i < m.size(); ++i) m.data()[i] = u(gen);
    return m;
}

d2v::NdArray as_array(const d2v::Matrix& m) { return {{m.rows(), m.cols()}, std::vector<float>(m.data(), m.data() + m.size())}; }

TEST(Linear, MatchesDoublePrecisionForManyRowCounts) {
    const int64_t in = 96, out = 40;
    const d2v::Matrix w = random_matrix(out, in, 1);
    const d2v::Matrix b = random_matrix(1, out, 2);
    d2v::Linear linear(w.data(), out, in, b.data());
    for (int64_t rows : {1, 2, 7, 49, 256, 1000}) {
        SCOPED_TRACE("rows " + std::to_string(rows));
        const d2v::Matrix x = random_matrix(rows, in, uint32_t(rows));
        const Eigen::MatrixXd ref = (x.cast<double>() * w.cast<double>().transpose()).rowwise() + b.cast<double>().row(0);
        EXPECT_TRUE(AllClose(as_array(linear(x)), as_array(ref.cast<float>()), 1e-4));
    }
}

TEST(Linear, WithoutBias) {
    const d2v::Matrix w = random_matrix(5, 3, 3);
    d2v::Linear linear(w.data(), 5, 3, nullptr);
    const d2v::Matrix x = random_matrix(4, 3, 4);
    EXPECT_TRUE(AllClose(as_array(linear(x)), as_array(x * w.transpose()), 1e-5));
}

TEST(Conv1d, StridedDilatedPaddedConvMatchesDirectLoop) {
    const int64_t c_in = 6, c_out = 5, k = 3, t_in = 23;
    const d2v::Matrix w = random_matrix(c_out, c_in * k, 5);  // PyTorch [C_out, C_in, k] flattened
    const d2v::Matrix bias = random_matrix(1, c_out, 6);
    const d2v::Matrix x = random_matrix(t_in, c_in, 7);
    for (auto [stride, dilation, pad] : {std::tuple{1, 1, 0}, std::tuple{2, 1, 1}, std::tuple{1, 3, 0}, std::tuple{3, 2, 2}}) {
        SCOPED_TRACE("stride " + std::to_string(stride) + " dilation " + std::to_string(dilation) + " pad " + std::to_string(pad));
        d2v::Conv1dGeometry g{k, stride, dilation, pad, pad};
        const auto tap_major = d2v::conv_weight_tap_major(w.data(), c_out, c_in, k);
        d2v::Linear linear(tap_major.data(), c_out, k * c_in, bias.data());
        const d2v::Matrix y = d2v::conv1d(x, linear, g);
        const int64_t t_out = (t_in + 2 * pad - dilation * (k - 1) - 1) / stride + 1;
        ASSERT_EQ(y.rows(), t_out);
        d2v::Matrix ref(t_out, c_out);
        for (int64_t t = 0; t < t_out; ++t)
            for (int64_t o = 0; o < c_out; ++o) {
                double s = bias(0, o);
                for (int64_t c = 0; c < c_in; ++c)
                    for (int64_t j = 0; j < k; ++j) {
                        const int64_t src = t * stride - pad + j * dilation;
                        if (src >= 0 && src < t_in) s += double(w(o, c * k + j)) * x(src, c);
                    }
                ref(t, o) = float(s);
            }
        EXPECT_TRUE(AllClose(as_array(y), as_array(ref), 1e-5));
    }
}

// Every ACT2FN activation without learned parameters, on 181 inputs from -1e4 to 1e4, against
// PyTorch's float32 output. Tolerance 2e-6 * max(1, |y|): both sides are float32, and the
// transcendental functions (erf, tanh, exp, log1p) of Eigen and PyTorch differ by a few ulp, most
// where 1 + erf(x) or 1 + tanh(x) cancels for negative x (measured worst case 7.2e-7: gelu at x = -3,
// where PyTorch is the farther of the two from the exact value).
TEST(Activation, EveryTransformersActivationMatchesPyTorch) {
    const std::string dir = fixtures_dir() + "/activations/";
    const d2v::NdArray x = d2v::read_npy(dir + "inputs.npy");
    std::set<std::string> covered;
    double worst = 0;
    for (const auto& [name, act] : d2v::kActivationNames) {
        SCOPED_TRACE(name);
        const d2v::NdArray want = d2v::read_npy(dir + name + ".npy");
        std::vector<float> y = x.data;
        d2v::apply_activation(d2v::parse_activation("hidden_act", name), y.data(), int64_t(y.size()));
        for (size_t i = 0; i < y.size(); ++i) {
            const double err = std::abs(double(y[i]) - double(want.data[i])) / std::max(1.0, std::abs(double(want.data[i])));
            worst = std::max(worst, err);
            EXPECT_LE(err, 2e-6) << "x = " << x.data[i] << ": ours " << y[i] << ", Transformers " << want.data[i];
        }
        covered.insert(name);
    }
    RecordProperty("worst_error", std::to_string(worst));
    // A regenerated fixture with a new ACT2FN name fails here until the name is supported or refused.
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string name = e.path().stem().string();
        if (name != "inputs") {
            EXPECT_TRUE(covered.count(name)) << "Transformers has activation '" << name << "' we do not";
        }
    }
}

TEST(Activation, ParameterisedAndUnknownActivationsAreRefusedNamingTheField) {
    auto error_of = [](const std::string& field, const std::string& name) {
        try {
            d2v::parse_activation(field, name);
        } catch (const d2v::Error& e) {
            return std::string(e.what());
        }
        return std::string("<no error>");
    };
    EXPECT_EQ(error_of("hidden_act", "prelu").rfind("config field 'hidden_act': activation 'prelu' has learned parameters", 0), 0u);
    EXPECT_EQ(error_of("feat_extract_activation", "xielu").rfind("config field 'feat_extract_activation': activation 'xielu'", 0), 0u);
    EXPECT_EQ(error_of("hidden_act", "gelu2").rfind("config field 'hidden_act': unsupported activation 'gelu2' (supported: gelu,", 0), 0u);
}

}  // namespace

// The in-place path of conv1d (taps that tile the input: stride == kernel, no padding, the im2col
// matrix is the input itself) against the direct loop, lengths that do and do not divide evenly.
TEST(Conv1d, StrideEqualToKernelReadsTheInputInPlace) {
    const int64_t c_in = 7, c_out = 4;
    for (int64_t k : {2, 3}) {
        for (int64_t t_in : {12, 13, 14}) {
            SCOPED_TRACE("k " + std::to_string(k) + " t_in " + std::to_string(t_in));
            const d2v::Matrix w = random_matrix(c_out, c_in * k, 11);
            const d2v::Matrix x = random_matrix(t_in, c_in, 12);
            const auto tap_major = d2v::conv_weight_tap_major(w.data(), c_out, c_in, k);
            d2v::Linear linear(tap_major.data(), c_out, k * c_in, nullptr);
            const d2v::Matrix y = d2v::conv1d(x, linear, d2v::Conv1dGeometry{k, k, 1, 0, 0});
            ASSERT_EQ(y.rows(), t_in / k);
            d2v::Matrix ref(t_in / k, c_out);
            for (int64_t t = 0; t < ref.rows(); ++t)
                for (int64_t o = 0; o < c_out; ++o) {
                    double s = 0;
                    for (int64_t c = 0; c < c_in; ++c)
                        for (int64_t j = 0; j < k; ++j) s += double(w(o, c * k + j)) * x(t * k + j, c);
                    ref(t, o) = float(s);
                }
            EXPECT_TRUE(AllClose(as_array(y), as_array(ref), 1e-5));
        }
    }
}

// The fused residual add + LayerNorm against the two steps in double precision (1e-5: fp32 rounding
// of values of magnitude ~3 after normalisation).
TEST(LayerNorm, FusedResidualAddMatchesAddThenNorm) {
    const d2v::Matrix x0 = random_matrix(300, 96, 21), update = random_matrix(300, 96, 22);
    const d2v::Matrix gamma = random_matrix(1, 96, 23), beta = random_matrix(1, 96, 24);
    d2v::Matrix x = x0;
    d2v::add_layer_norm_rows(x, update.data(), gamma.data(), beta.data(), 1e-5f);
    d2v::Matrix ref(300, 96);
    for (int64_t r = 0; r < 300; ++r) {
        const Eigen::RowVectorXd v = x0.row(r).cast<double>() + update.row(r).cast<double>();
        const double mean = v.mean(), var = (v.array() - mean).square().mean();
        for (int64_t c = 0; c < 96; ++c) ref(r, c) = float((v(c) - mean) / std::sqrt(var + 1e-5) * gamma(0, c) + beta(0, c));
    }
    EXPECT_TRUE(AllClose(as_array(x), as_array(ref), 1e-5));
}

#include "d2v/core/attention.h"

namespace {
// Multi-head attention in double precision, the additive biases applied as Transformers applies
// them (lowest() for a padded key, so a row with every key padded comes out uniform).
Eigen::MatrixXd reference_attention(const d2v::Matrix& x, const std::vector<d2v::Matrix>& w, const std::vector<d2v::Matrix>& b,
                                    int64_t heads, const d2v::AttentionBias& bias, Eigen::MatrixXd* probs) {
    const int64_t T = x.rows(), H = x.cols(), D = H / heads;
    auto project = [&](int i, const Eigen::MatrixXd& in) -> Eigen::MatrixXd {
        return (in * w[size_t(i)].cast<double>().transpose()).rowwise() + b[size_t(i)].cast<double>().row(0);
    };
    const Eigen::MatrixXd xd = x.cast<double>(), q = project(0, xd), k = project(1, xd), v = project(2, xd);
    Eigen::MatrixXd context(T, H);
    probs->resize(heads * T, T);
    for (int64_t h = 0; h < heads; ++h) {
        Eigen::MatrixXd s = q.middleCols(h * D, D) * k.middleCols(h * D, D).transpose() / std::sqrt(double(D));
        for (int64_t r = 0; r < T; ++r) {
            for (int64_t c = 0; c < T; ++c) {
                if (bias.per_head) s(r, c) += (*bias.per_head)(h * T + r, c);
                if (bias.gathered.table) s(r, c) += bias.gathered.table[h * bias.gathered.table_cols + bias.gathered.index[r * T + c]];
                if (bias.key_padding) s(r, c) += bias.key_padding[c];
                if (bias.causal && c > r) s(r, c) = std::numeric_limits<float>::lowest();
            }
            s.row(r) = (s.row(r).array() - s.row(r).maxCoeff()).exp();
            s.row(r) /= s.row(r).sum();
        }
        probs->middleRows(h * T, T) = s;
        context.middleCols(h * D, D) = s * v.middleCols(h * D, D);
    }
    return project(3, context);
}
}  // namespace

// The fused scale + bias + softmax and the per-head products read in place, against the double
// reference: 600 tokens make several query blocks per head; padded keys, a per-head bias, a causal
// mask, and a row whose keys are all padded. Tolerance 1e-5 on outputs of magnitude ~1 (fp32 sums
// over 600 keys).
TEST(Attention, FusedSoftmaxMatchesDoublePrecisionReference) {
    const int64_t T = 600, H = 16, heads = 2;
    std::vector<d2v::Matrix> w, b;
    for (int i = 0; i < 4; ++i) {
        w.push_back(random_matrix(H, H, uint32_t(30 + i)));
        b.push_back(random_matrix(1, H, uint32_t(40 + i)));
    }
    d2v::MultiHeadAttention attention({d2v::Linear(w[0].data(), H, H, b[0].data()), d2v::Linear(w[1].data(), H, H, b[1].data()),
                                       d2v::Linear(w[2].data(), H, H, b[2].data()), d2v::Linear(w[3].data(), H, H, b[3].data())},
                                      heads);
    const d2v::Matrix x = random_matrix(T, H, 50);
    // The per-head bias as a gather from a small table (as BEiT's relative position bias at large grids).
    const int64_t table_cols = 37;
    const d2v::Matrix table = random_matrix(heads, table_cols, 52);
    std::vector<int32_t> index(size_t(T * T));
    for (size_t i = 0; i < index.size(); ++i) index[i] = int32_t((i * 7919 + i / T) % size_t(table_cols));
    d2v::Matrix per_head(heads * T, T);
    for (int64_t h = 0; h < heads; ++h)
        for (int64_t q = 0; q < T; ++q)
            for (int64_t k = 0; k < T; ++k) per_head(h * T + q, k) = table(h, index[size_t(q * T + k)]);
    const auto padding = d2v::key_padding_bias(T, T - 50);
    const auto all_padded = d2v::key_padding_bias(T, 0);
    auto bias_of = [](const float* key_padding, const d2v::Matrix* per_head_bias, bool causal) {
        d2v::AttentionBias b;
        b.key_padding = key_padding;
        b.per_head = per_head_bias;
        b.causal = causal;
        return b;
    };
    d2v::AttentionBias gathered = bias_of(padding.data(), nullptr, false);
    gathered.gathered = {table.data(), table_cols, index.data()};
    struct Case {
        const char* name;
        d2v::AttentionBias bias;
        bool probs;
    };
    for (const Case& c : {Case{"padding + per-head bias, probabilities", bias_of(padding.data(), &per_head, false), true},
                          Case{"padding + per-head bias", bias_of(padding.data(), &per_head, false), false},
                          Case{"padding + per-head bias through a table", gathered, false},
                          Case{"causal", bias_of(nullptr, nullptr, true), false},
                          Case{"every key padded", bias_of(all_padded.data(), nullptr, false), true}}) {
        SCOPED_TRACE(c.name);
        d2v::Matrix probs;
        const d2v::Matrix out = attention.forward(x, c.bias, c.probs ? &probs : nullptr);
        Eigen::MatrixXd ref_probs;
        const Eigen::MatrixXd ref = reference_attention(x, w, b, heads, c.bias, &ref_probs);
        EXPECT_TRUE(AllClose(as_array(out), as_array(ref.cast<float>()), 1e-5));
        if (c.probs) {
            EXPECT_TRUE(AllClose(as_array(probs), as_array(ref_probs.cast<float>()), 1e-6));
        }
    }
    // Reading the bias through the table is the same arithmetic as reading the gathered matrix.
    EXPECT_TRUE(attention.forward(x, gathered) == attention.forward(x, bias_of(padding.data(), &per_head, false)));
}

// Conv2dKernel (oneDNN direct and Winograd, or im2col + matrix product without oneDNN) against a
// double-precision loop, with a folded per-channel scale, bias, ReLU and a sum over two input parts
// that read their slices of the weights in place (weight_row_stride). Tolerance 1e-4 (the vision
// parity bound) on outputs of magnitude ~2: fp32 accumulation error and, for Winograd, its transform
// rounding (measured 3e-5 at 768 channels, |y| ~ 9).
#include "d2v/kernels/conv2d.h"

TEST(Conv2d, DirectAndWinogradMatchDoublePrecisionLoop) {
    // 21 rows: a full 16-row Winograd strip and a short one. At these widths >= 128 output channels
    // select oneDNN's F(4x4, 3x3) kernel, whose weights src/winograd_weights.cpp makes; 20-channel
    // parts pad its 16-channel blocks.
    struct Shape {
        int64_t c_half, c_out;
    };
    for (const Shape shape : {Shape{64, 128}, Shape{20, 144}}) {
        const int64_t H = 21, W = 18, c_half = shape.c_half, c_in = 2 * c_half, c_out = shape.c_out, k = 3;
        SCOPED_TRACE("c_in " + std::to_string(c_in) + ", c_out " + std::to_string(c_out));
        const d2v::Matrix x = random_matrix(H * W, c_in, 11);             // channels-last map
        const d2v::Matrix w = random_matrix(c_out, c_in * k * k, 12) * 0.1f;  // [c_out, c_in, 3, 3]
        const d2v::Matrix scale = random_matrix(1, c_out, 13), bias = random_matrix(1, c_out, 14);
        Eigen::MatrixXd ref(H * W, c_out);
        for (int64_t oy = 0; oy < H; ++oy)
            for (int64_t ox = 0; ox < W; ++ox)
                for (int64_t o = 0; o < c_out; ++o) {
                    double sum = 0;
                    for (int64_t c = 0; c < c_in; ++c)
                        for (int64_t ky = 0; ky < k; ++ky)
                            for (int64_t kx = 0; kx < k; ++kx) {
                                const int64_t iy = oy + ky - 1, ix = ox + kx - 1;
                                if (iy >= 0 && iy < H && ix >= 0 && ix < W) sum += double(w(o, (c * k + ky) * k + kx)) * x(iy * W + ix, c);
                            }
                    ref(oy * W + ox, o) = std::max(0.0, sum * scale(o) + bias(o));
                }
        // The input split into two channel halves; each kernel reads its slice of w's rows.
        std::vector<d2v::Matrix> x_part(2);
        for (int p = 0; p < 2; ++p) x_part[p] = x.middleCols(p * c_half, c_half);
        for (int64_t winograd_min : {int64_t(1) << 40, int64_t(1)}) {
            SCOPED_TRACE(winograd_min == 1 ? "winograd" : "direct");
            d2v::Conv2dKernel::Options first{1, 1, scale.data(), false, false, winograd_min, c_in * k * k};
            d2v::Conv2dKernel::Options second{1, 1, scale.data(), true, true, winograd_min, c_in * k * k};
            const d2v::Conv2dKernel a(w.data(), bias.data(), c_out, c_half, k, first);
            const d2v::Conv2dKernel b(w.data() + c_half * k * k, nullptr, c_out, c_half, k, second);
            d2v::Matrix y(H * W, c_out);
            a.forward(x_part[0].data(), H, W, y.data());
            b.forward(x_part[1].data(), H, W, y.data());
            EXPECT_TRUE(AllClose(as_array(y), as_array(ref.cast<float>()), 1e-4));
            // The whole input in one kernel gives the same result.
            const d2v::Conv2dKernel whole(w.data(), bias.data(), c_out, c_in, k, {1, 1, scale.data(), true, false, winograd_min});
            d2v::Matrix y_whole(H * W, c_out);
            whole.forward(x.data(), H, W, y_whole.data());
            EXPECT_TRUE(AllClose(as_array(y_whole), as_array(ref.cast<float>()), 1e-4));
        }
    }
    const int64_t c_out = 128, c_in = 128, k = 3;
    const d2v::Matrix x = random_matrix(21 * 18, c_in, 11), w = random_matrix(c_out, c_in * k * k, 12);
    // Weight rows closer together than one row's values are refused.
    EXPECT_THROW(d2v::Conv2dKernel(w.data(), nullptr, c_out, c_in, k, {1, 1, nullptr, false, false, 1, c_in * k * k - 1}), d2v::Error);
    // A kernel larger than the map is refused, naming the sizes.
    const d2v::Conv2dKernel no_pad(w.data(), nullptr, c_out, c_in, k, {0, 1, nullptr, false, false});
    d2v::Matrix y(1, c_out);
    EXPECT_THROW(no_pad.forward(x.data(), 2, 2, y.data()), d2v::Error);
}

TEST(ImageOps, BilinearResizeIntoStorageAndAccumulating) {
    d2v::FeatureMap coarse{3, 5, random_matrix(15, 6, 21)};
    const d2v::FeatureMap fresh = d2v::resize_bilinear(coarse, 7, 9);
    // Reference: PyTorch's align_corners=False source index, clamped, in double precision.
    auto source = [](int64_t in, int64_t out, int64_t i) { return std::max(0.0, (double(in) / double(out)) * (double(i) + 0.5) - 0.5); };
    for (int64_t oy = 0; oy < 7; ++oy)
        for (int64_t ox = 0; ox < 9; ++ox) {
            const double sy = source(3, 7, oy), sx = source(5, 9, ox);
            const int64_t y0 = std::min<int64_t>(int64_t(sy), 2), x0 = std::min<int64_t>(int64_t(sx), 4);
            const int64_t y1 = std::min<int64_t>(y0 + 1, 2), x1 = std::min<int64_t>(x0 + 1, 4);
            const double ly = sy - double(y0), lx = sx - double(x0);
            for (int64_t c = 0; c < 6; ++c) {
                auto at = [&](int64_t yy, int64_t xx) { return double(coarse.data(yy * 5 + xx, c)); };
                const double want = (1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) + ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1));
                EXPECT_NEAR(fresh.data(oy * 9 + ox, c), want, 1e-6);
            }
        }
    // Storage of the right size is used as is (a buffer kept between calls), of another size replaced.
    d2v::Matrix storage(63, 6);
    const float* kept = storage.data();
    EXPECT_EQ(d2v::resize_bilinear(coarse, 7, 9, std::move(storage)).data.data(), kept);
    EXPECT_TRUE(AllClose(as_array(d2v::resize_bilinear(coarse, 7, 9, d2v::Matrix(5, 5)).data), as_array(fresh.data), 0.0));
    // Accumulating adds the same values to what the output holds.
    d2v::FeatureMap sum{7, 9, random_matrix(63, 6, 22)};
    const d2v::Matrix before = sum.data;
    d2v::resize_bilinear_into(coarse, sum, true);
    EXPECT_TRUE(AllClose(as_array(sum.data), as_array(before + fresh.data), 1e-6));
    d2v::FeatureMap wrong{7, 9, d2v::Matrix(63, 5)};
    EXPECT_THROW(d2v::resize_bilinear_into(coarse, wrong, true), d2v::Error);
}

TEST(ImageOps, MatrixPoolReusesLargeMatricesAndStaysBounded) {
    d2v::MatrixPool pool;
    const int64_t cols = 64, rows = d2v::MatrixPool::kMinValues / cols;  // the smallest size it keeps (32 MB)
    d2v::Matrix a = pool.take(rows, cols);
    ASSERT_EQ(a.rows(), rows);
    const float* kept = a.data();
    pool.give(std::move(a));
    d2v::Matrix b = pool.take(rows / 2, 2 * cols);  // same number of values, another shape: the same buffer
    EXPECT_EQ(b.data(), kept);
    EXPECT_EQ(b.rows(), rows / 2);
    EXPECT_EQ(b.cols(), 2 * cols);
    EXPECT_EQ(pool.kept(), 0u);
    pool.give(d2v::Matrix(rows - 1, cols));  // below the threshold: freed, not kept
    EXPECT_EQ(pool.kept(), 0u);
    // At most kMaxKept are kept: one more is freed.
    for (size_t i = 0; i <= d2v::MatrixPool::kMaxKept; ++i) pool.give(d2v::Matrix(rows, cols));
    EXPECT_EQ(pool.kept(), d2v::MatrixPool::kMaxKept);
    const d2v::Matrix c = pool.take(rows, cols);
    EXPECT_EQ(pool.kept(), d2v::MatrixPool::kMaxKept - 1);
}
