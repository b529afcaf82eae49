// A picture of a cosched-submit run (`--svg FILE`): a self-contained SVG timeline
// with one lane per ring and per entity, jobs coloured by outcome, and markers.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <string_view>

#include "submit/graph.hpp"
#include "submit/runner.hpp"

namespace cosched::submit {

/// How a job ended, as the picture colours it.
enum class outcome_class {
  ok,         ///< no error
  error,      ///< failed by itself: its command's error (EIO, ...) or `broken`
  caused,     ///< failed because of another job (cause set: a failed dependency, a ban, a ring close)
  killed,     ///< its entity was killed before it ran
  cancelled,  ///< cancelled with no other job to blame
  timed_out,  ///< its command was the guilty one at a timeout
  shutdown,   ///< undecided when the run shut the scheduler down
};
inline constexpr std::size_t outcome_class_count = 7;

outcome_class classify(const job_outcome& job) noexcept;
/// The CSS class name used in the SVG ("ok", "error", "caused", "killed",
/// "cancelled", "timed_out", "shutdown").
std::string_view outcome_class_name(outcome_class c) noexcept;
/// The fill colour ("#rrggbb").
std::string_view outcome_colour(outcome_class c) noexcept;

struct svg_options {
  /// Up to this many jobs (and at most max_detailed_lanes lanes), every job and
  /// run is drawn; beyond it the picture is summarised per pixel column.
  std::size_t detail_limit = 2000;
  std::size_t max_detailed_lanes = 64;
  /// Summarised mode: at most this many ring lanes and entity lanes; the last
  /// one of each is shared by the remaining rings or entities.
  std::size_t max_summary_ring_lanes = 16;
  std::size_t max_summary_entity_lanes = 32;
  int width = 1200;  ///< pixels
};

/// Writes the SVG timeline of `outcome` (which must come from running `g`).
///
/// Layout: a title with the graph's summary; a time axis in milliseconds; one
/// lane per ring, each run a bar from when it began executing to when it
/// stopped (stats.hpp, run_span), coloured by its job's outcome, runs cut by a
/// reset and replayed later hatched, replays outlined, runs cut short dashed,
/// a dashed line at each reset; one lane per entity, each job one bar from its
/// run to its finished fence (a narrow half-height bar at its finish for a job
/// that never ran), coloured by outcome, with an X at each failure that
/// originated there; markers for kills (the graph's actions), timeouts and the
/// "nothing left to do" shutdown; a legend.
///
/// Above `options.detail_limit` jobs it is summarised: time is bucketed into
/// pixel columns; a ring lane shows its utilisation per column stacked by
/// outcome, an entity lane the jobs finished per column stacked by outcome (one
/// scale for all entity lanes), and each lane's label gives its counts. There
/// are no per-job elements, so the file stays small (100 000 jobs: well under 2 MB).
///
/// The output is deterministic (no clock, locale or address in it), uses no
/// external fonts, scripts or images, and escapes every name for XML.
/// Thread-safe (no shared state). Throws std::invalid_argument when `outcome`
/// does not fit `g` (another number of jobs, a run of no job).
void write_svg(std::ostream& out, const graph& g, const run_outcome& outcome,
               const svg_options& options = {});

}  // namespace cosched::submit
