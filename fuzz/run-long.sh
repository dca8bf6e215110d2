#!/usr/bin/env bash
# Run every fuzz target (or the ones named) for a bounded time, in parallel, and write a summary.
#
#   fuzz/run-long.sh 2h                 # 2 hours of wall time in all, split across the targets,
#                                       # as many targets at once as there are cores
#   fuzz/run-long.sh 30m dns tcp        # only these targets
#   fuzz/run-long.sh --each 10s         # each target 10 s (what tests/run-all.sh does in CI)
#   fuzz/run-long.sh --cpu-each 10m     # each target until it has had 10 CPU-minutes (the
#                                       # bar of docs/fuzzing.md; safe to run niced beside builds)
#
# Durations: a number of seconds or a number with s, m or h. Environment: JOBS (parallel runs;
# default: the number of cores), FUZZ_TARGET_DIR (cargo's target directory for the fuzz build;
# default fuzz/target), FUZZ_SUMMARY (where the summary goes; default fuzz/summary.tsv).
#
# The targets are built once (release, debug assertions on, no sanitizer: the fuzzed crates have
# no unsafe code, and overflow checks catch more than ASan would there). Each run keeps new inputs
# in fuzz/corpus/<target>/ and writes crashes, timeouts and out-of-memory inputs to
# fuzz/artifacts/<target>/ (both git-ignored). The summary is a TSV file: target, seconds,
# CPU seconds, execs, crashes. Exit status 1 when any target crashed, timed out or ran out of memory.
set -euo pipefail
cd "$(dirname "$0")"

seconds() {
  local d=$1
  case "$d" in
    *h) echo $(( ${d%h} * 3600 )) ;;
    *m) echo $(( ${d%m} * 60 )) ;;
    *s) echo $(( ${d%s} )) ;;
    *[!0-9]* | '') echo "run-long.sh: not a duration: $d (try 90s, 30m, 2h)" >&2; exit 2 ;;
    *) echo "$d" ;;
  esac
}

each=""
cpu_each=0
if [ "${1:-}" = "--each" ]; then
  each=$(seconds "${2:?--each needs a duration}")
  shift 2
elif [ "${1:-}" = "--cpu-each" ]; then
  # Each target runs until it has had this much CPU time (restarting libFuzzer with the
  # remainder as often as needed, at most 4x the budget in wall time): the fuzzing bar counts
  # CPU-minutes, and a run that shares the cores with builds gets less CPU than wall time.
  cpu_each=$(seconds "${2:?--cpu-each needs a duration}")
  each=$cpu_each
  shift 2
else
  total=$(seconds "${1:?usage: fuzz/run-long.sh DURATION [TARGET...] | --each DURATION [TARGET...] | --cpu-each DURATION [TARGET...]}")
  shift
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^rustmap-fuzz$')
fi
jobs=${JOBS:-$(nproc)}
n=${#targets[@]}
if [ -z "$each" ]; then
  # The wall time is the bound: jobs targets run at once, so each gets total * jobs / n.
  runs_per_job=$(( (n + jobs - 1) / jobs ))
  each=$(( total / runs_per_job ))
  [ "$each" -ge 1 ] || each=1
fi

target_dir=${FUZZ_TARGET_DIR:-$PWD/target}
summary=${FUZZ_SUMMARY:-$PWD/summary.tsv}
export RUSTC_BOOTSTRAP=1
echo "run-long.sh: building the fuzz targets"
build_log=$(mktemp)
if ! cargo fuzz build --sanitizer none --debug-assertions --target-dir "$target_dir" >"$build_log" 2>&1; then
  cat "$build_log" >&2
  echo "run-long.sh: the fuzz build failed" >&2
  exit 2
fi
tail -n 1 "$build_log"
rm -f "$build_log"
triple=$(rustc -vV | sed -n 's/^host: //p')
bin_dir="$target_dir/$triple/release"
for t in "${targets[@]}"; do
  [ -x "$bin_dir/$t" ] || { echo "run-long.sh: $t was not built ($bin_dir/$t)" >&2; exit 2; }
done

logs=$(mktemp -d)
echo "run-long.sh: ${n} targets, ${each} s each, ${jobs} at a time (logs in $logs)"
run_one() {
  local t=$1 each=$2 bin_dir=$3 logs=$4 cpu_each=$5
  mkdir -p "corpus/$t" "artifacts/$t"
  local before
  before=$(find "artifacts/$t" -type f | wc -l)
  local start=$SECONDS
  # libFuzzer stops itself at -max_total_time; `timeout` bounds a hang in the harness itself.
  # The CPU time (user + system) is what the fuzzing bar counts: on a shared machine a run can
  # get less CPU than its wall time. Bash's `time` keyword needs no extra package.
  local TIMEFORMAT='%3U %3S'
  local cpu=0 execs=0 round=0 budget=$each
  : >"$logs/$t.log"
  while :; do
    round=$(( round + 1 ))
    { time timeout -k 10 $(( budget + 120 )) "$bin_dir/$t" "corpus/$t" "seeds/$t" \
      -max_total_time="$budget" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$logs/$t.round" 2>&1 || true; } 2>"$logs/$t.cpu"
    cat "$logs/$t.round" >>"$logs/$t.log"
    cpu=$(( cpu + $(awk '{ printf "%d", $1 + $2 }' "$logs/$t.cpu") ))
    local n
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.round" | tail -n 1)
    execs=$(( execs + ${n:-0} ))
    # Plain --each: one round. --cpu-each: more rounds until the CPU budget is spent, bounded
    # by 4x the budget in wall time and 50 rounds, and stopped by the first crash.
    [ "$cpu_each" -gt 0 ] || break
    [ "$cpu" -lt "$cpu_each" ] || break
    [ $(( SECONDS - start )) -lt $(( cpu_each * 4 )) ] || break
    [ "$round" -lt 50 ] || break
    [ "$(find "artifacts/$t" -type f | wc -l)" -eq "$before" ] || break
    budget=$(( cpu_each - cpu ))
    [ "$budget" -ge 10 ] || budget=10
  done
  local secs=$(( SECONDS - start ))
  local crashes=$(( $(find "artifacts/$t" -type f | wc -l) - before ))
  printf '%s\t%s\t%s\t%s\t%s\n' "$t" "$secs" "${cpu:-0}" "${execs:-0}" "$crashes" >"$logs/$t.tsv"
  printf '%-14s %5s s %5s CPU-s %12s execs %3s crashes\n' "$t" "$secs" "${cpu:-0}" "${execs:-0}" "$crashes"
}
export -f run_one
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one "$@"' _ {} "$each" "$bin_dir" "$logs" "$cpu_each"

{
  printf 'target\tseconds\tcpu_seconds\texecs\tcrashes\n'
  for t in "${targets[@]}"; do cat "$logs/$t.tsv"; done
} >"$summary"
echo "run-long.sh: summary in $summary"
column -t "$summary"
bad=$(awk -F'\t' 'NR > 1 && $5 > 0 { print $1 }' "$summary")
if [ -n "$bad" ]; then
  for t in $bad; do
    echo "run-long.sh: $t: crash, timeout or out-of-memory inputs in fuzz/artifacts/$t/:" >&2
    ls "artifacts/$t" >&2
    tail -n 40 "$logs/$t.log" >&2
  done
  exit 1
fi
