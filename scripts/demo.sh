#!/usr/bin/env bash
# The README's first command: set up, build only the d2v-audio program, and transcribe the bundled
# spoken-digit samples with the bundled CTC model (trained by weights_tools/train_demo.py).
# Other inputs: scripts/demo.sh FILE...   The build's own output goes to build/demo-build.log.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
echo "demo: [1/3] build dependencies (scripts/setup.sh)"
scripts/setup.sh
echo "demo: [2/3] building d2v-audio in build/ (the first time takes a few minutes)"
mkdir -p build
if ! scripts/build.sh build -- d2v-audio >build/demo-build.log 2>&1; then
  tail -n 40 build/demo-build.log >&2
  echo "demo: build failed; the whole log is build/demo-build.log" >&2
  exit 1
fi
model=${MODEL:-models/digits-ctc.gguf}
if [ $# -eq 0 ]; then set -- samples/three_one_four.wav samples/two_zero_two_six.wav samples/seven.wav; fi
echo "demo: [3/3] transcribing with $model"
build/d2v-audio -m "$model" "$@"
echo "demo: done in $((SECONDS - start)) s"
