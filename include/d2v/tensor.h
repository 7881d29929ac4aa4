// Basic types shared by every part of the library.
#pragma once
#include <Eigen/Core>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace d2v {

// Activations are time-major / token-major: one row per frame or token, one column per channel.
using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowVector = Eigen::Matrix<float, 1, Eigen::Dynamic>;
using ConstMatrixMap = Eigen::Map<const Matrix>;
using ConstRowVectorMap = Eigen::Map<const RowVector>;

// Every failure the library reports (bad file, bad config, bad input) is a d2v::Error with a
// message meant for the end user; programs print it and exit non-zero.
struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

using Shape = std::vector<int64_t>;

inline std::string shape_to_string(const Shape& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

}  // namespace d2v
