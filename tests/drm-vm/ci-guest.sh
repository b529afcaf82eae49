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
failed=0
summary=""

note() {
  summary="$summary
ci: $*"
}

# check NAME COMMAND...: runs it, records ok or FAILED with its status and time.
check() {
  name=$1
  shift
  start=$(date +%s)
  "$@"
  rc=$?
  seconds=$(($(date +%s) - start))
  if [ "$rc" = 0 ]; then
    note "ok      $name (${seconds} s)"
  else
    note "FAILED  $name (exit $rc, ${seconds} s)"
    failed=1
  fi
}

# Catch2 executables: their summary line goes into the report.
catch_test() {
  "$1" >"$out/log" 2>&1
  rc=$?
  cat "$out/log"
  grep -E '^(All tests passed|test cases:|assertions:)' "$out/log" | tail -n 2 | sed "s|^|    $(basename "$1"): |" >"$out/tail"
  return "$rc"
}

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

# Job, entity, error, cause, attempts of each result line.
outcomes() { sed -n 's/, "queued_us".*//p' "$1"; }

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
[ -s "$out/tail" ] && summary="$summary
$(cat "$out/tail")"
check "drm_equivalence (COSCHED_DRM_REQUIRED=$COSCHED_DRM_REQUIRED)" catch_test "$build/tests/drm/drm_equivalence"
[ -s "$out/tail" ] && summary="$summary
$(cat "$out/tail")"
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

echo "$summary"
if [ "$failed" = 0 ]; then echo "ci: all passed"; else echo "ci: FAILED"; fi
rm -rf "$out"
exit $failed
