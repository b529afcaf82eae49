// Runs a job graph through the scheduler on a simulated GPU and collects each
// job's outcome; writes the results format of DESIGN.md.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "submit/graph.hpp"

namespace cosched::submit {

/// The outcome of one job, as the results format reports it.
struct job_outcome {
  std::string error;                   // "" for success, else a stable error name
  std::optional<std::size_t> cause;    // index of the job where a failure originated
  std::uint32_t attempts = 0;
  std::uint64_t queued_us = 0;
  std::optional<std::uint64_t> scheduled_us;
  std::optional<std::uint64_t> finished_us;  // empty only if the run failed internally
};

struct run_outcome {
  std::vector<job_outcome> jobs;  // in the graph's job order
  std::uint64_t end_us = 0;       // when the last fence signalled
  bool shut_down_early = false;   // "nothing left to do" ended the run
};

/// Throws input_error (naming the file and field) for graph features this build
/// does not run yet.
void check_supported(const graph& g, std::string_view file_name);

/// Runs `g` on the sim backend in virtual time. Deterministic: the same graph
/// always gives the same outcome.
run_outcome run_virtual(const graph& g);

/// One JSON object per job, in job order, then the summary object.
void write_results(std::ostream& out, const graph& g, const run_outcome& outcome,
                   std::string_view backend, std::string_view clock);

/// A table for people.
void write_table(std::ostream& out, const graph& g, const run_outcome& outcome);

}  // namespace cosched::submit
