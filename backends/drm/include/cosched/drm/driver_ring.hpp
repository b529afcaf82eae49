// A ring for DRM drivers whose submit ioctl takes in and out syncobjs
// (virtio_gpu, amdgpu, i915/xe, nouveau, panthor...): the ring numbers the
// points of its own timeline syncobj, the driver part submits, and the driver's
// own fences come back through io_uring.
#pragma once

#include <concepts>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "cosched/drm/fence_source.hpp"
#include "cosched/drm/submission_timeline.hpp"
#include "cosched/drm/syncobj.hpp"
#include "cosched/error.hpp"
#include "cosched/fence.hpp"
#include "cosched/ring.hpp"

namespace cosched::drm {

/// A syncobj point as submit ioctls take it (drm_virtgpu_execbuffer_syncobj,
/// drm_amdgpu_cs_chunk_syncobj, drm_xe_sync...).
struct syncobj_point {
  std::uint32_t handle = 0;  ///< a syncobj handle on the ring's device fd
  std::uint64_t point = 0;   ///< 0 for a binary syncobj's fence
};

/// Everything the driver part needs to submit one command.
struct submission {
  /// Signal this point when the work is done (the submission's out-syncobj).
  syncobj_point out;
  /// Start the work only once these have signalled (the submission's
  /// in-syncobjs; empty unless the ring orders an out-of-order engine).
  std::span<const syncobj_point> in;
};

/// The driver-specific part of a driver_ring: its command type and the submit
/// ioctl. `submit` hands `cmd` to the kernel so that the kernel signals
/// `s.out` when the work is done (and waits for `s.in` first), and returns
/// 0 or the ioctl's errno. It is called on the scheduler's executor and must
/// not wait for the hardware. It may also throw std::system_error (taken as
/// its code); anything else it throws fails the job with errc::exception.
///
/// Optional members the ring uses when present:
/// - `bool device_lost(std::error_code) const`: whether a submit error means
///   the device is gone (default: ENODEV, what the DRM core returns for an
///   unplugged device);
/// - `timeout_verdict on_timeout(command_type&)`: asked when a command that
///   has not completed has run for the scheduler's timeout (default: hung);
/// - `void reset()`: called by the ring's reset(), after its fences were
///   settled (for example to recreate a guilty hardware context);
/// - `const drm::device& drm_device() const`: the device the driver submits
///   on; the ring then checks that its fence source is on the same open file
///   (syncobj handles are per file).
template <class D>
concept ring_driver = requires(D& d, typename D::command_type& c, const submission& s) {
  { d.submit(c, s) } -> std::same_as<std::error_code>;
};

struct driver_ring_options {
  /// Whether the driver runs a context's submissions in submission order (as
  /// virtio_gpu does). When false, each submission gets the previous one's
  /// point as an in-syncobj, so that the ring still runs commands in the order
  /// they were run, as cosched::ring requires.
  bool in_order = true;
  /// See submission_timeline_options::read_fence_errors.
  bool read_fence_errors = true;
};

/// A cosched ring on a DRM driver's submit ioctl.
///
/// The ring owns a timeline syncobj (a submission_timeline). run() gives each
/// submission the next point as its out-syncobj, lets the driver part submit,
/// and returns a fence of the ring's own for the point, completed by the
/// submission timeline when the driver's fence has signalled (one
/// DRM_IOCTL_SYNCOBJ_EVENTFD registration at a time on an eventfd that the
/// reactor polls with io_uring: no thread per fence, and no registration per
/// command). Its error is the driver fence's (when read_fence_errors).
///
/// Failures:
/// - a submit error fails that command's fence with the errno; the point is
///   not used (the next command gets it);
/// - a submit error that means the device is gone (Driver::device_lost)
///   also fails every fence still pending with it, and every later run()
///   returns a fence failed with it without calling the driver;
/// - cancel_all() and reset() fail every pending fence with errc::cancelled at
///   once and stop waiting for their points: a late driver signal for them
///   changes nothing (the scheduler's waits are tagged with the attempt as
///   well). Nothing is queued in the ring, so nothing else is left to stop.
///   The kernel holds what the submitted work uses (its buffer objects) until
///   the work is done, and the ring keeps no command after run() returns, so
///   when cancel_all() returns no command is referenced.
///
/// on_timeout() says progressing for a command whose point has completed (its
/// completion is on its way to the scheduler), else asks the driver part
/// (default: hung).
///
/// @par Thread Safety
/// The scheduler calls run(), cancel_all(), on_timeout(), reset() and replay()
/// from its executor, never concurrently; device_lost() belongs there too. The
/// other accessors may be called from any thread.
///
/// @par Ownership
/// Immovable. The caller owns the ring; the scheduler borrows it. The ring owns
/// the driver part and its timeline syncobj.
///
/// @par Lifetime
/// The fence source (and its reactor) must outlive the ring; the ring must
/// outlive its scheduler. Destroying it fails its pending fences with errc::broken.
template <ring_driver Driver>
class driver_ring final : public cosched::ring<typename Driver::command_type> {
 public:
  using command_type = typename Driver::command_type;

