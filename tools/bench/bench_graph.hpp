// The graphs of cosched-bench's dag group and what one run of a graph measures,
// shared by every implementation that runs them (cosched, oneTBB, the floor).
//
// Every implementation runs the same jobs in the same dependency order and
// writes each job's output into one array, so that the group can compare the
// arrays' checksums: a job run before one of its dependencies changes them.
#pragma once

#include <sys/resource.h>

#include <cstdint>

namespace cosched_bench::dag {

// A graph's size: its jobs, in layers of `width` (the dag shape).
struct graph_size {
  std::uint32_t jobs;
  std::uint32_t width;
};
inline constexpr graph_size full_size{100000, 1000};  // 100 layers: the figures of the issue
inline constexpr graph_size cached_size{2000, 100};   // 20 layers: fits in the caches
inline constexpr std::uint32_t dep_offsets[4] = {0, 1, 17, 511};

enum class shape { indep, dag };

// Dependencies of job i: in the dag shape, jobs (col + offset) mod width of the
// previous layer; none in layer 0 and none in the indep shape.
inline int deps_of(shape s, std::uint32_t width, std::uint32_t i, std::uint32_t out[4]) {
  if (s == shape::indep || i < width) return 0;
  const std::uint32_t layer = i / width, col = i % width, base = (layer - 1) * width;
  for (int k = 0; k < 4; ++k) out[k] = base + (col + dep_offsets[k]) % width;
  return 4;
}

// The work of a job (a few ns): combines its dependencies' outputs, so a job run
// before its dependencies would change the checksum.
inline void job_work(shape s, std::uint32_t width, std::uint32_t i, std::uint64_t* val) {
  std::uint32_t d[4];
  const int n = deps_of(s, width, i, d);
  std::uint64_t x = i;
  for (int k = 0; k < n; ++k) x += val[d[k]];
  val[i] = x * 2654435761u + 1;
}

// One run of one graph: build (creating or pushing every job) and exec (from
// the first job run to the last one finished) are timed separately; the figure
// of the group is their sum.
struct timing {
  double build_ns = 0, exec_ns = 0;
  double faults = 0;  // minor page faults taken during build+exec
  double total() const { return build_ns + exec_ns; }
};

// First touches of fresh heap pages cost ~12 us each on a virtual machine, which would
// drown the per-job cost; main() keeps freed memory in the heap, and the faults
// that remain are counted so that the report shows them.
inline std::uint64_t minor_faults() {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  return std::uint64_t(ru.ru_minflt);
}

}  // namespace cosched_bench::dag
