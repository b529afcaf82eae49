// Group "dag": throughput of 100k tiny jobs, submit + run + retire, on one
// thread: cosched (the whole scheduler: entity push, preparation, selection,
// ring.run, retirement) against oneTBB flow_graph and against the coroutine
// floor (bench_floor.hpp: a coroutine per job and little else) on the same
// graphs (bench_graph.hpp). The same graphs at 2000 jobs, small enough to stay
// in the caches, are measured too (context, no target): they separate per-job
// work from memory traffic.
//
// All three are timed from the first job created to the last job finished
// (build + exec); none is timed for tearing down what the caller still holds
// afterwards (cosched: the finished-fence handles; TBB: the graph's nodes; the
// floor: its completion records). Nothing runs during build in any: cosched's
// jobs run only once the io_context runs, TBB's only once the start node is
// fired, the floor's only once its ready queue is drained.
#pragma once

#include <cstdio>

#include "bench_util.hpp"

namespace cosched_bench::dag {

/// Runs the group and sets indep_jobs_per_s, dag_jobs_per_s, the same with
/// scheduler_options::single_producer (sp_*), their oneTBB (tbb_*) and
/// coroutine floor (floor_*) counterparts, and the same eight figures in the
/// caches (cached_*).
void run_group(const config& cfg, results& res, std::FILE* out);

}  // namespace cosched_bench::dag