  driver_ring(fence_source& source, Driver driver, driver_ring_options options = {})
      : driver_(std::move(driver)),
        timeline_(source, {.read_fence_errors = options.read_fence_errors}),
        in_order_(options.in_order) {
    // The timeline's handle means something only on the driver's own open file.
    if constexpr (requires(const Driver& d) {
                    { d.drm_device() } -> std::convertible_to<const drm::device&>;
                  }) {
      if (!(driver_.drm_device() == source.get_device()))
        throw std::invalid_argument(
            "cosched::drm::driver_ring: the fence source is on another DRM device (open file) than the "
            "driver");
    }
  }
  driver_ring(const driver_ring&) = delete;
  driver_ring& operator=(const driver_ring&) = delete;
  ~driver_ring() override = default;

  fence run(command_type& cmd) override {
    if (lost_) return fence::make_signalled(lost_);
    const std::uint64_t point = timeline_.next_point();
    const syncobj_point previous{timeline_.syncobj().handle(), point - 1};
    const submission s{{timeline_.syncobj().handle(), point},
                       in_order_ || point == 1 ? std::span<const syncobj_point>{}
                                               : std::span<const syncobj_point>(&previous, 1)};
    std::error_code ec;
    try {
      ec = driver_.submit(cmd, s);
    } catch (const std::system_error& e) {
      ec = e.code();
      if (!ec) throw;
    }
    if (!ec) return timeline_.track(point, &cmd);
    if (is_device_lost(ec)) {
      lost_ = ec;
      timeline_.abandon(ec);
    }
    return fence::make_signalled(ec);
  }

  void cancel_all() noexcept override { timeline_.abandon(make_error_code(errc::cancelled)); }

  timeout_verdict on_timeout(command_type& cmd) override {
    if (timeline_.completed(&cmd)) return timeout_verdict::progressing;
    if constexpr (requires { driver_.on_timeout(cmd); }) {
      return driver_.on_timeout(cmd);
    } else {
      return timeout_verdict::hung;
    }
  }

  void reset() override {
    cancel_all();
    if constexpr (requires { driver_.reset(); }) driver_.reset();
  }

  fence replay(command_type& cmd) override { return run(cmd); }
  /// In order either way: the driver's own order (in_order), or each
  /// submission waiting for the previous one's point.
  bool executes_in_order() const noexcept override { return true; }

  Driver& driver() noexcept { return driver_; }
  const Driver& driver() const noexcept { return driver_; }
  /// The ring's timeline syncobj (export it for others to wait on, never to signal or reset).
  const timeline_syncobj& timeline() const noexcept { return timeline_.syncobj(); }
  /// The last point a submission took (0 before the first).
  std::uint64_t last_point() const noexcept { return timeline_.next_point() - 1; }
  /// The submissions whose fences are still pending.
  std::size_t in_flight() const noexcept { return timeline_.pending(); }
  /// The submit error that meant the device is gone (empty while it is not).
  std::error_code device_lost() const noexcept { return lost_; }
  /// The ring's fence machinery (statistics: registrations, wake-ups).
  const submission_timeline& points() const noexcept { return timeline_; }

 private:
  bool is_device_lost(std::error_code ec) const {
    if constexpr (requires(const Driver& d) {
                    { d.device_lost(ec) } -> std::convertible_to<bool>;
                  }) {
      return driver_.device_lost(ec);
    } else {
      return ec == std::errc::no_such_device;
    }
  }

  Driver driver_;
  submission_timeline timeline_;
  const bool in_order_;
  std::error_code lost_;  // the scheduler's executor
};

}  // namespace cosched::drm
