#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/) with clang, ASan and UBSan, and runs each for a
# bounded time from its seed corpus: no crash, no hang, no sanitizer report, or this fails.
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   default 15 (8 targets, nproc of them at a time:
#                                          60 s in all on 2 cores)
# New inputs that reach new code are kept in build-fuzz/corpus/NAME/ (not in the repo); a
# failing input lands in build-fuzz/artifacts/ with the command that replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-15}
dir=build-fuzz
werror=OFF
[[ "${CI:-}" == "true" ]] && werror=ON

echo "== $dir: configure and build the fuzzers (clang, libFuzzer, ASan+UBSan)"
# -O1 with line tables, as the suite's other sanitizer builds (scripts/test.sh)
cmake -S . -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="${SKEIN_SANITIZER_OPT:-"-O1 -g1 -DNDEBUG"}" \
  -DSKEIN_FUZZ=ON -DSKEIN_SANITIZE="${SKEIN_UB_SANITIZERS:-address,undefined,float-cast-overflow}" \
  -DSKEIN_BUILD_TESTS=OFF -DSKEIN_BUILD_BENCH=OFF -DSKEIN_WERROR=$werror >/dev/null
targets=(config_fuzz checkpoint_fuzz shard_fuzz tokenizer_fuzz import_fuzz gpt2_vocab_fuzz
         gpt2_encode_fuzz hf_tokenizer_fuzz)
cmake --build "$dir" -j "$(nproc)" --target "${targets[@]}"

mkdir -p "$dir/artifacts"
# One target: its log in $dir/NAME_fuzz.log, and fuzz_one's exit code.
fuzz_one() {
  local t=$1 name=${1%_fuzz}
  local corpus=$dir/corpus/$name
  mkdir -p "$corpus"
  # the first corpus folder receives new inputs; the seeds are only read
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$dir/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$dir/artifacts/$name-" \
    "$corpus" "tests/fuzz/corpus/$name" >"$dir/$t.log" 2>&1
}
# Each fuzzer is one single-threaded process: as many at a time as there are cores.
jobs=$(nproc)
pids=()
for t in "${targets[@]}"; do
  fuzz_one "$t" &
  pids+=($!)
  while (($(jobs -rp | wc -l) >= jobs)); do wait -n || true; done
done
total=0
failed=0
for i in "${!targets[@]}"; do
  t=${targets[i]}
  name=${t%_fuzz}
  log=$dir/$t.log
  if ! wait "${pids[i]}"; then
    tail -60 "$log" >&2
    echo "fuzz: $t failed (log: $log; replay: $dir/tests/fuzz/$t $dir/artifacts/$name-*)" >&2
    failed=1
    continue
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  units=$(find "$dir/corpus/$name" -type f | wc -l)
  total=$((total + runs))
  echo "fuzz: $t: $runs inputs in ${seconds} s ($rate exec/s), corpus $units, no crash, no report"
done
((failed == 0)) || exit 1
echo "fuzz: ${#targets[@]} targets, $total inputs in all, no crash, no hang, no sanitizer report"
