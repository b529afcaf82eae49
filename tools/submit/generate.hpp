// Random job graphs for load runs: `--generate jobs=N,entities=E,deps=D,faults=P`.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string_view>

#include "submit/graph.hpp"

namespace cosched::submit {

struct generate_spec {
  std::size_t jobs = 1000;
  std::size_t entities = 4;
  std::size_t deps = 2;  // dependencies per job, on distinct earlier jobs
  double faults = 0.0;   // each job's chance of a fault of its own (its command fails with EIO)
  std::uint64_t min_duration_us = 1;
  std::uint64_t max_duration_us = 20;
  std::uint32_t credit_limit = 8;
};

/// Parses "jobs=N,entities=E,deps=D,faults=P[,duration=A-B][,credits=C]"; any
/// key may be left out. Throws input_error naming the bad part.
generate_spec parse_generate_spec(std::string_view text);

/// A graph from `spec` and `seed`: the same pair always gives the same graph.
/// Every job is pushed at time 0 (in job order); a job depends on jobs among the
/// 256 before it; entities get mixed priorities. The faults are drawn from an
/// engine of their own: for one seed, `faults` changes only which jobs have one
/// (those at a smaller P are among those at a larger P).
graph generate_graph(const generate_spec& spec, std::uint64_t seed);

/// Writes `g` in the graph format, every field (so a run can be replayed from the file).
void write_graph(std::ostream& out, const graph& g);

}  // namespace cosched::submit
