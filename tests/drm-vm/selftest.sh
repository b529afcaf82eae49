#!/usr/bin/env bash
# Self-test of the drm-vm harness: builds probe.c and a small dynamic C++ program
# with the host compilers and runs them through run.sh, then checks run.sh's own
# paths: exit status, arguments, --include, --env, stdout/stderr, and the exit
# codes for a kernel warning (122), a timeout (124), a dead VM (125) and setup
# errors (126). Seven VM boots, about 70 s with a warm cache.
#
# usage: tests/drm-vm/selftest.sh [--quick]   (--quick: probe and exit status only)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
run=$here/run.sh
quick=0
case ${1:-} in
  --quick) quick=1 ;;
  "") ;;
  *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac

[ -r /usr/include/libdrm/drm.h ] || { echo "selftest: needs libdrm-dev (run ./setup)" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/cosched-drm-vm-selftest.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

passed=0
failed=0
ok() { echo "selftest: ok - $*"; passed=$((passed + 1)); }
not_ok() { echo "selftest: FAIL - $*"; failed=$((failed + 1)); }

# attempt NAME COMMAND...: runs it with stdout/stderr in NAME.out/NAME.err; sets rc, took
attempt() {
  local name=$1 t0=$SECONDS
  shift
  set +e
  "$@" >"$name.out" 2>"$name.err"
  rc=$?
  set -e
  took=$((SECONDS - t0))
}
show() { sed 's/^/    /' "$@"; }

# --------------------------------------------------------------------- probe
cc -O2 -Wall -Wextra -Werror -o probe "$here/probe.c"
attempt probe "$run" -- ./probe
show probe.out
if [ "$rc" = 0 ] && grep -q '^probe: [0-9]* checks, 0 failed$' probe.out && ! grep -q '^FAIL' probe.out; then
  ok "probe passes in the VM (${took}s)"
else
  not_ok "probe exited $rc (${took}s)"
  show probe.err
fi

# ------------------------------------------------------- exit status, streams
seq 1 20000 >expected-seq
attempt status "$run" -- /bin/sh -c 'seq 1 20000; echo "to stderr" >&2; exit 3'
if [ "$rc" = 3 ]; then ok "run.sh -- /bin/sh -c '... exit 3' exits 3 (${took}s)"; else not_ok "exit 3 came back as $rc"; show status.err; fi
if cmp -s status.out expected-seq; then ok "20000 lines of stdout arrive intact"; else not_ok "stdout differs from seq 1 20000"; fi
if grep -qx 'to stderr' status.err; then ok "stderr comes back on stderr"; else not_ok "stderr lost"; show status.err; fi

if [ "$quick" = 0 ]; then
  # ------------------------------------------- dynamic C++, arguments, --include
  mkdir -p data
  echo '{"graph": "x"}' >data/input.json
  cat >hello.cpp <<'EOF'
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) std::cout << '[' << argv[i] << "]\n";
  const char* vm = std::getenv("COSCHED_DRM_VM");
  const char* extra = std::getenv("SELFTEST_VAR");
  std::cout << "COSCHED_DRM_VM=" << (vm ? vm : "-") << " SELFTEST_VAR=" << (extra ? extra : "-") << '\n';
  std::ifstream in("data/input.json");
  std::string line;
  std::getline(in, line);
  std::cout << "data/input.json: " << line << '\n';
  std::cerr << "hello on stderr\n";
  return 5;
}
EOF
  c++ -std=c++20 -O1 -o hello hello.cpp
  # shellcheck disable=SC2016 # a literal $HOME must reach the guest unexpanded
  printf '%s\n' '[a b]' "[it's]" '[]' '[two' 'lines]' '[$HOME *]' \
    'COSCHED_DRM_VM=1 SELFTEST_VAR=x  y' 'data/input.json: {"graph": "x"}' >expected-hello
  # shellcheck disable=SC2016
  attempt hello "$run" --include data --env 'SELFTEST_VAR=x  y' -- ./hello 'a b' "it's" '' $'two\nlines' '$HOME *'
  if [ "$rc" = 5 ] && cmp -s hello.out expected-hello && grep -qx 'hello on stderr' hello.err; then
    ok "dynamic C++ program: arguments, --env, --include, exit 5 (${took}s)"
  else
    not_ok "dynamic C++ program exited $rc"
    diff expected-hello hello.out | show || true
    show hello.err
  fi

  # ------------------------------------------------------------- kernel problems
  attempt warning "$run" -- sh -c 'echo "<4>WARNING: drm-vm selftest" >/dev/kmsg; echo 512 >/proc/sys/kernel/tainted'
  if [ "$rc" = 122 ] && grep -q 'WARNING: drm-vm selftest' warning.err && grep -q 'tainted' warning.err; then
    ok "a WARNING on the console and a taint fail the run with 122 (${took}s)"
  else
    not_ok "kernel warning gave $rc"
    show warning.err
  fi

  # ------------------------------------------------------- timeout and dead VM
  attempt timeout env COSCHED_DRM_VM_TIMEOUT=30 "$run" -- sleep 600
  if [ "$rc" = 124 ]; then ok "COSCHED_DRM_VM_TIMEOUT=30 with sleep 600 gives 124 (${took}s)"; else not_ok "timeout gave $rc"; show timeout.err; fi

  attempt panic "$run" -- sh -c 'echo c >/proc/sysrq-trigger'
  if [ "$rc" = 125 ] && grep -q 'Kernel panic' panic.err; then
    ok "a kernel panic gives 125 and is reported (${took}s)"
  else
    not_ok "panic gave $rc"
    show panic.err
  fi
fi

# --------------------------------------------------------------- setup errors
for bad in "-- ./no-such-program" "--include no-such-path -- true" "--include /proc -- true" "--bogus -- true" ""; do
  # shellcheck disable=SC2086 # word splitting wanted
  attempt setup "$run" $bad
  if [ "$rc" = 126 ]; then ok "run.sh $bad: 126"; else not_ok "run.sh $bad gave $rc"; show setup.err; fi
done

echo "selftest: $passed passed, $failed failed"
[ "$failed" = 0 ]
