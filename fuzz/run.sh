#!/usr/bin/env bash
# Fuzz the parsers that read input from outside: fuzz/run.sh [minutes] [targets...]
#
# Builds every target once, then runs the targets named (all of them when none is) side by side
# for `minutes` each (default 10), at the lowest CPU priority. Each target keeps its corpus in
# fuzz/corpus/<target>/ (committed: start from it, add what is new), starts from its seeds in
# fuzz/seeds/<target>/, and writes anything it finds to fuzz/artifacts/<target>/. At the end each
# corpus is minimised (cargo fuzz cmin) and the executions of each target and what it found are
# printed. Inputs are at most 8 KiB, so each corpus stays small. Logs: fuzz/logs/<target>.log,
# or $JOL_FUZZ_LOGS/<target>.log.
#
# A finding is replayed with `cargo fuzz run -s none TARGET fuzz/artifacts/TARGET/crash-…`;
# once fixed, its file goes to fuzz/regressions/<target>/, which `cargo test --lib fuzzing`
# replays with every seed. Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); the stable
# toolchain runs it with RUSTC_BOOTSTRAP=1.
set -euo pipefail

cd "$(dirname "$0")"
ALL=(event_parse_verify feed_page manifest node_config publish_body xroad_face sd_jwt erasure_order feed_query signed_note witness_request)
minutes=${1:-10}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ALL[@]}")
logs=${JOL_FUZZ_LOGS:-logs}
mkdir -p "$logs"

# No sanitizer: the library forbids unsafe code, and the executions go further without one.
# Debug assertions and overflow checks stay on (cargo fuzz's default).
export RUSTC_BOOTSTRAP=1
fuzz=(nice -n 19 cargo fuzz)
flags=(-s none)

"${fuzz[@]}" build "${flags[@]}"

for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  "${fuzz[@]}" run "${flags[@]}" "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time=$((minutes * 60)) -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
    -print_final_stats=1 -artifact_prefix="artifacts/$t/" >"$logs/$t.log" 2>&1 &
done
wait

for t in "${targets[@]}"; do
  "${fuzz[@]}" cmin "${flags[@]}" "$t" "corpus/$t" >>"$logs/$t.log" 2>&1 || true
done

failed=0
printf '%-20s %14s %8s %10s  %s\n' target executions exec/s corpus found
for t in "${targets[@]}"; do
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$t.log" | grep -o '[0-9]*$' | tail -1)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$logs/$t.log" | grep -o '[0-9]*$' | tail -1)
  size=$(du -sh --apparent-size "corpus/$t" | cut -f1)
  found=$(find "artifacts/$t" -type f | wc -l)
  [ "$found" -eq 0 ] || failed=1
  printf '%-20s %14s %8s %10s  %s\n' "$t" "${runs:-?}" "${rate:-?}" "$size" \
    "$([ "$found" -eq 0 ] && echo nothing || echo "$found in fuzz/artifacts/$t")"
done
exit $failed
