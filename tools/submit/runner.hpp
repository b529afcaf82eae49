// Runs a job graph through the scheduler on a simulated GPU, in virtual or real
// time, and collects each job's outcome; writes the results format of DESIGN.md.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "cosched/sim/sim_ring.hpp"
#include "submit/graph.hpp"

namespace cosched::submit {

/// The outcome of one job, as the results format reports it.
struct job_outcome {
  std::string error;                 // "" for success, else a stable error name
  std::optional<std::size_t> cause;  // index of the job where a failure originated
  std::uint32_t attempts = 0;
  std::uint64_t queued_us = 0;
  std::optional<std::uint64_t> scheduled_us;
  std::optional<std::uint64_t> finished_us;
};

/// One run of a command on one of the rings (tag = job index).
struct ring_run {
  std::size_t ring = 0;
  sim::run_record record;
};

struct run_outcome {
  std::vector<job_outcome> jobs;        // in the graph's job order
  std::vector<ring_run> runs;           // every run of a command, ring by ring, in run order
  std::size_t rings = 1;
  std::uint64_t end_us = 0;             // when the last fence signalled
  bool shut_down_early = false;         // "nothing left to do" ended the run
};

enum class clock_kind { virtual_time, real_time };

struct run_options {
  clock_kind clock = clock_kind::virtual_time;
  /// Called about every 200 ms of a real-time run with (finished jobs, failed jobs).
  std::function<void(std::size_t, std::size_t)> progress;
};

/// Throws input_error (naming the file and field) for graph features this build
/// does not run yet.
void check_supported(const graph& g, std::string_view file_name);

/// Runs `g` on the sim backend. In virtual time it is deterministic: the same
/// graph always gives the same outcome. In real time a device thread executes
/// the ring and the reactor polls its eventfd; a run whose ring is stalled
/// (idle or hung) with jobs unfinished and nothing else pending for 100 ms shuts
/// the scheduler down ("nothing left to do").
run_outcome run_graph(const graph& g, const run_options& options = {});
inline run_outcome run_virtual(const graph& g) { return run_graph(g, {}); }

/// One JSON object per job, in job order, then the summary object.
void write_results(std::ostream& out, const graph& g, const run_outcome& outcome,
                   std::string_view backend, std::string_view clock);

/// A table for people, ending with the summary line.
void write_table(std::ostream& out, const graph& g, const run_outcome& outcome);
/// One line: how many jobs succeeded and failed, and when the run ended.
void write_summary(std::ostream& out, const graph& g, const run_outcome& outcome);

/// Chrome trace JSON (opens in Perfetto): one track per entity (each job from
/// push to finished) and one per ring (each run from start to end).
void write_trace(std::ostream& out, const graph& g, const run_outcome& outcome);

}  // namespace cosched::submit
