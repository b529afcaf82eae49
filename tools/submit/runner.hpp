// Runs a job graph through the scheduler on a simulated GPU (the sim backend, or
// the drm backend's host engine on real kernel syncobjs), in virtual or real
// time, and collects each job's outcome; writes the results format of DESIGN.md.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cosched/drm/device.hpp"
#include "cosched/sim/sim_ring.hpp"
#include "cosched/virtgpu/calibrated_ring.hpp"
#include "cosched/virtgpu/device.hpp"
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
  std::optional<std::size_t> ring;  // the ring of its last run (none if never run)
};

/// One run of a command on one of the rings (tag = job index).
struct ring_run {
  std::size_t ring = 0;
  sim::run_record record;
};

struct run_outcome {
  std::vector<job_outcome> jobs;  // in the graph's job order
  std::vector<ring_run> runs;     // every run of a command, ring by ring, in run order
  /// (job index, what()) for each job whose body threw, in job order.
  std::vector<std::pair<std::size_t, std::string>> messages;
  std::size_t rings = 1;
  std::uint64_t end_us = 0;      // when the last fence signalled
  bool shut_down_early = false;  // "nothing left to do" ended the run
  /// The signal (SIGINT, SIGTERM) that ended a real-time run early with
  /// run_options::stop_on_signals; 0 if none. The scheduler was then shut down
  /// at once: jobs whose outcome was not decided failed `shutdown`, and jobs not
  /// pushed yet were pushed then, and failed `shutdown`.
  int interrupted_by = 0;
  std::uint64_t deadline_misses = 0;  // the scheduler's count (scheduler_statistics)
  /// backend_kind::virtgpu: the device's renderer and the calibration the jobs were sized with.
  std::optional<std::string> renderer;
  std::optional<virtgpu::calibration> calibration;
  /// With run_options::verify, per job in graph order: null if its work never
  /// reached the GPU, else whether its region held its value after the run.
  std::vector<std::optional<bool>> verified;
};

enum class clock_kind { virtual_time, real_time };

/// How far a run has come, for run_options::progress.
struct run_progress {
  std::size_t pushed = 0;    ///< jobs pushed so far
  std::size_t finished = 0;  ///< jobs whose finished fence signalled
  std::size_t failed = 0;    ///< of those, how many with an error
};

/// What executes the commands: the sim backend's rings, the drm backend's
/// host rings (drm::host_ring: each completion a kernel timeline syncobj point,
/// seen through DRM_IOCTL_SYNCOBJ_EVENTFD and io_uring), or real GPU work on a
/// virtio-gpu device with virgl (virtgpu::calibrated_ring; real time only).
enum class backend_kind { sim, drm, virtgpu };

struct run_options {
  clock_kind clock = clock_kind::virtual_time;
  backend_kind backend = backend_kind::sim;
  /// backend_kind::drm: the device (see open_drm_device).
  drm::device device;
  /// backend_kind::virtgpu: the device (see open_virtgpu_device).
  virtgpu::device gpu;
  /// backend_kind::virtgpu: every job also writes a region with a value of its
  /// own, read back after the run (run_outcome::verified).
  bool verify = false;
  /// Real time: SIGINT or SIGTERM ends the run early (run_outcome::interrupted_by)
  /// instead of the process; the run's io_context watches them (asio::signal_set),
  /// so no work happens in a signal handler. Virtual time ignores it.
  bool stop_on_signals = false;
  /// Called on the running thread about every 200 ms of wall time in a real-time
  /// run, and about every 500 ms of wall time in a virtual-time run (one shorter
  /// than that never calls it), with the counts so far.
  std::function<void(const run_progress&)> progress;
};

/// The drm backend cannot run here: no DRM device, no syncobj or timeline
/// syncobj support, or a kernel without DRM_IOCTL_SYNCOBJ_EVENTFD (Linux 6.6).
class backend_unavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Opens the device for backend_kind::drm: the render node at `path`, or the
/// first usable one under /dev/dri when `path` is empty. Throws
/// backend_unavailable with one line naming what is missing.
drm::device open_drm_device(const std::string& path);

/// Opens the device for backend_kind::virtgpu: the render node at `path`, or
/// the first virtio_gpu node with virgl under /dev/dri when `path` is empty.
/// Throws backend_unavailable with one line naming what is missing.
virtgpu::device open_virtgpu_device(const std::string& path);

/// Runs `g` on `options.backend`. In virtual time it is deterministic: the same
/// graph always gives the same outcome, and the drm backend gives exactly the sim
/// backend's (its host engine signals in virtual-time order, and the clock waits
/// for each kernel signal to come back). In real time a device thread per ring
/// executes the commands (sim: reporting through an eventfd the reactor polls;
/// drm: signalling the ring's timeline syncobj); a run whose rings are stalled
/// (idle or hung) with jobs unfinished and nothing else pending for 100 ms shuts
/// the scheduler down ("nothing left to do").
run_outcome run_graph(const graph& g, const run_options& options = {});
inline run_outcome run_virtual(const graph& g) { return run_graph(g, {}); }

/// One JSON object per job, in job order, then the summary object.
void write_results(std::ostream& out, const graph& g, const run_outcome& outcome, std::string_view backend,
                   std::string_view clock);

/// A table for people, ending with the summary line.
void write_table(std::ostream& out, const graph& g, const run_outcome& outcome);
/// One line: how many jobs succeeded and failed, and when the run ended.
void write_summary(std::ostream& out, const graph& g, const run_outcome& outcome);

// The trace (`--trace`) is written by trace.hpp.

}  // namespace cosched::submit
