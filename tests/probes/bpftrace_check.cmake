# Runs PROGRAM (probe_program.cpp: jobs whose steps it knows) under bpftrace,
# counting every cosched probe by its arguments, and fails unless the counts
# are exactly the program's. Reports "SKIPPED: <why>" where bpftrace cannot
# attach: not root, no bpftrace, or a kernel without uprobes.
execute_process(COMMAND id -u OUTPUT_VARIABLE uid OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT uid STREQUAL "0")
  message("SKIPPED: attaching to USDT probes needs root (uid ${uid})")
  return()
endif()
find_program(BPFTRACE bpftrace)
if(NOT BPFTRACE)
  message("SKIPPED: no bpftrace (Debian: bpftrace)")
  return()
endif()
if(NOT EXISTS /sys/bus/event_source/devices/uprobe)
  message("SKIPPED: the kernel has no uprobe events (/sys/bus/event_source/devices/uprobe)")
  return()
endif()

# Arguments as src/probes.hpp's sites pass them (the README's table). Entity
# contexts differ from run to run: the counts key on names, seqnos, rings,
# attempts and error values.
set(p "usdt:${PROGRAM}:cosched")
set(script "
${p}:job_push { @pushes[str(arg2)] = count(); @last_seqno[str(arg2)] = max(arg1); }
${p}:job_wait_dep { @waits[arg1, arg3] = count(); }
${p}:job_run { @runs[arg2, arg3] = count(); }
${p}:job_hw_done { @hw_done[arg2, arg3] = count(); }
${p}:job_signal { @signals[arg2] = count(); }
${p}:job_timeout { @timeouts[arg1, arg2, arg3] = count(); }
${p}:entity_ban { @bans[arg1, arg2] = count(); }
${p}:ring_reset { @resets[arg0, arg1, arg2, arg3] = count(); }
")
execute_process(COMMAND ${BPFTRACE} -e "${script}" -c ${PROGRAM}
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc TIMEOUT 100)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "bpftrace failed (${rc}):\n${err}\n${out}")
endif()

# render: jobs 1-3, 1 hangs (timed_out = 1), 2 and 3 cancelled by the ban
# (cancelled = 2). compute: jobs 1-5, 2 waits for 1; 1 completes, 2-5 are
# replayed (attempt 2) after the reset and complete.
set(expected
  "@pushes[render]: 3"
  "@pushes[compute]: 5"
  "@last_seqno[render]: 3"
  "@last_seqno[compute]: 5"
  "@waits[2, 1]: 1"
  "@runs[0, 1]: 8"
  "@runs[0, 2]: 4"
  "@hw_done[0, 0]: 5"
  "@signals[0]: 5"
  "@signals[1]: 1"
  "@signals[2]: 2"
  "@timeouts[1, 0, 1]: 1"
  "@bans[1, 0]: 1"
  "@resets[0, 4, 2, 1]: 1")
set(missing "")
foreach(line IN LISTS expected)
  string(FIND "${out}" "${line}\n" at)
  if(at EQUAL -1)
    string(APPEND missing "\n  ${line}")
  endif()
endforeach()
# No other count: every map line is one of the expected ones.
string(REGEX MATCHALL "@[a-z_]+\\[[^\n]*\n" seen "${out}")
list(LENGTH seen seen_count)
list(LENGTH expected expected_count)
if(missing OR NOT seen_count EQUAL expected_count)
  message(FATAL_ERROR "bpftrace's counts are not the program's; missing:${missing}\nbpftrace printed:\n${out}")
endif()
message(STATUS "every probe fired with the program's arguments:\n${out}")
