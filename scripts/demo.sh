#!/usr/bin/env bash
# The README's first command: set up, build, and transcribe the bundled spoken-digit samples with the
# bundled CTC model (trained by weights_tools/train_demo.py). Other inputs: scripts/demo.sh FILE...
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build >/dev/null
model=${MODEL:-models/digits-ctc.gguf}
if [ $# -eq 0 ]; then set -- samples/three_one_four.wav samples/two_zero_two_six.wav samples/seven.wav; fi
exec build/d2v-audio -m "$model" "$@"
