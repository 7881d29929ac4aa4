// Shared test helpers: fixture paths and the one closeness assertion every parity test uses.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "d2v/npy.h"

namespace fs = std::filesystem;

inline std::string fixtures_dir() { return D2V_FIXTURES; }
inline std::string shared_data(const std::string& rel) { return std::string(D2V_SHARED_DATA) + "/" + rel; }

// Fixture variant directories under `dir` (each holds meta.json and model.gguf), sorted.
inline std::vector<std::string> fixture_variants(const std::string& dir) {
    std::vector<std::string> names;
    if (!fs::exists(dir)) return names;
    for (const auto& e : fs::directory_iterator(dir))
        if (fs::exists(e.path() / "meta.json") && fs::exists(e.path() / "model.gguf")) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

inline std::string read_text(const std::string& path) {
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

inline std::string index_string(const d2v::Shape& shape, size_t flat) {
    std::vector<int64_t> idx(shape.size());
    for (size_t d = shape.size(); d-- > 0;) {
        idx[d] = int64_t(flat % size_t(shape[d]));
        flat /= size_t(shape[d]);
    }
    return d2v::shape_to_string(idx);
}

// Passes when shapes match and max |actual - expected| <= tol; otherwise reports the worst
// element, its index and both values.
inline ::testing::AssertionResult AllClose(const d2v::NdArray& actual, const d2v::NdArray& expected, double tol) {
    if (actual.shape != expected.shape)
        return ::testing::AssertionFailure() << "shape " << d2v::shape_to_string(actual.shape) << " != expected "
                                             << d2v::shape_to_string(expected.shape);
    double worst = -1;
    size_t at = 0;
    for (size_t i = 0; i < actual.data.size(); ++i) {
        const double d = std::fabs(double(actual.data[i]) - double(expected.data[i]));
        if (std::isnan(d) || d > worst) {
            worst = std::isnan(d) ? INFINITY : d;
            at = i;
        }
    }
    if (worst <= tol) return ::testing::AssertionSuccess() << "max abs diff " << worst;
    return ::testing::AssertionFailure() << "max abs diff " << worst << " > " << tol << " at "
                                         << index_string(actual.shape, at) << ": got " << actual.data[at]
                                         << ", expected " << expected.data[at];
}

inline double max_abs_diff(const d2v::NdArray& a, const d2v::NdArray& b) {
    double worst = 0;
    for (size_t i = 0; i < std::min(a.data.size(), b.data.size()); ++i)
        worst = std::max(worst, std::fabs(double(a.data[i]) - double(b.data[i])));
    return worst;
}
