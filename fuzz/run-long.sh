#!/usr/bin/env bash
# Run every fuzz target (or the ones named) for a bounded time, in parallel, and write a summary.
#
#   fuzz/run-long.sh 2h                 # 2 hours of wall time in all, split across the targets,
#                                       # as many targets at once as there are cores
#   fuzz/run-long.sh 30m dns tcp        # only these targets
#   fuzz/run-long.sh --each 10s         # each target 10 s (what tests/run-all.sh does in CI)
#
# Durations: a number of seconds or a number with s, m or h. Environment: JOBS (parallel runs;
# default: the number of cores), FUZZ_TARGET_DIR (cargo's target directory for the fuzz build;
# default fuzz/target), FUZZ_SUMMARY (where the summary goes; default fuzz/summary.tsv).
#
# The targets are built once (release, debug assertions on, no sanitizer: the fuzzed crates have
# no unsafe code, and overflow checks catch more than ASan would there). Each run keeps new inputs
# in fuzz/corpus/<target>/ and writes crashes, timeouts and out-of-memory inputs to
# fuzz/artifacts/<target>/ (both git-ignored). The summary is a TSV file: target, seconds,
# execs, crashes. Exit status 1 when any target crashed, timed out or ran out of memory.
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
if [ "${1:-}" = "--each" ]; then
  each=$(seconds "${2:?--each needs a duration}")
  shift 2
else
  total=$(seconds "${1:?usage: fuzz/run-long.sh DURATION [TARGET...] | --each DURATION [TARGET...]}")
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
  local t=$1 each=$2 bin_dir=$3 logs=$4
  mkdir -p "corpus/$t" "artifacts/$t"
  local before
  before=$(find "artifacts/$t" -type f | wc -l)
  local start=$SECONDS
  # libFuzzer stops itself at -max_total_time; `timeout` bounds a hang in the harness itself.
  timeout -k 10 $(( each + 120 )) "$bin_dir/$t" "corpus/$t" "seeds/$t" \
    -max_total_time="$each" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$logs/$t.log" 2>&1 || true
  local secs=$(( SECONDS - start ))
  local execs
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log" | tail -n 1)
  local crashes=$(( $(find "artifacts/$t" -type f | wc -l) - before ))
  printf '%s\t%s\t%s\t%s\n' "$t" "$secs" "${execs:-0}" "$crashes" >"$logs/$t.tsv"
  printf '%-14s %5s s %12s execs %3s crashes\n' "$t" "$secs" "${execs:-0}" "$crashes"
}
export -f run_one
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one "$@"' _ {} "$each" "$bin_dir" "$logs"

{
  printf 'target\tseconds\texecs\tcrashes\n'
  for t in "${targets[@]}"; do cat "$logs/$t.tsv"; done
} >"$summary"
echo "run-long.sh: summary in $summary"
column -t "$summary"
bad=$(awk -F'\t' 'NR > 1 && $4 > 0 { print $1 }' "$summary")
if [ -n "$bad" ]; then
  for t in $bad; do
    echo "run-long.sh: $t: crash, timeout or out-of-memory inputs in fuzz/artifacts/$t/:" >&2
    ls "artifacts/$t" >&2
    tail -n 40 "$logs/$t.log" >&2
  done
  exit 1
fi
