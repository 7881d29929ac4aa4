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
timed "find_package build (Debug)" cmake --build "$work/cmake"
check "find_package C++" "$work/cmake/transcribe"
check "find_package C" "$work/cmake/transcribe-c"

# pkg-config, -O0 -g, one translation unit each.
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib64/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
libdir=$(pkg-config --variable=libdir d2v)
timed "pkg-config g++ -O0 -g" g++ -std=c++17 -O0 -g "$here/transcribe.cpp" $(pkg-config --cflags --libs d2v) \
    -Wl,-rpath,"$libdir" -o "$work/transcribe-pc"
timed "pkg-config gcc -O0 -g" gcc -std=c11 -O0 -g "$here/transcribe.c" $(pkg-config --cflags --libs d2v) \
    -Wl,-rpath,"$libdir" -o "$work/transcribe-pc-c"
check "pkg-config C++" "$work/transcribe-pc"
check "pkg-config C" "$work/transcribe-pc-c"
echo "consumer: $(pkg-config --modversion d2v) from $prefix: 4 builds, 4 runs ok"
