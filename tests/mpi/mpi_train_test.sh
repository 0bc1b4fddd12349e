#!/usr/bin/env bash
# The train binary under mpirun (2 ranks on this machine):
#  1. 2 ranks x 1 thread and 1 process x 2 threads, same global batch and R: bit-identical
#     parameters and optimizer state after 10 steps (also with 2 replicas per rank and gradient
#     accumulation, where the replica tree makes it so);
#  1b. the same, checkpoints and a resume included, for a model smaller than one partition block
#     (rank 0 owns no parameters);
#  2. a checkpoint written by 2 ranks resumes in one process, and the reverse, continuing exactly;
#  3. only rank 0 prints; a bad config stops every rank with one message;
#  4. kill -9 of one rank ends the job non-zero within a bounded time, and the last checkpoint
#     verifies; a rank that hangs (SIGSTOP) is detected by run.comm_timeout_s.
# Usage: mpi_train_test.sh MPIRUN TRAIN PREPARE_DATA INSPECT_CHECKPOINT
set -uo pipefail
mpirun=$1 train=$2 prepare=$3 inspect=$4
tmp=$(mktemp -d)
cleanup() {
  pkill -KILL -f "$tmp/" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
# Under mpirun, LeakSanitizer (ASan builds) is off: OpenMPI's plugins keep allocations until they
# are unloaded at MPI_Finalize, which LSan then reports from "<unknown module>". The same binary's
# single-process runs here and in system_test keep leak checking on.
mpi() {
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    "$mpirun" --oversubscribe --allow-run-as-root -np 2 "$@"
}

for i in $(seq 1 4000); do echo "line $i: the quick brown fox jumps over the lazy dog $((i * 7919 % 1000))"; done >"$tmp/corpus.txt"
"$prepare" --quiet --out "$tmp/data" --tokenizer byte "$tmp/corpus.txt" || { echo "prepare_data failed"; exit 1; }
cat >"$tmp/cfg.textproto" <<CFG
model { vocab_size: 256 seq_len: 32 n_layer: 2 n_head: 2 d_model: 32 }
optimizer { kind: ADAMW lr: 0.003 weight_decay: 0.1 max_grad_norm: 1.0 }
schedule { kind: COSINE warmup_steps: 3 }
run { batch_size: 8 steps: 10 seed: 5 replicas: 2 log_every: 5 checkpoint_every: 5 keep_checkpoints: 5 eval_every: 5 eval_batches: 2 }
data { dir: "$tmp/data" }
CFG
cfg=$tmp/cfg.textproto
ckpt() { echo "$tmp/$1/checkpoints/step_$(printf %08d "$2")/tensors.bin"; }

# 1. Same bits: P=2 x 1 thread vs 1 x 2 threads.
for extra in "" "--set run.replicas=4 --set run.grad_accum_steps=2"; do
  rm -rf "$tmp/one" "$tmp/two"
  "$train" --config "$cfg" --out "$tmp/one" --set run.threads=2 $extra >"$tmp/one.log" 2>&1 ||
    fail "single process ($extra): exit $?"$'\n'"$(cat "$tmp/one.log")"
  mpi "$train" --config "$cfg" --out "$tmp/two" --set run.threads=1 $extra >"$tmp/two.log" 2>&1 ||
    fail "2 ranks ($extra): exit $?"$'\n'"$(cat "$tmp/two.log")"
  cmp -s "$(ckpt one 10)" "$(ckpt two 10)" ||
    fail "2 ranks x 1 thread and 1 x 2 threads differ after 10 steps ($extra)"
  grep -q "2 ranks x 1 threads" "$tmp/two.log" || fail "the job's header line is missing"
  [[ $(grep -c "^done:" "$tmp/two.log") -eq 1 ]] || fail "expected one 'done:' line (rank 0 only)"
  grep -q "comm [0-9.]*%" "$tmp/two.log" || fail "no communication share in the progress line"
  [[ $(wc -l <"$tmp/two/metrics.jsonl") -eq $(wc -l <"$tmp/one/metrics.jsonl") ]] ||
    fail "metrics.jsonl written more than once per record"
done

# 1b. A model of fewer partition blocks (16384 floats) than ranks: 7920 parameters, so rank 0
# owns none. Regression: such a rank skipped the gather of AdamW's v at a save, which left the
# other rank waiting in it, or crashed the job, after the step-5 checkpoint (whose v was zeros).
# Same bits as one process at both checkpoints, and resuming the one-process checkpoint on 2
# ranks (a scatter into the empty range) continues exactly.
small="--set model.d_model=16 --set model.n_layer=1 --set run.comm_timeout_s=20"
rm -rf "$tmp/s1" "$tmp/s2" "$tmp/s3"
"$train" --config "$cfg" --out "$tmp/s1" --set run.threads=2 $small >"$tmp/s1.log" 2>&1 ||
  fail "small model, single process: exit $?"$'\n'"$(cat "$tmp/s1.log")"
grep -q " 7920 parameters" "$tmp/s1.log" || fail "small model: expected 7920 parameters (1 block)"
mpi "$train" --config "$cfg" --out "$tmp/s2" --set run.threads=1 $small >"$tmp/s2.log" 2>&1 ||
  fail "small model, 2 ranks: exit $?"$'\n'"$(cat "$tmp/s2.log")"
for s in 5 10; do
  cmp -s "$(ckpt s1 $s)" "$(ckpt s2 $s)" ||
    fail "small model: 2 ranks x 1 thread and 1 x 2 threads differ at step $s"
done
mpi "$train" --config "$cfg" --out "$tmp/s3" --set run.threads=1 $small --resume "$tmp/s1/checkpoints/step_00000005" >"$tmp/s3.log" 2>&1 ||
  fail "small model, 2 ranks resuming a 1-process checkpoint: exit $?"$'\n'"$(cat "$tmp/s3.log")"
cmp -s "$(ckpt s1 10)" "$(ckpt s3 10)" || fail "small model, 1 process -> 2 ranks: not an exact continuation"

# 2. Resume across process counts (the last run above: R=4, 2 micro-steps).
extra="--set run.replicas=4 --set run.grad_accum_steps=2"
rm -rf "$tmp/r1" "$tmp/r2"
mpi "$train" --config "$cfg" --out "$tmp/r1" --set run.threads=1 $extra --resume "$tmp/one/checkpoints/step_00000005" >"$tmp/r1.log" 2>&1 ||
  fail "2 ranks resuming a 1-process checkpoint: exit $?"$'\n'"$(cat "$tmp/r1.log")"
cmp -s "$(ckpt one 10)" "$(ckpt r1 10)" || fail "1 process -> 2 ranks: not an exact continuation"
"$train" --config "$cfg" --out "$tmp/r2" --set run.threads=2 $extra --resume "$tmp/two/checkpoints/step_00000005" >"$tmp/r2.log" 2>&1 ||
  fail "1 process resuming a 2-rank checkpoint: exit $?"$'\n'"$(cat "$tmp/r2.log")"
cmp -s "$(ckpt one 10)" "$(ckpt r2 10)" || fail "2 ranks -> 1 process: not an exact continuation"

# 3. A bad config: every rank refuses, one message, exit 2.
out=$(mpi "$train" --config "$cfg" --out "$tmp/bad" --set run.replicas=1 2>&1)
rc=$?
[[ $rc -eq 2 ]] || fail "bad replica count under mpirun: exit $rc, expected 2"$'\n'"$out"
[[ $(grep -c "run.replicas = 1: must be divisible by the number of MPI ranks, 2" <<<"$out") -eq 1 ]] ||
  fail "expected the error once"$'\n'"$out"

# 3b. Ranks whose data folders differ (MPMD launch: rank 1 gets another folder) refuse to start.
head -2000 "$tmp/corpus.txt" >"$tmp/other.txt"
"$prepare" --quiet --out "$tmp/data2" --tokenizer byte "$tmp/other.txt" || fail "prepare_data (2) failed"
out=$(ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" "$mpirun" --oversubscribe \
  --allow-run-as-root -np 1 "$train" --config "$cfg" --out "$tmp/mixed" : \
  -np 1 "$train" --config "$cfg" --out "$tmp/mixed" --set data.dir="$tmp/data2" 2>&1)
rc=$?
[[ $rc -eq 2 ]] || fail "different data on the ranks: exit $rc, expected 2"$'\n'"$out"
[[ $(grep -c "error: rank 1: data.dir = .* differs from rank 0's" <<<"$out") -eq 1 ]] ||
  fail "expected rank 1's data error once"$'\n'"$out"

# rank_pid RUN_DIR RANK: the pid of that rank of the job training into RUN_DIR.
rank_pid() {
  local p
  for p in $(pgrep -f -- "--out $1 "); do
    # grep without -q: it reads all of tr's output, so no SIGPIPE fails the pipeline (pipefail)
    if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -x "OMPI_COMM_WORLD_RANK=$2" >/dev/null; then
      echo "$p"
      return
    fi
  done
}
# wait_for FILE PATTERN SECONDS
wait_for() {
  for _ in $(seq 1 $(($3 * 10))); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# break_rank NAME SIGNAL EXTRA_ARGS...: starts a long job into $tmp/NAME, sends SIGNAL to rank 1
# after its first checkpoint, and checks that the job ends non-zero within 60 s and that the
# last checkpoint verifies. Sets rc and log.
long="--set run.steps=1000000 --set run.checkpoint_every=20 --set run.log_every=1000 --set run.threads=1"
break_rank() {
  local name=$1 signal=$2
  shift 2
  log=$tmp/$name.log
  rc=0
  mpi "$train" --config "$cfg" --out "$tmp/$name" $long "$@" >"$log" 2>&1 &
  local job=$! victim start
  if ! wait_for "$log" "saved checkpoint" 120; then
    fail "$name: no checkpoint within 120 s"$'\n'"$(cat "$log")"
    kill -9 "$job"
    return
  fi
  victim=$(rank_pid "$tmp/$name" 1)
  [[ -n $victim ]] || fail "$name: rank 1's process not found"
  start=$SECONDS
  kill "-$signal" "$victim"
  for _ in $(seq 1 600); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$job" 2>/dev/null; then
    fail "$name: the job still runs 60 s after SIG$signal to rank 1"
    kill -9 "$job"
  fi
  wait "$job"
  rc=$?
  kill -9 "$victim" 2>/dev/null
  [[ $rc -ne 0 ]] || fail "$name: the job exited 0 after SIG$signal to rank 1"
  echo "SIG$signal to rank 1: the job ended in $((SECONDS - start)) s with exit $rc"
  local latest
  latest=$(ls -d "$tmp/$name"/checkpoints/step_* | sort | tail -1)
  "$inspect" "$latest" >/dev/null || fail "$name: the last checkpoint $latest does not verify"
}

# 4a. kill -9 of rank 1 while training: mpirun ends the job.
break_rank killed KILL
# 4b. A rank that hangs: the other stops the job after run.comm_timeout_s.
break_rank hung STOP --set run.comm_timeout_s=2
grep -q "rank 0: no progress in .* for [0-9]* s: another rank has failed or hangs" "$log" ||
  fail "no timeout message"$'\n'"$(tail -5 "$log")"

if [[ $failures -gt 0 ]]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "all MPI checks passed"
