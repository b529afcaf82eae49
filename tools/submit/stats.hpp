// Summary statistics of a cosched-submit run: per entity (jobs done and failed,
// queued-to-finished latency, share of ring time) and for the run (fairness
// between entities of one priority, deadline misses, total time).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cosched/priority.hpp"
#include "submit/graph.hpp"
#include "submit/runner.hpp"

namespace cosched::submit {

/// `value` with exactly `decimals` places ("5.0"), locale-free: numbers for
/// people in the statistics and the picture.
std::string fixed_places(double value, int decimals);

/// The most characters a cell of the terminal table shows of a job id or an entity
/// name (the results keep the whole name).
inline constexpr std::size_t max_cell_chars = 40;

/// `text` for a cell of the terminal table: printable() (no control character, no
/// invalid UTF-8), cut after `max_chars` characters and then marked with "...".
std::string table_cell(std::string_view text, std::size_t max_chars = max_cell_chars);

/// How long one run of a command (one entry of run_outcome::runs) actually
/// occupied its ring, derived from its sim::run_record and its job's outcome.
///
/// A run is cut short by what ended it early: the reset that replayed it (the
/// run_at of the same job's next run), else its job's finished_us (a timeout,
/// the ban or ring close that cancelled it, shutdown), else the run's end_us.
/// A ring executes one command at a time, so on each ring, in run order:
///   begin = max(record.run_at, record.start, stop of the previous run on the ring that occupied it)
///   stop  = record.finishes ? min(record.end, cut) : cut      (never below begin)
/// and the run occupied the ring for stop - begin. A hang counts until the
/// timeout, reset or shutdown that ended it; a command stuck behind a hang,
/// or queued behind the reset that dropped it, occupied nothing.
struct run_span {
  std::uint64_t begin = 0;
  std::uint64_t stop = 0;
  std::uint32_t attempt = 1;  ///< 1 for the job's first run, 2 for its first replay, ...
  bool completed = false;     ///< ran to its own end (record.finishes and end <= cut)
  bool replayed = false;      ///< cut by a reset, and the job was run again later
  std::uint64_t busy_us() const noexcept { return stop - begin; }
  /// Whether the run is drawn on its ring (the picture's bars, the trace's slices):
  /// it occupied the ring for some time, or ran to its own end (in no time).
  bool occupied_ring() const noexcept { return busy_us() > 0 || completed; }
};

/// One span per entry of outcome.runs, in the same order. Pure function.
std::vector<run_span> run_spans(const graph& g, const run_outcome& outcome);

struct entity_stats {
  std::string name;
  cosched::priority prio = cosched::priority::normal;
  std::size_t jobs = 0;
  std::size_t succeeded = 0;  ///< "done": finished without error
  std::size_t failed = 0;
  /// finished_us - queued_us over the entity's jobs whose finished fence
  /// signalled (whatever their outcome), nearest-rank percentiles; absent when
  /// no job of the entity finished.
  std::optional<std::uint64_t> latency_p50_us;
  std::optional<std::uint64_t> latency_p99_us;
  std::uint64_t ring_us = 0;  ///< sum of run_span::busy_us() over its jobs' runs, every ring
  double ring_share = 0.0;    ///< ring_us / run_stats::ring_us (0 when that is 0)
};

/// Jain's fairness index of the ring time of the entities of one priority.
struct priority_fairness {
  cosched::priority prio = cosched::priority::normal;
  std::size_t entities = 0;  ///< at least 2
  /// (sum x)^2 / (n * sum x^2) with x = each entity's ring_us (the index does not
  /// change with scale, so it is the same over ring shares): 1 when all are
  /// equal (all zero counts as equal), 1/n when one entity got all of it.
  double jain_index = 1.0;
};

/// @par Thread Safety
/// A plain value.
struct run_stats {
  std::vector<entity_stats> entities;       ///< in graph order
  std::vector<priority_fairness> fairness;  ///< levels with >= 2 entities, kernel first
  std::uint64_t ring_us = 0;                ///< total ring time of all entities
  std::size_t jobs_with_deadline = 0;
  std::size_t deadline_misses = 0;  ///< jobs with a deadline whose finished_us is later
  std::uint64_t total_us = 0;       ///< run_outcome::end_us
  std::size_t rings = 1;            ///< run_outcome::rings
};

/// The p-th percentile (0 < p <= 100) by the nearest-rank method: the value of
/// rank ceil(p * n / 100) (1-based, at least 1) in ascending order. `values`
/// need not be sorted; it must not be empty (std::invalid_argument).
std::uint64_t nearest_rank_percentile(std::vector<std::uint64_t> values, unsigned percent);

/// Jain's index of `values` (see priority_fairness::jain_index); 1 for an empty list.
double jain_index(std::span<const std::uint64_t> values);

/// `deadlines` has one entry per job of `g` (absolute, microseconds since the
/// run started; absent: the job has none), or is empty for no deadlines at all;
/// any other size throws std::invalid_argument, as does an `outcome` that does
/// not fit `g`. Thread-safe (no shared state).
run_stats compute_stats(const graph& g, const run_outcome& outcome,
                        std::span<const std::optional<std::uint64_t>> deadlines);

/// The same, with the deadlines of the graph's jobs (job_spec::deadline_us).
run_stats compute_stats(const graph& g, const run_outcome& outcome);

/// Writes the statistics as JSON object members, without braces or a leading
/// comma, for the results' summary object (same ", " and ": " separators):
///
///   "entities": [{"name": "gfx", "priority": "high", "jobs": 3, "succeeded": 2,
///                 "failed": 1, "latency_p50_us": 1000, "latency_p99_us": 2500,
///                 "ring_us": 2000, "ring_share": 0.6667}, ...],
///   "ring_us": 3000, "fairness": [{"priority": "normal", "entities": 2,
///   "jain_index": 0.9}], "jobs_with_deadline": 0, "total_us": 4000
///
/// Latencies are null when the entity has no finished job; ring_share and
/// jain_index are rounded to 4 decimal places (ring_us values are exact). The
/// keys and their order are stable. deadline_misses is left out: the summary
/// has the scheduler's own count (run_outcome::deadline_misses), which equals
/// run_stats::deadline_misses.
void write_stats_json(std::ostream& out, const run_stats& stats);

/// A few lines for people: one per entity (at most `max_entities`, then one line
/// saying how many more), the fairness of each priority level, the total and
/// ring time, and the deadline misses when some job has a deadline.
void write_stats_text(std::ostream& out, const run_stats& stats, std::size_t max_entities = 16);

}  // namespace cosched::submit
