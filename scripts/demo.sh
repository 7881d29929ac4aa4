#!/usr/bin/env bash
# The README's first command: set up, build, and transcribe an audio file with the bundled CTC model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build >/dev/null
model=${MODEL:-tests/fixtures/audio/ctc/model.gguf}
input=${1:-../shared/data/speech/jfk.wav}
exec build/d2v-audio -m "$model" "$input"
