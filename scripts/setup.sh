#!/usr/bin/env bash
# Installs skein's build and test dependencies from Debian's packages, only those missing.
# Idempotent and quiet when everything is already there.
#   scripts/setup.sh          build, test and benchmark dependencies (OpenMPI included: the
#                             mpirun path and its tests)
#   scripts/setup.sh --torch  also python3-torch and OpenBLAS's OpenMP build (the PyTorch
#                             reference and comparison scripts)
set -euo pipefail

packages=(cmake ninja-build g++ libeigen3-dev libprotobuf-dev protobuf-compiler libgtest-dev
          libbenchmark-dev libomp-dev zlib1g-dev clang libclang-rt-14-dev openmpi-bin
          libopenmpi-dev)
[[ "${1:-}" == "--torch" ]] && packages+=(python3-torch libopenblas0-openmp)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "setup: installing ${missing[*]}"
sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
