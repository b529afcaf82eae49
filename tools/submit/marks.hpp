// What a picture or a trace of a cosched-submit run marks besides the runs: the ring
// resets and the timeouts, derived once from the run's outcome for both writers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "submit/graph.hpp"
#include "submit/runner.hpp"
#include "submit/stats.hpp"

namespace cosched::submit {

/// A reset of a ring: the moment a run cut short was run again (a replay's run_at).
struct reset_mark {
  std::size_t ring = 0;
  std::uint64_t at_us = 0;
  friend bool operator==(const reset_mark&, const reset_mark&) = default;
};

/// A timeout: the guilty job, when it failed `timed_out`, and the ring of its last
/// run (none if it never ran).
struct timeout_mark {
  std::size_t job = 0;
  std::uint64_t at_us = 0;
  std::optional<std::size_t> ring;
};

struct run_marks {
  std::vector<reset_mark> resets;      ///< by ring, then time; each (ring, time) once
  std::vector<timeout_mark> timeouts;  ///< in the graph's job order
};

/// The marks of `outcome` (which must come from running `g`); `spans` are
/// run_spans(g, outcome). A timeout's time is its job's finished_us (the run's end
/// if the fence never signalled). Pure function.
run_marks marks_of(const graph& g, const run_outcome& outcome, std::span<const run_span> spans);

}  // namespace cosched::submit
