// cosched-bench group "dag": 100k tiny jobs, submit + run + retire, through cosched,
// oneTBB flow_graph and the coroutine floor on one thread. See bench_dag.hpp.
#include "bench_dag.hpp"

#include <tbb/flow_graph.h>
#include <tbb/global_control.h>

#include <deque>
#include <numeric>
#include <vector>

#include <asio/io_context.hpp>

#include "bench_floor.hpp"
#include "bench_graph.hpp"
#include "bench_ring.hpp"
#include "bench_util.hpp"
#include "cosched/entity.hpp"
#include "cosched/fence.hpp"
#include "cosched/job.hpp"
#include "cosched/scheduler.hpp"

namespace cosched_bench::dag {
namespace {

// ------------------------------------------------------------------ cosched

cosched::job<command> free_job(shape s, std::uint32_t width, std::uint32_t i, std::uint64_t* val) {
  job_work(s, width, i, val);
  co_return command{i};
}

cosched::job<command> dependent_job(cosched::fence a, cosched::fence b, cosched::fence c, cosched::fence d,
                                    std::uint32_t width, std::uint32_t i, std::uint64_t* val) {
  co_await a;
  co_await b;
  co_await c;
  co_await d;
  job_work(shape::dag, width, i, val);
  co_return command{i};
}

// `single`: scheduler_options::single_producer (the jobs are pushed on the
// thread that then runs the io_context).
timing run_cosched(shape s, graph_size size, std::vector<std::uint64_t>& val, bool single) {
  asio::io_context ctx(1);
  finished_ring ring;
  cosched::scheduler<command> sched(ctx.get_executor(), ring,
                                    {.credit_limit = 1u << 20, .single_producer = single});
  auto queue = sched.make_entity({.name = "bench"});
  std::vector<cosched::fence> finished(size.jobs);
  std::uint64_t* v = val.data();

  const std::uint64_t f0 = minor_faults();
  const std::uint64_t t0 = now_ns();
  for (std::uint32_t i = 0; i < size.jobs; ++i) {
    std::uint32_t d[4];
    if (deps_of(s, size.width, i, d) == 0) {
      finished[i] = queue.push(free_job(s, size.width, i, v)).finished;
    } else {
      finished[i] = queue
                        .push(dependent_job(finished[d[0]], finished[d[1]], finished[d[2]], finished[d[3]],
                                            size.width, i, v))
                        .finished;
    }
  }
  const std::uint64_t t1 = now_ns();
  // The finished fences of one entity signal in push order: the last one
  // signalled means every job has been run and retired.
  while (!finished.back().signalled()) {
    if (ctx.run_one() == 0) break;
  }
  const std::uint64_t t2 = now_ns();
  const std::uint64_t f1 = minor_faults();

  for (const auto& f : finished) {
    if (!f.signalled() || f.error()) die("dag: a cosched job did not finish successfully");
  }
  finished.clear();
  auto down = sched.shutdown();
  ctx.restart();
  while (!down.signalled()) {
    if (ctx.run_one() == 0) die("dag: scheduler shutdown did not complete");
  }
  return {double(t1 - t0), double(t2 - t1), double(f1 - f0)};
}

// ------------------------------------------------------------------ oneTBB flow graph

timing run_tbb(shape s, graph_size size, std::vector<std::uint64_t>& val) {
  using namespace tbb::flow;
  graph g;
  std::uint64_t* v = val.data();
  const std::uint64_t f0 = minor_faults();
  const std::uint64_t t0 = now_ns();
  broadcast_node<continue_msg> start(g);
  std::deque<continue_node<continue_msg>> nodes;
  for (std::uint32_t i = 0; i < size.jobs; ++i) {
    nodes.emplace_back(g, [s, width = size.width, i, v](const continue_msg&) { job_work(s, width, i, v); });
    std::uint32_t d[4];
    const int n = deps_of(s, size.width, i, d);
    if (n == 0) make_edge(start, nodes.back());
    for (int k = 0; k < n; ++k) make_edge(nodes[d[k]], nodes.back());
  }
  const std::uint64_t t1 = now_ns();
  start.try_put(continue_msg());
  g.wait_for_all();
  const std::uint64_t t2 = now_ns();
  return {double(t1 - t0), double(t2 - t1), double(minor_faults() - f0)};
}

// ------------------------------------------------------------------ the group

struct figures {
  std::vector<double> build, exec, total, faults;
  void add(const timing& t) {
    build.push_back(t.build_ns);
    exec.push_back(t.exec_ns);
    total.push_back(t.total());
    faults.push_back(t.faults);
  }
};

std::uint64_t checksum(const std::vector<std::uint64_t>& val) {
  return std::accumulate(val.begin(), val.end(), std::uint64_t{0},
                         [](std::uint64_t a, std::uint64_t b) { return a * 1099511628211ull ^ b; });
}

void print_row(std::FILE* out, const char* shape_name, const char* impl, std::uint32_t jobs,
               const figures& f) {
  const spread b = summarize(f.build), e = summarize(f.exec), t = summarize(f.total),
               pf = summarize(f.faults);
  std::fprintf(out,
               "  %-6s %-26s %6.2f M jobs/s %6.1f ns/job (build %5.1f + exec %5.1f ms) [%.2f..%.2f M/s] "
               "%.0f faults\n",
               shape_name, impl, jobs / t.median * 1e3, t.median / jobs, b.median / 1e6, e.median / 1e6,
               jobs / t.hi * 1e3, jobs / t.lo * 1e3, pf.median);
}

// Both shapes at one size, cosched, oneTBB and the floor alternating; `rounds`
// includes `untimed` first rounds (the first pays for growing the heap).
struct comparison {
  figures cs[2], sp[2], tb[2], fl[2];
};
comparison compare(graph_size size, int rounds, int untimed) {
  std::vector<std::uint64_t> val(size.jobs), ref(size.jobs);
  comparison c;
  const shape shapes[2] = {shape::indep, shape::dag};
  for (int round = 0; round < rounds; ++round) {
    // Peers alternate within a round so that drifting load on the
    // machine affects both alike.
    for (int k = 0; k < 2; ++k) {
      std::fill(val.begin(), val.end(), 0);
      const timing mine = run_cosched(shapes[k], size, val, false);
      const std::uint64_t sum = checksum(val);
      std::fill(val.begin(), val.end(), 0);
      const timing single = run_cosched(shapes[k], size, val, true);
      if (sum != checksum(val)) die("dag: cosched with one producer computed a different result");
      std::fill(ref.begin(), ref.end(), 0);
      const timing theirs = run_tbb(shapes[k], size, ref);
      if (sum != checksum(ref)) die("dag: cosched and oneTBB computed different results");
      std::fill(ref.begin(), ref.end(), 0);
      const timing least = run_floor(shapes[k], size, ref);
      if (sum != checksum(ref)) die("dag: cosched and the coroutine floor computed different results");
      if (round >= untimed) {
        c.cs[k].add(mine);
        c.sp[k].add(single);
        c.tb[k].add(theirs);
        c.fl[k].add(least);
      }
    }
  }
  return c;
}

double jobs_per_s(graph_size size, const figures& f) { return size.jobs / summarize(f.total).median * 1e9; }

}  // namespace

void run_group(const config& cfg, results& res, std::FILE* out) {
  // One thread for TBB too: the comparison is per-thread throughput, and the
  // calling thread runs the graph when no worker is allowed.
  tbb::global_control one_thread(tbb::global_control::max_allowed_parallelism, 1);
  std::fprintf(out,
               "\n[dag] %u tiny jobs, one thread, submit+run+retire (build+exec); %d rep(s), medians "
               "[min..max]\n"
               "      indep: no dependencies; dag4: %u layers x %u, 4 deps each on the previous layer\n",
               full_size.jobs, cfg.reps, full_size.jobs / full_size.width, full_size.width);
  std::fflush(out);
  const char* names[2] = {"indep", "dag4"};
  const comparison full = compare(full_size, cfg.reps + (cfg.quick ? 0 : 1), cfg.quick ? 0 : 1);
  for (int k = 0; k < 2; ++k) {
    print_row(out, names[k], "cosched (1 sched thread)", full_size.jobs, full.cs[k]);
    print_row(out, names[k], "cosched, single_producer", full_size.jobs, full.sp[k]);
    print_row(out, names[k], "oneTBB flow_graph, 1 thr", full_size.jobs, full.tb[k]);
    print_row(out, names[k], "coroutine floor, 1 thr", full_size.jobs, full.fl[k]);
  }
  res.set("indep_jobs_per_s", jobs_per_s(full_size, full.cs[0]));
  res.set("dag_jobs_per_s", jobs_per_s(full_size, full.cs[1]));
  res.set("sp_indep_jobs_per_s", jobs_per_s(full_size, full.sp[0]));
  res.set("sp_dag_jobs_per_s", jobs_per_s(full_size, full.sp[1]));
  res.set("tbb_indep_jobs_per_s", jobs_per_s(full_size, full.tb[0]));
  res.set("tbb_dag_jobs_per_s", jobs_per_s(full_size, full.tb[1]));
  res.set("floor_indep_jobs_per_s", jobs_per_s(full_size, full.fl[0]));
  res.set("floor_dag_jobs_per_s", jobs_per_s(full_size, full.fl[1]));

  // In the caches: many short rounds (a round is well under a millisecond).
  const int small_rounds = cfg.quick ? 5 : 40 * cfg.reps;
  std::fprintf(out, "      the same at %u jobs (%u layers), in the caches; %d rounds (context, no target):\n",
               cached_size.jobs, cached_size.jobs / cached_size.width, small_rounds);
  const comparison cached = compare(cached_size, small_rounds + (cfg.quick ? 0 : 5), cfg.quick ? 0 : 5);
  for (int k = 0; k < 2; ++k) {
    print_row(out, names[k], "cosched (1 sched thread)", cached_size.jobs, cached.cs[k]);
    print_row(out, names[k], "cosched, single_producer", cached_size.jobs, cached.sp[k]);
    print_row(out, names[k], "oneTBB flow_graph, 1 thr", cached_size.jobs, cached.tb[k]);
    print_row(out, names[k], "coroutine floor, 1 thr", cached_size.jobs, cached.fl[k]);
  }
  std::fprintf(
      out,
      "      in the caches, cosched / oneTBB: indep %.2fx, dag4 %.2fx; cosched / floor: indep %.2fx, "
      "dag4 %.2fx\n",
      jobs_per_s(cached_size, cached.cs[0]) / jobs_per_s(cached_size, cached.tb[0]),
      jobs_per_s(cached_size, cached.cs[1]) / jobs_per_s(cached_size, cached.tb[1]),
      jobs_per_s(cached_size, cached.cs[0]) / jobs_per_s(cached_size, cached.fl[0]),
      jobs_per_s(cached_size, cached.cs[1]) / jobs_per_s(cached_size, cached.fl[1]));
  std::fflush(out);
  res.set("cached_indep_jobs_per_s", jobs_per_s(cached_size, cached.cs[0]));
  res.set("cached_dag_jobs_per_s", jobs_per_s(cached_size, cached.cs[1]));
  res.set("cached_sp_indep_jobs_per_s", jobs_per_s(cached_size, cached.sp[0]));
  res.set("cached_sp_dag_jobs_per_s", jobs_per_s(cached_size, cached.sp[1]));
  res.set("cached_tbb_indep_jobs_per_s", jobs_per_s(cached_size, cached.tb[0]));
  res.set("cached_tbb_dag_jobs_per_s", jobs_per_s(cached_size, cached.tb[1]));
  res.set("cached_floor_indep_jobs_per_s", jobs_per_s(cached_size, cached.fl[0]));
  res.set("cached_floor_dag_jobs_per_s", jobs_per_s(cached_size, cached.fl[1]));
}

}  // namespace cosched_bench::dag
