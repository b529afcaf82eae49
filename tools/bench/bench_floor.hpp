// The coroutine floor of cosched-bench's dag group: the smallest scheduler that
// runs the group's graphs as coroutines, so that every run shows how far
// cosched is from what a job costs at the least, not only from oneTBB.
//
// What it keeps of a scheduler: one coroutine per job, its frame from a free
// list (as cosched's frames come from its pools); a FIFO ready queue of
// coroutine handles; dependencies as per-job completion records that the
// waiting coroutine awaits (a flag and a list of the coroutines waiting on it,
// pushed onto the ready queue when the job completes). What it leaves out is
// what makes cosched a scheduler of GPU work: entities and their policy,
// credits, rings and fences shared across threads (so nothing is atomic here),
// errors, cancellation, scopes.
//
// It is timed as cosched is: from the first job created to the last one
// finished (build: creating each job's coroutine and queueing it; exec:
// draining the ready queue, each job resuming once its dependencies have
// completed and its frame freed when it finishes). The ready queue and the
// completion records are allocated before the clock starts, as cosched's
// scheduler and its array of finished fences are.
#pragma once

#include <cstdint>
#include <vector>

#include "bench_graph.hpp"

namespace cosched_bench::dag {

/// Runs the graph `s` of `size` on the calling thread through the floor and
/// returns its timing; job i writes its output to `val[i]` (`val` holds
/// `size.jobs` values). Exits the program with a message if a job did not run
/// or a completion was not reached. Not thread-safe: the frame free list is
/// the program's one, for the calling thread only.
timing run_floor(shape s, graph_size size, std::vector<std::uint64_t>& val);

}  // namespace cosched_bench::dag
