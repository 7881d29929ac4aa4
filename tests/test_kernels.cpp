// The kernels against plain double-precision loops: the matrix-product interface (whichever
// backend was built) for row counts oneDNN handles with different code paths, and im2col conv1d.
// Tolerance 1e-4 on values of magnitude ~sqrt(K) * 0.5: fp32 accumulation error only.
#include <random>

#include "d2v/kernels/conv1d.h"
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

}  // namespace
