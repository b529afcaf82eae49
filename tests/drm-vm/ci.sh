#!/usr/bin/env bash
# Runs the drm backend's tests against a real kernel: boots ONE drm-vm guest
# (run.sh: Linux 6.12, virtio_gpu and vgem) and runs there, with
# COSCHED_DRM_REQUIRED=1 (so a missing device fails instead of skipping):
# drm_tests, drm_equivalence, cosched-submit --backend drm --clock virtual on
# every bundled example and a generated graph compared byte for byte with
# --backend sim, and one --backend drm --clock real run compared with virtual
# time. See ci-guest.sh for the checks.
#
# With --gpu virgl it boots ONE guest with the virgl device instead and runs
# the real GPU work there, with COSCHED_VIRTGPU_REQUIRED=1: virtgpu_tests, and
# cosched-submit --backend virtgpu --verify on every bundled example. See
# gpu-ci-guest.sh for the checks.
#
# --sanitized DIR (with --gpu virgl; repeatable) also runs DIR's virtgpu_tests and
# drm_tests' [driver_ring] cases in the same boot: a sanitizer build (asan, tsan)
# of the code that only a real device exercises.
#
# usage: tests/drm-vm/ci.sh [--gpu virgl] [--sanitized DIR]... BUILD_DIR
# BUILD_DIR must hold tests/drm/drm_tests, tests/drm/drm_equivalence and
# tools/cosched-submit (cmake --build BUILD_DIR --target drm_tests drm_equivalence cosched-submit);
# with --gpu virgl, tests/virtgpu/virtgpu_tests and tools/cosched-submit.
# Exit status: 0 when every check passed; the guest's or run.sh's status otherwise
# (run.sh: 122 kernel warning, 124 timeout, 125 VM died, 126 setup error).
set -euo pipefail

die() { echo "drm-vm ci: error: $*" >&2; exit 126; }
gpu=""
sanitized=()
while [ $# -gt 1 ]; do
  case $1 in
    --gpu) [ "${2:-}" = virgl ] || die "--gpu takes virgl"; gpu=virgl; shift 2 ;;
    --sanitized) [ -n "${2:-}" ] || die "--sanitized needs a build directory"; sanitized+=("$2"); shift 2 ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || die "usage: tests/drm-vm/ci.sh [--gpu virgl] [--sanitized DIR]... BUILD_DIR"
[ ${#sanitized[@]} -eq 0 ] || [ -n "$gpu" ] || die "--sanitized goes with --gpu virgl"
here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
build=$(realpath -- "$1" 2>/dev/null) || die "no build directory $1"
if [ -n "$gpu" ]; then
  binaries=(tests/virtgpu/virtgpu_tests tools/cosched-submit)
  targets="virtgpu_tests cosched-submit"
  guest=(--gpu virgl --env COSCHED_VIRTGPU_REQUIRED=1 -- "$here/gpu-ci-guest.sh")
else
  binaries=(tests/drm/drm_tests tests/drm/drm_equivalence tools/cosched-submit)
  targets="drm_tests drm_equivalence cosched-submit"
  guest=(--env COSCHED_DRM_REQUIRED=1 -- "$here/ci-guest.sh")
fi
includes=()
for binary in "${binaries[@]}"; do
  [ -x "$build/$binary" ] || die "$build/$binary is missing: cmake --build $1 --target $targets"
  includes+=(--include "$build/$binary")
done
extra=()
for dir in ${sanitized[@]+"${sanitized[@]}"}; do
  dir=$(realpath -- "$dir" 2>/dev/null) || die "no build directory $dir"
  for binary in tests/virtgpu/virtgpu_tests tests/drm/drm_tests; do
    [ -x "$dir/$binary" ] || die "$dir/$binary is missing: cmake --build $dir --target virtgpu_tests drm_tests"
    includes+=(--include "$dir/$binary")
  done
  extra+=("$dir")
done

start=$EPOCHREALTIME
set +e
COSCHED_DRM_VM_QUIET=${COSCHED_DRM_VM_QUIET:-1} COSCHED_DRM_VM_TIMEOUT=${COSCHED_DRM_VM_TIMEOUT:-280} \
  "$here/run.sh" \
  "${includes[@]}" \
  --include "$here/guest-lib.sh" \
  --include "$source_dir/examples/graphs" \
  --include "$source_dir/tests/sim/worked" \
  --include "$source_dir/tests/data" \
  "${guest[@]}" "$build" "$source_dir" ${extra[@]+"${extra[@]}"}
rc=$?
set -e
seconds=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
case $rc in
  0) echo "drm-vm ci${gpu:+ --gpu $gpu}: passed (one VM boot, ${seconds} s)" ;;
  122) echo "drm-vm ci${gpu:+ --gpu $gpu}: FAILED: the guest kernel logged a warning or oops (${seconds} s)" ;;
  124) echo "drm-vm ci${gpu:+ --gpu $gpu}: FAILED: the VM timed out (${seconds} s)" ;;
  125) echo "drm-vm ci${gpu:+ --gpu $gpu}: FAILED: the VM died without a status (${seconds} s)" ;;
  126) echo "drm-vm ci${gpu:+ --gpu $gpu}: FAILED: setup error (${seconds} s)" ;;
  *) echo "drm-vm ci${gpu:+ --gpu $gpu}: FAILED: exit $rc (${seconds} s)" ;;
esac
exit "$rc"
