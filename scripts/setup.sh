#!/usr/bin/env bash
# Installs the build and test dependencies from Debian's archive (idempotent); --training adds the
# speech synthesisers for training the demo models.
set -euo pipefail
packages=(cmake g++ make pkg-config libeigen3-dev nlohmann-json3-dev libsndfile1-dev libsoxr-dev libdnnl-dev libgtest-dev libpcre2-dev libstb-dev libpng-dev libjpeg62-turbo-dev python3-venv
          clang libclang-rt-14-dev libomp-14-dev)  # the last three: libFuzzer harnesses (scripts/fuzz.sh)
packages+=(libcpp-httplib-dev curl)  # d2v-server (HTTP); curl runs the README's server examples (tests/test_server_readme.cpp)
# --training: the speech synthesisers weights_tools/train_demo.py uses for its synthetic voices
if [ "${1:-}" = "--training" ]; then
  packages+=(espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
