// cosched's live tracepoints: USDT probes (provider `cosched`) at the steps of a
// job's path and of recovery, for bpftrace, perf or SystemTap to attach to.
//
// A probe site is one `nop` and a note in the binary's .note.stapsdt section
// (sys/sdt.h); the tracer rewrites the nop into a breakpoint only while it is
// attached, so a probe costs nothing else when nobody listens. The arguments
// are read by the tracer from registers or the stack at the site: they must be
// values the code has at hand (fields, not computations), integers, or the one
// `const char*` (an entity's name, at push). The README lists every probe and
// its arguments; tests/probes checks that the binary's notes list them all.
//
// Built with COSCHED_PROBES (CMake option COSCHED_PROBES, on when sys/sdt.h is
// found); without it every probe expands to nothing. Private to the library.
#pragma once

#if defined(COSCHED_PROBES) && COSCHED_PROBES
#include <sys/sdt.h>

#define COSCHED_PROBE1(name, a) DTRACE_PROBE1(cosched, name, a)
#define COSCHED_PROBE2(name, a, b) DTRACE_PROBE2(cosched, name, a, b)
#define COSCHED_PROBE3(name, a, b, c) DTRACE_PROBE3(cosched, name, a, b, c)
#define COSCHED_PROBE4(name, a, b, c, d) DTRACE_PROBE4(cosched, name, a, b, c, d)
#else
// The arguments are not evaluated (as with the probes built in, whose
// arguments are only read by an attached tracer, never by the program).
#define COSCHED_PROBE1(name, a) static_cast<void>(0)
#define COSCHED_PROBE2(name, a, b) static_cast<void>(0)
#define COSCHED_PROBE3(name, a, b, c) static_cast<void>(0)
#define COSCHED_PROBE4(name, a, b, c, d) static_cast<void>(0)
#endif
