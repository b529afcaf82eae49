# Sourced by the guest scripts (busybox sh): one "ci: " line per check, a
# summary, and the helpers they share. Needs $out (a scratch directory).
# shellcheck shell=sh disable=SC2317 # the check functions are called through check()
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
  summary="$summary
$(cat "$out/tail")"
  return "$rc"
}

# Job, entity, error, cause, attempts of each result line.
outcomes() { sed -n 's/, "queued_us".*//p' "$1"; }

# Prints the summary and exits 0 if every check passed, 1 otherwise.
finish() {
  echo "$summary"
  if [ "$failed" = 0 ]; then echo "ci: all passed"; else echo "ci: FAILED"; fi
  rm -rf "$out"
  exit $failed
}
