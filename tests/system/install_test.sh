#!/usr/bin/env bash
# cmake --install of a build tree: exactly the five programs land in PREFIX/bin (no tests, no
# benchmarks), the configs in PREFIX/share/skein/configs, every library the programs load resolves,
# and each program answers --help with exit 0 from outside the source and build trees.
# Usage: install_test.sh PATH/TO/cmake BUILD_DIR
# No -e: every check runs and is counted, as in tests/data/prepare_data_cli_test.sh.
set -uo pipefail
cmake=$1
build=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

if ! out=$("$cmake" --install "$build" --prefix "$prefix" 2>&1); then
  echo "FAIL: cmake --install $build --prefix $prefix"$'\n'"$out"
  exit 1
fi

programs="export_model inspect_checkpoint prepare_data sample train"
found=$(find "$prefix/bin" -mindepth 1 -printf "%f\n" 2>/dev/null | sort | tr '\n' ' ')
[[ $found == "$programs " ]] || fail "$prefix/bin holds '$found', expected '$programs '"
[[ -f $prefix/share/skein/configs/demo.textproto ]] || fail "no share/skein/configs/demo.textproto"

cd "$tmp" || exit 1
for p in $programs; do
  bin=$prefix/bin/$p
  if [[ ! -x $bin ]]; then
    fail "$bin missing or not executable"
    continue
  fi
  missing=$(ldd "$bin" 2>&1 | grep "not found")
  [[ -z $missing ]] || fail "$p: libraries not found:"$'\n'"$missing"
  out=$("$bin" --help 2>&1)
  rc=$?
  [[ $rc -eq 0 ]] || fail "$bin --help: exit $rc, expected 0"$'\n'"$out"
done
grep -q "exit codes" <<<"$("$prefix/bin/train" --help 2>&1)" || fail "train --help lacks 'exit codes'"

if [[ $failures -ne 0 ]]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "installed into $prefix: $programs; all checks passed"
