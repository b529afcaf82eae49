// cosched-selection-bench: what selection costs as the number of competing
// entities grows. N entities with one job each share one ring (credit limit 1)
// on the virtual clock, so every job is selected once among the entities still
// waiting; the figure is wall time per job from the first push to the last
// retirement (the ring itself takes no wall time in virtual time). A cost per
// selection that grew with the number of entities would show as a per-job time
// growing with N.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <asio/io_context.hpp>

#include "cosched/cosched.hpp"
#include "cosched/testing.hpp"

namespace {

using cosched::sim::command;

cosched::job<command> body(command c) { co_return c; }

// One run: wall nanoseconds per job.
double run_once(std::size_t entities, cosched::scheduling_policy policy) {
  asio::io_context io;
  cosched::sim::virtual_clock clock;
  cosched::sim::virtual_ring ring(clock);
  cosched::sim::virtual_timers timers(clock);
  cosched::scheduler<command> sched(io.get_executor(), ring,
                                    {.credit_limit = 1, .timers = &timers, .policy = policy});
  std::vector<cosched::entity<command>> handles;
  handles.reserve(entities);
  std::vector<cosched::fence> done;
  done.reserve(entities);
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < entities; ++i) {
    handles.push_back(sched.make_entity({.prio = cosched::priority::normal, .name = {}}));
    done.push_back(handles.back().push(body(command{1, {}, i})).finished);
  }
  clock.run(io);
  const auto end = std::chrono::steady_clock::now();
  for (auto& f : done) {
    if (!f.signalled() || f.error()) {
      std::fprintf(stderr, "cosched-selection-bench: a job did not succeed\n");
      // The program's only thread; exit() does not unwind (the scheduler is not
      // shut down: destroying it would abort).
      std::exit(1);  // NOLINT(concurrency-mt-unsafe): see above
    }
  }
  handles.clear();
  auto shut = sched.shutdown(std::chrono::nanoseconds(0));
  clock.run(io);
  if (!shut.signalled()) {
    std::fprintf(stderr, "cosched-selection-bench: shutdown did not complete\n");
    std::exit(1);  // NOLINT(concurrency-mt-unsafe): as above
  }
  return double(std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count()) / double(entities);
}

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: cosched-selection-bench [--reps N] [--policy fifo|rr|fair|deadline] [ENTITIES...]\n"
               "  N entities with one job each on one shared ring (credit limit 1), virtual time;\n"
               "  prints the median wall time per job over N repetitions (default 3) for each\n"
               "  entity count (default 1000 10000 100000)\n");
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 3;
  cosched::scheduling_policy policy = cosched::scheduling_policy::fifo;
  std::string policy_name = "fifo";
  std::vector<std::size_t> counts;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(stdout);
      return 0;
    }
    if ((arg == "--reps" || arg == "--policy") && i + 1 >= argc) {
      usage(stderr);
      return 2;
    }
    if (arg == "--reps") {
      reps = std::atoi(argv[++i]);
      if (reps < 1) {
        usage(stderr);
        return 2;
      }
    } else if (arg == "--policy") {
      policy_name = argv[++i];
      if (policy_name == "fifo")
        policy = cosched::scheduling_policy::fifo;
      else if (policy_name == "rr")
        policy = cosched::scheduling_policy::rr;
      else if (policy_name == "fair")
        policy = cosched::scheduling_policy::fair;
      else if (policy_name == "deadline")
        policy = cosched::scheduling_policy::deadline;
      else {
        usage(stderr);
        return 2;
      }
    } else {
      const long long n = std::atoll(arg.c_str());
      if (n < 1) {
        usage(stderr);
        return 2;
      }
      counts.push_back(static_cast<std::size_t>(n));
    }
  }
  if (counts.empty()) counts = {1000, 10000, 100000};
#ifndef NDEBUG
  std::printf("WARNING: built without NDEBUG: this is not a release build\n");
#endif
  std::printf("entities (one job each, one ring, policy %s): wall time per job, median of %d\n",
              policy_name.c_str(), reps);
  for (const std::size_t n : counts) {
    std::vector<double> samples;
    samples.reserve(static_cast<std::size_t>(reps));
    for (int r = 0; r < reps; ++r) samples.push_back(run_once(n, policy));
    std::sort(samples.begin(), samples.end());
    const double median = samples[samples.size() / 2];
    std::printf("  %7zu entities: %10.0f ns per job (%.3f s in all)\n", n, median, median * double(n) / 1e9);
    std::fflush(stdout);
  }
  return 0;
}
