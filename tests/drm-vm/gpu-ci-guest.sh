#!/bin/sh
# Runs inside the drm-vm guest with the virgl device (busybox sh), started by
# tests/drm-vm/ci.sh --gpu virgl: real GPU work on virtio-gpu with virgl.
#
# usage: gpu-ci-guest.sh BUILD_DIR SOURCE_DIR [SANITIZED_BUILD_DIR...]
# Prints one "ci: " line per check and exits 1 if any failed. Each sanitized
# build's virtgpu_tests and drm_tests [driver_ring] run too (asan: leak checks on).
# shellcheck disable=SC2317 # the check functions are called through check()
build=$1
source=$2
shift 2
out=$(mktemp -d /tmp/ci.XXXXXX) || exit 1
submit=$build/tools/cosched-submit
# shellcheck source=guest-lib.sh
. "$(dirname "$0")/guest-lib.sh"

# cosched-submit --backend virtgpu --verify on a graph: it completes; no job's
# region is wrong, and every job that succeeded was verified by readback.
verified_run() {
  "$submit" --backend virtgpu --verify --results "$out/gpu.jsonl" "$1" >"$out/table" || return 1
  tail -n 4 "$out/table"
  grep -q '"backend": "virtgpu", "clock": "real"' "$out/gpu.jsonl" || return 1
  if grep -q '"verified": false' "$out/gpu.jsonl"; then
    echo "ci: $1: a job's region is wrong after readback:"
    grep '"verified": false' "$out/gpu.jsonl" | head -n 5
    return 1
  fi
  if grep '"error": null' "$out/gpu.jsonl" | grep -v '"verified": true' | grep -q .; then
    echo "ci: $1: a job succeeded but its region was not verified:"
    grep '"error": null' "$out/gpu.jsonl" | grep -v '"verified": true' | head -n 5
    return 1
  fi
}

# The same, and the per-job outcomes (error, cause, attempts) equal the sim
# backend's in virtual time.
same_outcomes() {
  verified_run "$1" || return 1
  "$submit" --clock virtual --results "$out/sim.jsonl" "$1" >/dev/null || return 1
  outcomes "$out/sim.jsonl" >"$out/sim.outcomes"
  outcomes "$out/gpu.jsonl" >"$out/gpu.outcomes"
  if ! cmp -s "$out/sim.outcomes" "$out/gpu.outcomes"; then
    echo "ci: $1: --backend virtgpu: outcomes differ from the sim backend's:"
    diff "$out/sim.outcomes" "$out/gpu.outcomes" | head -n 20
    return 1
  fi
}

echo "ci: kernel $(uname -r); $(echo /dev/dri/*)"
check "virtgpu_tests (COSCHED_VIRTGPU_REQUIRED=$COSCHED_VIRTGPU_REQUIRED)" catch_test "$build/tests/virtgpu/virtgpu_tests"
for graph in "$source"/examples/graphs/*.json; do
  case $(basename "$graph") in
    # A kill at a fixed time races with how far the GPU has got: which jobs
    # are killed depends on timing. Verified only.
    kill.json)
      check "cosched-submit --backend virtgpu --verify $(basename "$graph"): every job that succeeded verified" \
        verified_run "$graph" ;;
    *)
      check "cosched-submit --backend virtgpu --verify $(basename "$graph"): verified, same outcomes as --backend sim" \
        same_outcomes "$graph" ;;
  esac
done
for sanitized in "$@"; do
  name=$(basename "$sanitized")
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
  check "$name: virtgpu_tests" catch_test "$sanitized/tests/virtgpu/virtgpu_tests"
  driver_ring_cases() { "$sanitized/tests/drm/drm_tests" "[driver_ring]"; }
  check "$name: drm_tests [driver_ring]" catch_test driver_ring_cases
done
finish
