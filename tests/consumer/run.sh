#!/usr/bin/env bash
# tests/consumer/run.sh PREFIX: builds this consumer against the data2vec.cpp installed in PREFIX,
# once through find_package(d2v) and once through pkg-config, in Debug, runs each on the bundled
# samples and checks the transcripts. Prints the compile and run times.
set -euo pipefail
prefix=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$root"
files=(samples/seven.wav samples/three_one_four.wav samples/two_zero_two_six.wav)
expected=$'samples/seven.wav: SEVEN\nsamples/three_one_four.wav: THREE ONE FOUR\nsamples/two_zero_two_six.wav: TWO ZERO TWO SIX'

now_us() { echo "${EPOCHREALTIME/./}"; }
seconds() { local us=$(($(now_us) - $1)); printf '%d.%02d' $((us / 1000000)) $((us % 1000000 / 10000)); }

check() {  # check NAME PROGRAM: runs it, compares, reports the time
    local start got
    start=$(now_us)
    got=$("$2" models/digits-ctc.gguf "${files[@]}")
    if [ "$got" != "$expected" ]; then
        printf 'consumer: %s printed\n%s\nexpected\n%s\n' "$1" "$got" "$expected" >&2
        exit 1
    fi
    printf 'consumer: %-28s ok, run %s s\n' "$1" "$(seconds "$start")"
}
timed() {  # timed LABEL COMMAND...: runs a build step, prints its wall time
    local start
    start=$(now_us)
    "${@:2}" >"$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
    printf 'consumer: %-28s %s s\n' "$1" "$(seconds "$start")"
}

# find_package, Debug: the application's build type must not slow the model down.
cmake -S "$here" -B "$work/cmake" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_PREFIX_PATH="$prefix" >"$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
timed "find_package C++ build (Debug)" cmake --build "$work/cmake" --target transcribe
timed "find_package C build (Debug)" cmake --build "$work/cmake" --target transcribe-c
timed "find_package core build (Debug)" cmake --build "$work/cmake" --target compose
check "find_package C++" "$work/cmake/transcribe"
check "find_package C" "$work/cmake/transcribe-c"
composed=$("$work/cmake/compose" models/digits-ctc.gguf)
[ "$composed" = "data2vec-audio Data2VecAudioForCTC 0.665241" ] || { echo "consumer: compose printed '$composed'" >&2; exit 1; }
echo "consumer: find_package COMPONENTS core     ok (model file reader + kernel from the headers)"

# pkg-config, -O0 -g, one translation unit each.
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib64/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
libdir=$(pkg-config --variable=libdir d2v)
timed "pkg-config g++ -O0 -g" g++ -std=c++17 -O0 -g "$here/transcribe.cpp" $(pkg-config --cflags --libs d2v) \
    -Wl,-rpath,"$libdir" -o "$work/transcribe-pc"
timed "pkg-config gcc -O0 -g" gcc -std=c11 -O0 -g "$here/transcribe.c" $(pkg-config --cflags --libs d2v) \
    -Wl,-rpath,"$libdir" -o "$work/transcribe-pc-c"
check "pkg-config C++" "$work/transcribe-pc"
check "pkg-config C" "$work/transcribe-pc-c"
# The README's snippets, as written there: the C++ one through its CMakeLists, the C one through pkg-config.
snippet() {  # snippet SECTION LANGUAGE: the first ```LANGUAGE block under "## SECTION" in README.md
    awk -v section="## $1" -v fence="\`\`\`$2" '
        $0 == section { inside = 1; next }
        /^## / { inside = 0 }
        inside && $0 == fence { block = 1; next }
        block && /^```/ { exit }
        block { print }' README.md
}
mkdir -p "$work/readme"
snippet "Use it from C++" cmake >"$work/readme/CMakeLists.txt"
snippet "Use it from C++" cpp >"$work/readme/hello.cpp"
snippet "Use it from C" c >"$work/readme/hello.c"
for f in CMakeLists.txt hello.cpp hello.c; do
    [ -s "$work/readme/$f" ] || { echo "consumer: README.md has no $f snippet" >&2; exit 1; }
done
cmake -S "$work/readme" -B "$work/readme/build" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_PREFIX_PATH="$prefix" >"$work/log" 2>&1 ||
    { cat "$work/log" >&2; exit 1; }
timed "README C++ snippet (CMake)" cmake --build "$work/readme/build"
timed "README C snippet (pkg-config)" gcc -std=c11 -O0 -g "$work/readme/hello.c" $(pkg-config --cflags --libs d2v) \
    -Wl,-rpath,"$libdir" -o "$work/readme/hello-c"
for program in "$work/readme/build/hello" "$work/readme/hello-c"; do
    first=$("$program" | head -n 1)
    [ "$first" = "SEVEN" ] || { echo "consumer: $program printed '$first', expected SEVEN" >&2; exit 1; }
done
echo "consumer: README C++ and C snippets ok"
echo "consumer: $(pkg-config --modversion d2v) from $prefix: all builds and runs ok"
