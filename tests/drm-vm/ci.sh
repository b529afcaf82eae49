#!/usr/bin/env bash
# Runs the drm backend's tests against a real kernel: boots ONE drm-vm guest
# (run.sh: Linux 6.12, virtio_gpu and vgem) and runs there, with
# COSCHED_DRM_REQUIRED=1 (so a missing device fails instead of skipping):
# drm_tests, drm_equivalence, cosched-submit --backend drm --clock virtual on
# every bundled example and a generated graph compared byte for byte with
# --backend sim, and one --backend drm --clock real run compared with virtual
# time. See ci-guest.sh for the checks.
#
# usage: tests/drm-vm/ci.sh BUILD_DIR
# BUILD_DIR must hold tests/drm/drm_tests, tests/drm/drm_equivalence and
# tools/cosched-submit (cmake --build BUILD_DIR --target drm_tests drm_equivalence cosched-submit).
# Exit status: 0 when every check passed; the guest's or run.sh's status otherwise
# (run.sh: 122 kernel warning, 124 timeout, 125 VM died, 126 setup error).
set -euo pipefail

die() { echo "drm-vm ci: error: $*" >&2; exit 126; }
[ $# -eq 1 ] || die "usage: tests/drm-vm/ci.sh BUILD_DIR"
here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
build=$(realpath -- "$1" 2>/dev/null) || die "no build directory $1"
for binary in tests/drm/drm_tests tests/drm/drm_equivalence tools/cosched-submit; do
  [ -x "$build/$binary" ] ||
    die "$build/$binary is missing: cmake --build $1 --target drm_tests drm_equivalence cosched-submit"
done

start=$EPOCHREALTIME
set +e
COSCHED_DRM_VM_QUIET=${COSCHED_DRM_VM_QUIET:-1} COSCHED_DRM_VM_TIMEOUT=${COSCHED_DRM_VM_TIMEOUT:-280} \
  "$here/run.sh" \
  --include "$build/tests/drm/drm_tests" \
  --include "$build/tests/drm/drm_equivalence" \
  --include "$build/tools/cosched-submit" \
  --include "$source_dir/examples/graphs" \
  --include "$source_dir/tests/sim/worked" \
  --include "$source_dir/tests/data" \
  --env COSCHED_DRM_REQUIRED=1 \
  -- "$here/ci-guest.sh" "$build" "$source_dir"
rc=$?
set -e
seconds=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
case $rc in
  0) echo "drm-vm ci: passed (one VM boot, ${seconds} s)" ;;
  122) echo "drm-vm ci: FAILED: the guest kernel logged a warning or oops (${seconds} s)" ;;
  124) echo "drm-vm ci: FAILED: the VM timed out (${seconds} s)" ;;
  125) echo "drm-vm ci: FAILED: the VM died without a status (${seconds} s)" ;;
  126) echo "drm-vm ci: FAILED: setup error (${seconds} s)" ;;
  *) echo "drm-vm ci: FAILED: exit $rc (${seconds} s)" ;;
esac
exit "$rc"
