#!/usr/bin/env bash
# The Python package and the Ray example: a virtual environment kept between runs (D2V_VENV,
# default ~/.cache/d2v-py), `pip install .` of this tree, then pytest on python/tests against the
# CLIs of the Release build (D2V_BUILD_DIR, default build/).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${D2V_VENV:-$HOME/.cache/d2v-py}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r python/requirements-test.txt
launcher=()
command -v ccache >/dev/null && launcher=(-Ccmake.define.CMAKE_CXX_COMPILER_LAUNCHER=ccache)
echo "python: building the d2v package (pip install .)"
CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) "$venv/bin/python" -m pip install -q --disable-pip-version-check \
  --no-build-isolation --no-deps "${launcher[@]}" .
export D2V_BUILD_DIR=${D2V_BUILD_DIR:-$PWD/build} PATH="$venv/bin:$PATH"
"$venv/bin/python" -m pytest -q -p no:cacheprovider python/tests  # from the root: python/d2v must not shadow the installed package
