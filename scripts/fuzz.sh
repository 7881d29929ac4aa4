#!/usr/bin/env bash
# libFuzzer over every parser that takes untrusted bytes (harnesses in tests/fuzz/):
#   model_file    GGUF reader + config + tensor validation + pipeline load + a tiny forward, all modalities
#   config_json   config.json / preprocessor_config.json readers and the tensor tables they imply
#   image_decode  PNG / JPEG / BMP / GIF decoding (RGB and label maps)
#   audio_decode  libsndfile decoding, mix-down, resampling
#   tokenizer     byte-level BPE: encode / pair / decode, and tokenizers built from fuzzed vocab/merges/tokenizer.json
#
# scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (default: 300 s each, every target)
# Builds build-fuzz with clang (-fsanitize=fuzzer,address,undefined), then runs each target in turn
# with the committed seeds (tests/fuzz/corpus/<target>; the image fixtures for image_decode) and a working
# corpus in build-fuzz/corpus/<target>. A crash, sanitizer report, leak, timeout (>10 s per input)
# or RSS over 2 GB is a finding: the input is saved under build-fuzz/findings/ and the script fails.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-300}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(model_file config_json image_decode audio_decode tokenizer)

dir=build-fuzz
CC=clang CXX=clang++ cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DD2V_FUZZ=ON -DD2V_BUILD_TESTS=OFF \
  -DD2V_SHARED=OFF -DD2V_USE_DNNL=OFF >/dev/null
cmake --build "$dir" -j"$(nproc)" --target "${targets[@]/#/d2v-fuzz-}"

mkdir -p "$dir/findings"
status=0
for t in "${targets[@]}"; do
  seeds=()
  case $t in
    image_decode) candidates=(tests/fixtures/vision/images tests/fixtures/vision/images/bad) ;;  # the image fixtures are the seeds
    *) candidates=(tests/fuzz/corpus/"$t") ;;
  esac
  for d in "${candidates[@]}"; do [ -d "$d" ] && seeds+=("$d"); done
  mkdir -p "$dir/corpus/$t"
  echo "== fuzz $t for ${seconds}s"
  # OpenMP threads would only slow each execution down; leaks are findings too.
  if ! OMP_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 UBSAN_OPTIONS=print_stacktrace=1 \
      LSAN_OPTIONS=suppressions=tests/fuzz/lsan.supp \
      "$dir/d2v-fuzz-$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
      -artifact_prefix="$dir/findings/$t-" "$dir/corpus/$t" "${seeds[@]}" 2>"$dir/fuzz-$t.log"; then
    echo "fuzz $t: FINDING (log: $dir/fuzz-$t.log, inputs: $dir/findings/$t-*)"
    tail -n 60 "$dir/fuzz-$t.log"
    status=1
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$dir/fuzz-$t.log" | sed "s/^/  $t /" || true
done
exit $status
