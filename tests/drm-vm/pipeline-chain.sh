#!/usr/bin/env bash
# Pipelining on real GPU work: a chain of N small dependent GPU jobs (each
# declares the previous one, the jobs alternate between two entities), run by
# cosched-submit on the virtgpu backend with and without "pipeline": true,
# alternately, REPS times each; prints the wall time of each run (the results'
# total_us) and the medians' ratio. Run it where a virtio-gpu with virgl is,
# e.g. in the VM:
#   tests/drm-vm/run.sh --gpu virgl --include tests/drm-vm/pipeline-chain.sh -- \
#     tests/drm-vm/pipeline-chain.sh build/release/tools/cosched-submit
# usage: pipeline-chain.sh COSCHED_SUBMIT [JOBS (200)] [DURATION_US (100)] [REPS (5)]
set -euo pipefail
submit=${1:?usage: pipeline-chain.sh COSCHED_SUBMIT [JOBS] [DURATION_US] [REPS]}
jobs=${2:-200}
duration=${3:-100}
reps=${4:-5}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

graph() {  # graph PIPELINE
  {
    printf '{"scheduler": {"mode": "shared_ring", "credit_limit": 4, "pipeline": %s},\n' "$1"
    printf ' "entities": [{"name": "a"}, {"name": "b"}],\n "jobs": [\n'
    for ((i = 0; i < jobs; i++)); do
      entity=$([ $((i % 2)) -eq 0 ] && echo a || echo b)
      deps=$([ "$i" -gt 0 ] && printf ', "deps": ["j%d"]' $((i - 1)) || true)
      printf '  {"id": "j%d", "entity": "%s", "duration_us": %d%s}%s\n' "$i" "$entity" "$duration" "$deps" \
        "$([ "$i" -lt $((jobs - 1)) ] && echo , || true)"
    done
    printf ' ]}\n'
  }
}
graph false > "$dir/plain.json"
graph true > "$dir/pipelined.json"

total_us() {  # total_us GRAPH: one run's wall time, from the results' summary line
  "$submit" --backend virtgpu --results - "$1" | sed -n 's/.*"total_us": \([0-9]*\).*/\1/p'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

: > "$dir/plain.times"
: > "$dir/pipelined.times"
for ((r = 1; r <= reps; r++)); do
  plain=$(total_us "$dir/plain.json")
  pipelined=$(total_us "$dir/pipelined.json")
  echo "run $r: without pipelining ${plain} us, with ${pipelined} us"
  echo "$plain" >> "$dir/plain.times"
  echo "$pipelined" >> "$dir/pipelined.times"
done
plain=$(median < "$dir/plain.times")
pipelined=$(median < "$dir/pipelined.times")
awk -v p="$plain" -v q="$pipelined" -v n="$jobs" 'BEGIN {
  printf "chain of %d GPU jobs, medians: without pipelining %d us (%.1f us per job), with %d us (%.1f us per job): %.2fx\n",
         n, p, p / n, q, q / n, p / q }'
