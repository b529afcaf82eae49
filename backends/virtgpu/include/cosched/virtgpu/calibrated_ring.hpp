// The sim backend's commands as real GPU work: each command becomes virgl work
// sized to take about its duration on the device (from a calibration measured
// at start), on a virtgpu ring, with the faults virgl cannot produce emulated.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "cosched/drm/fence_source.hpp"
#include "cosched/ring.hpp"
#include "cosched/sim/sim_ring.hpp"
#include "cosched/virtgpu/command.hpp"
#include "cosched/virtgpu/device.hpp"
#include "cosched/virtgpu/texture.hpp"

namespace cosched::virtgpu {

/// How long GPU work takes on this device, measured: an empty submission, and
/// each unit of work on top of it (a unit: one copy of a unit_side x unit_side
/// region between two textures).
struct calibration {
  double empty_us = 0;
  double unit_us = 0;
  std::uint32_t unit_side = 256;
  /// Units beyond this are not submitted (about ten seconds of work at most).
  std::uint32_t max_units = 0;

  /// The units a command of `duration_us` gets: what its duration leaves after
  /// an empty submission's cost, rounded, at most max_units.
  std::uint32_t units_for(sim::time_us duration_us) const noexcept;
};

/// What the rings of one run share: the device, the two textures the work copies
/// between, the calibration and, with verification, the texture every job
/// writes its own value into.
///
/// Verification: job `tag` writes value_of(tag) into the 2x2 texels of
/// region_of(tag) of the verification texture, as part of its GPU work; after
/// the run, verify() reads the texture back once.
///
/// @par Thread Safety
/// Distinct objects: Safe. Shared objects: Unsafe (one thread: the run's).
///
/// @par Ownership and Lifetime
/// Immovable. The rings that use it hold a reference: it must outlive them.
class workload {
 public:
  /// `jobs`: how many tags (0 .. jobs-1) verification covers (at most 2048 * 8192).
  workload(const device& dev, std::size_t jobs, bool verify);
  workload(const workload&) = delete;
  workload& operator=(const workload&) = delete;

  /// Measures the calibration: empty submissions and submissions of 32 units,
  /// each submitted alone and waited for (DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT), the
  /// medians of several. Blocks (tens of milliseconds): call it before the run.
  const calibration& calibrate();
  const calibration& measured() const noexcept { return calibration_; }

  /// The GPU work of `cmd`: units for `work_us`, and, with verification, the
  /// write of its value.
  command make(const sim::command& cmd, sim::time_us work_us) const;

  /// Records that the work of `tag` was submitted to the GPU.
  void submitted(std::uint64_t tag);
  /// After the run (the GPU idle or not: the readback comes after every
  /// submission): for each tag, null if its work never reached the GPU, else
  /// whether its region holds its value. Blocks.
  std::vector<std::optional<bool>> verify() const;

  const device& get_device() const noexcept { return device_; }
  bool verifying() const noexcept { return static_cast<bool>(verify_texture_); }

  static std::uint32_t value_of(std::uint64_t tag) noexcept;
  static region region_of(std::uint64_t tag) noexcept;

 private:
  device device_;
  texture from_;
  texture to_;
  texture verify_texture_;  // empty without verification
  std::size_t jobs_;
  std::vector<bool> submitted_;
  calibration calibration_;
};

/// A ring of sim::command on the GPU: run() submits the command as the
/// workload's GPU work sized to its duration (`slow:<us>`: to that) on a
/// virtgpu::ring, and returns a fence that signals once the GPU has done it.
///
/// Faults are emulated here, as drm::host_ring does, since virgl cannot fail or
/// hang a job: `error:<ERRNO>` runs its work and its fence fails with the errno
/// when the GPU is done; `hang` is never submitted, and every command run after
/// it is held back (not submitted) until reset() or cancel_all(), which fail
/// their fences `cancelled`. on_timeout(): a hang is hung; any other command
/// is real work that the GPU completes, so it is progressing (it may run longer
/// than the timeout on a loaded machine).
///
/// reset() and cancel_all() settle every fence the ring handed out at once
/// (`cancelled`): work already on the GPU finishes there, and its late
/// completion changes nothing.
///
/// @par Thread Safety
/// One thread: the scheduler's executor, which must also run the fence
/// source's reactor (the ring's fences complete there).
///
/// @par Ownership
/// Immovable. The caller owns it; the scheduler borrows it.
///
/// @par Lifetime
/// The workload and the fence source must outlive it; it must outlive its
/// scheduler. Destroying it fails its pending fences `broken`.
class calibrated_ring final : public cosched::ring<sim::command> {
 public:
  calibrated_ring(workload& w, drm::fence_source& source,
                  std::chrono::steady_clock::time_point epoch = std::chrono::steady_clock::now());
  calibrated_ring(const calibrated_ring&) = delete;
  calibrated_ring& operator=(const calibrated_ring&) = delete;
  ~calibrated_ring() override;

  fence run(sim::command& cmd) override;
  void cancel_all() noexcept override;
  timeout_verdict on_timeout(sim::command& cmd) override;
  void reset() override { cancel_all(); }
  fence replay(sim::command& cmd) override { return run(cmd); }
  /// Its driver ring's submissions execute in submission order.
  bool executes_in_order() const noexcept override { return true; }

  /// Whether nothing it submitted is still on the GPU (idle, or held behind a hang).
  bool stalled() const;
  /// Every run, in run order: `start` is when the GPU could begin it (its run, or
  /// the end of the ring's previous command if later), `end` when its completion
  /// was seen (filled in then); a hang and what is held behind it never finish.
  std::vector<sim::run_record> log() const;

  struct state;

 private:
  std::shared_ptr<state> state_;
};

}  // namespace cosched::virtgpu
