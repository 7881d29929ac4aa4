#!/usr/bin/env bash
# scripts/build.sh [BUILD_DIR] [extra cmake args...] [-- TARGET...]: configure + build (Release by
# default); with targets after "--", builds only those (and what they need).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}; shift || true
cmake_args=() targets=()
while (($#)); do
  if [ "$1" = "--" ]; then shift; targets=("$@"); break; fi
  cmake_args+=("$1"); shift
done
if command -v ccache >/dev/null && [ -z "${CMAKE_CXX_COMPILER_LAUNCHER:-}" ]; then export CMAKE_CXX_COMPILER_LAUNCHER=ccache; fi
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "${cmake_args[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)" ${targets[@]:+--target "${targets[@]}"}
