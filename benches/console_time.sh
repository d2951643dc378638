#!/bin/sh
# Wall-clock time per ask with and without the web console, from alternating runs of the
# `console_instructions` bench binary (each run a fresh process, so no mode leaves its marks
# on another; pinned to one core), and the median and tenth percentile of each mode's runs.
#
#   cargo bench -p overseer-console --bench console_instructions --no-run
#   benches/console_time.sh BINARY [ROUNDS] [ASKS]
set -eu
BINARY=$1
ROUNDS=${2:-15}
ASKS=${3:-200000}
OUT=$(mktemp)
i=0
while [ "$i" -lt "$ROUNDS" ]; do
    for mode in plain console page; do
        TIME_ASKS=1 taskset -c 1 "$BINARY" "$mode" "$ASKS" >> "$OUT"
    done
    i=$((i + 1))
done
python3 - "$OUT" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    mode, ns, _ = line.split()
    runs.setdefault(mode, []).append(float(ns))
def low(times):
    # The tenth percentile: single runs on a shared machine fall into a fast and a slow mode,
    # and the fast one is the code's own cost.
    ordered = sorted(times)
    return ordered[len(ordered) // 10]
base = statistics.median(runs["plain"])
base_low = low(runs["plain"])
for mode, times in runs.items():
    median = statistics.median(times)
    print(f"{mode:8} median {median:7.1f} ns/ask ({median / base:.3f}), "
          f"10th percentile {low(times):7.1f} ns/ask ({low(times) / base_low:.3f}), "
          f"runs {min(times):.1f} to {max(times):.1f}, {len(times)} runs")
PY
rm -f "$OUT"
