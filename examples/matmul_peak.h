// d2v-bench --matmul-peak (examples/matmul_peak.cpp).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace cli {

// Times an m x k by k x n oneDNN matmul with prepacked weights on the current OpenMP thread count
// (dtype f32, bf16 -> f32 or u8 x s8 -> s32) for at least min_seconds; JSON with the best GFLOP/s,
// oneDNN's kernel name and the ISA it runs. Throws d2v::Error where oneDNN or the type is missing.
nlohmann::json matmul_peak(const std::string& dtype, int m, int k, int n, double min_seconds);

}  // namespace cli
