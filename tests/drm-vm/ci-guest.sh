#!/bin/sh
# Runs inside the drm-vm guest (busybox sh), started by tests/drm-vm/ci.sh: the
# drm backend's tests and cosched-submit --backend drm against the sim backend.
#
# usage: ci-guest.sh BUILD_DIR SOURCE_DIR
# Prints one "ci: " line per check and exits 1 if any failed.
# shellcheck disable=SC2317 # the check functions are called through check()
build=$1
source=$2
out=$(mktemp -d /tmp/ci.XXXXXX) || exit 1
submit=$build/tools/cosched-submit
# shellcheck source=guest-lib.sh
. "$(dirname "$0")/guest-lib.sh"

# The results of a graph on both backends in virtual time: byte-identical but
# for the backend's name.
virtual_same() {
  graph=$1
  "$submit" --clock virtual --results "$out/sim.jsonl" "$graph" >/dev/null || return 1
  "$submit" --backend drm --clock virtual --results "$out/drm.jsonl" "$graph" >/dev/null || return 1
  sed 's/"backend": "drm"/"backend": "sim"/' "$out/drm.jsonl" >"$out/drm-as-sim.jsonl"
  if ! cmp -s "$out/sim.jsonl" "$out/drm-as-sim.jsonl"; then
    echo "ci: $graph: --backend drm differs from --backend sim in virtual time:"
    diff "$out/sim.jsonl" "$out/drm-as-sim.jsonl" | head -n 20
    return 1
  fi
}

# A real-time run on drm: the outcomes that do not depend on timing equal the
# sim backend's in virtual time.
real_same() {
  graph=$1
  "$submit" --clock virtual --results "$out/sim.jsonl" "$graph" >/dev/null || return 1
  "$submit" --backend drm --clock real --results "$out/real.jsonl" "$graph" || return 1
  grep -q '"backend": "drm", "clock": "real"' "$out/real.jsonl" || return 1
  outcomes "$out/sim.jsonl" >"$out/sim.outcomes"
  outcomes "$out/real.jsonl" >"$out/real.outcomes"
  if ! cmp -s "$out/sim.outcomes" "$out/real.outcomes"; then
    echo "ci: $graph: --backend drm --clock real: outcomes differ from virtual time:"
    diff "$out/sim.outcomes" "$out/real.outcomes" | head -n 20
    return 1
  fi
}

echo "ci: kernel $(uname -r); $(echo /dev/dri/*)"
check "drm_tests (COSCHED_DRM_REQUIRED=$COSCHED_DRM_REQUIRED)" catch_test "$build/tests/drm/drm_tests"
check "drm_equivalence (COSCHED_DRM_REQUIRED=$COSCHED_DRM_REQUIRED)" catch_test "$build/tests/drm/drm_equivalence"
for graph in "$source"/examples/graphs/*.json; do
  check "cosched-submit --backend drm --clock virtual $(basename "$graph"): same results as --backend sim" \
    virtual_same "$graph"
done
generated_same() {
  "$submit" --clock virtual --generate "$1" --seed "$2" --save-graph "$out/generated.json" >/dev/null &&
    virtual_same "$out/generated.json"
}
check "cosched-submit --backend drm --clock virtual --generate jobs=2000,entities=6,deps=3,faults=0.05 --seed 11: same results as --backend sim" \
  generated_same jobs=2000,entities=6,deps=3,faults=0.05 11
check "cosched-submit --backend drm --clock real error-propagation.json: same outcomes as virtual time" \
  real_same "$source/examples/graphs/error-propagation.json"

# This 2D device has no virgl: --backend virtgpu must say so and run nothing.
no_virgl() {
  "$submit" --backend virtgpu "$source/examples/graphs/pipeline.json" >"$out/stdout" 2>"$out/stderr"
  rc=$?
  cat "$out/stderr"
  [ "$rc" = 2 ] && grep -q "without 3D features" "$out/stderr" && [ ! -s "$out/stdout" ]
}
check "cosched-submit --backend virtgpu on a 2D device: exit 2 naming the missing 3D features" no_virgl

finish
