// The host engine: a ring of simulated commands whose hardware fences are real
// kernel timeline syncobj points, signalled by a CPU "engine" instead of a GPU.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include <asio/io_context.hpp>

#include "cosched/drm/fence_source.hpp"
#include "cosched/drm/syncobj.hpp"
#include "cosched/fence.hpp"
#include "cosched/reactor.hpp"
#include "cosched/ring.hpp"
#include "cosched/sim/sim_ring.hpp"
#include "cosched/sim/virtual_clock.hpp"

namespace cosched::drm {

/// Virtual time for host rings: the sim backend's virtual clock, plus the
/// io_context of the reactor behind the rings' fence source.
///
/// The kernel's answer to a host signal is asynchronous: DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL
/// writes the EVENTFD registrations' eventfds, io_uring completes their polls, and
/// the reactor's handlers turn that into the cosched fence. A host ring in virtual
/// time signals a point from the clock's event (the completion phase of its
/// instant) and then await()s that fence by running the reactor's io_context, and
/// only it, so that the fence has signalled before the next event of the instant
/// fires and before the clock advances. The scheduler's own io_context does not
/// run meanwhile: the effects of an instant are seen in the same order as on
/// sim::virtual_ring, and a run gives exactly the sim backend's results.
///
/// The reactor must therefore run on an io_context of its own (not the
/// scheduler's), which nothing but await() runs.
///
/// @par Thread Safety
/// Distinct objects: Safe. Shared objects: Unsafe; use it from the thread that
/// runs the clock (and both io_contexts).
///
/// @par Lifetime
/// The clock and the reactor's io_context must outlive it; it must outlive the
/// host rings that use it.
class virtual_time {
 public:
  /// `round_trip_limit`: how long (real time) await() waits for one fence
  /// before it reports a lost completion.
  virtual_time(sim::virtual_clock& clock, asio::io_context& reactor_context,
               std::chrono::milliseconds round_trip_limit = std::chrono::seconds(20)) noexcept
      : clock_(clock), reactor_context_(reactor_context), round_trip_limit_(round_trip_limit) {}
  virtual_time(const virtual_time&) = delete;
  virtual_time& operator=(const virtual_time&) = delete;

  sim::virtual_clock& clock() const noexcept { return clock_; }
  asio::io_context& reactor_context() const noexcept { return reactor_context_; }

  /// Runs the reactor's io_context, one handler at a time, until `f` has
  /// signalled. Throws std::runtime_error naming `what` when it has not within
  /// the round-trip limit (a completion the kernel never delivered).
  void await(const fence& f, const char* what, std::uint64_t point);

 private:
  sim::virtual_clock& clock_;
  asio::io_context& reactor_context_;
  std::chrono::milliseconds round_trip_limit_;
};

/// A ring of sim::command (duration, fault, tag; see sim::virtual_ring) whose
/// hardware fences are points of a timeline syncobj of its own: run() takes the
/// next point and returns fence_source::wait() on it; the engine executes the
/// commands one after another, each for its duration, and then signals its point
/// with DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL. The whole scheduler then runs on real
/// kernel syncobjs, EVENTFD registrations and io_uring, without a GPU.
///
/// Two engines:
/// - real time: a device thread, as sim::real_ring's (short commands spin, long
///   ones sleep); times are microseconds since `epoch`;
/// - virtual time: events on the virtual clock, with exactly sim::virtual_ring's
///   timing (a command starts at max(its run time, the end of the previous one));
///   see virtual_time for how the kernel's round trip is awaited.
///
/// Faults: `hang` never signals its point, and nothing after it on the ring
/// starts; `slow:<us>` takes that long and reports progress (on_timeout says
/// progressing); `error:<ERRNO>`: the kernel cannot carry an error through a host
/// signal (TIMELINE_SIGNAL installs an already signalled stub fence, whose status
/// is always 1), so for such a command, and only for it, run() returns a fence of
/// the ring's own that signals with the errno once the command's kernel point has
/// been reached and observed; every other command's hardware fence is the
/// kernel's, as fence_source::wait() returns it.
///
/// Reset: reset() and cancel_all() stop the engine (the device thread drops its
/// command; virtual events are cancelled) and return once no command is
/// referenced; the points handed out so far are abandoned. Replays take new,
/// higher points. Since signalling a timeline point reaches every earlier point,
/// an abandoned point is reached (late) when a later one is signalled: the
/// scheduler no longer waits for it, and an abandoned error command's own fence
/// has already failed `broken` at the reset, so a late signal changes nothing.
///
/// @par Thread Safety
/// The scheduler calls run(), cancel_all(), on_timeout(), reset() and replay()
/// from its executor; stalled() and last_point() belong there too. log(), now()
/// and timeline() may be called from any thread.
///
/// @par Ownership
/// Immovable. The caller owns the ring; the scheduler borrows it.
///
/// @par Lifetime
/// The fence source (and its reactor), and in virtual time the virtual_time,
/// must outlive the ring; the ring must outlive its scheduler. Destroy it on the
/// reactor's thread, or while the reactor's io_context is not running: that
/// stops the engine and destroys the timeline syncobj, so pending fences fail `broken`.
class host_ring final : public cosched::ring<sim::command> {
 public:
  /// Real time: a device thread executes the commands. `events` is the reactor
  /// of `source` (error fences are completed on its executor).
  host_ring(fence_source& source, reactor& events,
            std::chrono::steady_clock::time_point epoch = std::chrono::steady_clock::now());
  /// Virtual time: the clock of `time` executes the commands.
  host_ring(fence_source& source, virtual_time& time);
  host_ring(const host_ring&) = delete;
  host_ring& operator=(const host_ring&) = delete;
  ~host_ring() override;

  fence run(sim::command& cmd) override;
  void cancel_all() noexcept override;
  /// A `slow` command reports progress; anything else running at the timeout hung.
  timeout_verdict on_timeout(sim::command& cmd) override;
  void reset() override { cancel_all(); }
  /// Runs `cmd` again, on a new point, from now, for its full duration.
  fence replay(sim::command& cmd) override { return run(cmd); }
  /// Its engine runs one command after another, in run order.
  bool executes_in_order() const noexcept override { return true; }

  /// The ring's timeline syncobj (another process or device may wait on it).
  const timeline_syncobj& timeline() const noexcept;
  /// The last point run() handed out (0 before the first run).
  std::uint64_t last_point() const noexcept;
  /// Virtual time: the clock's now; real time: microseconds since the epoch.
  sim::time_us now() const noexcept;
  /// Whether the engine can make no progress by itself (nothing to execute, or
  /// stuck on a hang) and no point it signalled is still on its way back.
  bool stalled() const;
  /// Every run, in run order (`start`/`end` as executed; in real time `end` is
  /// filled in once the command finished).
  std::vector<sim::run_record> log() const;

  /// Internal: the engine behind the ring (a device thread or the virtual
  /// clock's events; defined in host_ring.cpp).
  struct engine;

 private:
  std::unique_ptr<engine> engine_;
};

}  // namespace cosched::drm
