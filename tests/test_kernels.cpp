// The kernels against plain double-precision loops: the matrix-product interface (whichever
// backend was built) for row counts oneDNN handles with different code paths, and im2col conv1d.
// Tolerance 1e-4 on values of magnitude ~sqrt(K) * 0.5: fp32 accumulation error only.
// Activations against Transformers' own (weights_tools/make_activation_fixtures.py), tolerance below.
#include <random>
#include <set>

#include "d2v/kernels/conv1d.h"
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
        if (name != "inputs") EXPECT_TRUE(covered.count(name)) << "Transformers has activation '" << name << "' we do not";
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
