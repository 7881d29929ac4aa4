#!/usr/bin/env bash
# The whole test suite: Release build, then a Debug build with AddressSanitizer + UBSan; ctest on both.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== Release build + tests"
scripts/build.sh build
(cd build && ctest --output-on-failure -j2)
echo "== Installed package: a separate consumer project (find_package + pkg-config, Debug)"
rm -rf build/prefix && cmake --install build --prefix build/prefix >/dev/null
tests/consumer/run.sh build/prefix
echo "== Python package and the Ray example (pytest)"
scripts/test_python.sh
echo "== Debug + AddressSanitizer + UndefinedBehaviorSanitizer build + tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DD2V_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$(nproc)"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j2)
echo "== Converter: layouts, hostile inputs, fuzzing (weights_tools, no torch)"
scripts/test_converter.sh
echo "== Fuzzing: every libFuzzer harness for ${FUZZ_SECONDS:-30} s (scripts/fuzz.sh)"
scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
