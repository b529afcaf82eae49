// The trace of a cosched-submit run (`--trace FILE`): what it shows (tracks, slices,
// instants, dependency flows), derived once, and its two formats: Chrome trace-event
// JSON and Perfetto's protobuf trace.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string_view>
#include <vector>

#include "submit/graph.hpp"
#include "submit/runner.hpp"

namespace cosched::submit {

/// `--trace-format`: Chrome trace-event JSON, or Perfetto's protobuf trace (about
/// half the size; opens in Perfetto, not in chrome://tracing).
enum class trace_format { json, proto };

/// "json" or "proto"; none for any other text.
std::optional<trace_format> trace_format_named(std::string_view name) noexcept;

/// One run of a command drawn on its ring: exactly the bars of the SVG timeline
/// (run_span, the runs that occupied the ring or ran to their end), which on one
/// ring never overlap.
struct trace_slice {
  std::size_t ring = 0;
  std::size_t job = 0;
  std::uint32_t attempt = 1;
  std::uint64_t begin_us = 0;
  std::uint64_t stop_us = 0;
  std::uint64_t run_at_us = 0;  ///< when the scheduler ran it
  bool completed = false;       ///< ran to its own end
  bool replayed = false;        ///< cut by a reset and run again later
};

/// Where an instant event is drawn.
enum class trace_place { ring, entity, scheduler };

/// A moment of the run: "reset" (ring), "timeout" (ring and entity), "ban" (shared
/// ring: the guilty job's entity), "ring closed" (ring per entity), "kill" and
/// "set rings" (the graph's actions), "nothing left to do" and "interrupted"
/// (the scheduler shut down).
struct trace_instant {
  std::uint64_t at_us = 0;
  trace_place place = trace_place::scheduler;
  std::size_t index = 0;  ///< the ring or entity
  std::string_view name;
  std::optional<std::size_t> job;  ///< the guilty job of a timeout, ban or ring close
};

/// A declared dependency whose both jobs were drawn on a ring: from the dependency's
/// last slice to the dependent's last slice (indices into trace_model::slices).
struct trace_flow {
  std::size_t from = 0;
  std::size_t to = 0;
};

struct trace_model {
  std::size_t rings = 1;
  std::vector<trace_slice> slices;      ///< in run order
  std::vector<trace_instant> instants;  ///< in time order, places in the order above
  std::vector<trace_flow> flows;        ///< by dependent job, then its deps' order; each pair once
};

/// What the trace of `outcome` (which must come from running `g`) shows. A flow is
/// left out when the dependent's slice begins before the dependency's (a replay of
/// a pipelined dependency), so that every arrow points forward in time. Pure function.
trace_model model_trace(const graph& g, const run_outcome& outcome);

/// Chrome trace-event JSON (opens in Perfetto and chrome://tracing). One process, the
/// scheduler; a thread per ring with a complete event ("X") per trace_slice; a thread
/// per entity holding each job's queued-to-finished span as a nestable async event
/// ("b"/"e", cat "job", id the job's index: jobs of one entity overlap in time) and
/// the entity's instants; instants ("i") as in trace_model; a flow ("s"/"f", cat
/// "dependency") per trace_flow, bound to the two slices' starts. Times in us.
void write_trace(std::ostream& out, const graph& g, const run_outcome& outcome);

/// Perfetto's protobuf trace (perfetto.protos.Trace), written directly: a process
/// track for the scheduler, a track per ring with a slice per trace_slice, a track per
/// entity with its instants and, under it, as many job tracks as the entity had jobs
/// in flight at once, each job's queued-to-finished span a slice on one of them
/// (assigned greedily: the lowest free track); flows as TrackEvent flow ids. Times
/// in ns. One packet sequence, events in time order.
void write_trace_proto(std::ostream& out, const graph& g, const run_outcome& outcome);

}  // namespace cosched::submit
