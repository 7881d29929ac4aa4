#!/usr/bin/env bash
# The converter's tests: a virtual environment from weights_tools/requirements.txt (gguf, numpy,
# h5py; no torch) kept between runs (D2V_CONVERT_VENV, default ~/.cache/d2v-convert), then the
# layout tests, the hostile-input tests and a short fuzzing run (D2V_FUZZ_SECONDS, default 60).
# weights_tools/test_convert.py needs torch + transformers and is run by hand (see its docstring).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${D2V_CONVERT_VENV:-$HOME/.cache/d2v-convert}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r weights_tools/requirements.txt
"$venv/bin/python" weights_tools/test_convert_layouts.py
"$venv/bin/python" weights_tools/test_convert_hostile.py
"$venv/bin/python" weights_tools/test_convert.py --tf-h5-only
"$venv/bin/python" weights_tools/fuzz_convert.py --seconds "${D2V_FUZZ_SECONDS:-60}"
