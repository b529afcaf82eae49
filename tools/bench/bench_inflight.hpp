// Group "inflight": scheduler-thread CPU per hardware-fence completion with N
// fences in flight (N = 1, 64, 1024, 8192), signalled one at a time in random
// order: the device (CPU 1) waits until the scheduler thread (CPU 0) is asleep,
// writes one random eventfd, spins until that completion has been consumed, and
// repeats. Waiting for the scheduler to sleep makes every completion pay for
// one wake-up, whether or not the mechanism still had work to do after it had
// consumed the previous one.
//
// What "per completion" means for cosched here: N jobs are on the ring (the
// in-flight list is N long); each ring.run returns reactor.wait_readable(efd_i).
// A completion is the whole steady-state cycle of keeping the ring N deep:
// the reactor learns of the poll completion, the scheduler retires the job
// (destroys its frame and command, signals its fences), and a replacement job
// for the same eventfd is pushed, prepared, selected and run, which arms a new
// wait. The replacement is pushed from a completion handler attached to the
// hardware fence (fence::async_wait on the same io_context); that handler also
// resets the eventfd and acknowledges the device. This charges cosched for more
// than the bare wake-up (a push, a coroutine frame, a ring.run per completion),
// which is the work a real ring kept full does.
//
// The peer ("poll"): the drmSyncobjWait(WAIT_ANY) model: one loop calls poll()
// over all N fds, scans for the ready one and resumes a bare coroutine that
// resets the eventfd and acknowledges. It does no scheduling at all, so the
// comparison favours it.
//
// For reference ("raw io_uring"): the floor of the mechanism cosched uses: N
// oneshot POLL_ADDs on a bare ring, io_uring_submit_and_wait, resuming a bare
// coroutine that resets the eventfd, re-arms its poll and acknowledges.
//
// CPU is CLOCK_THREAD_CPUTIME_ID of the scheduler thread (user + kernel work
// done in its context, io_uring task work included), over the completions after
// a warm-up. The eventfds are made once and reused by every run.
#pragma once

#include <cstddef>
#include <cstdio>

#include "bench_util.hpp"

namespace cosched_bench::inflight {

/// The numbers of fences in flight measured; each figure's key ends in _<N>.
inline constexpr std::size_t sizes[] = {1, 64, 1024, 8192};

/// Runs the group and sets, for each N of `sizes`, inflight_cpu_us_<N> and
/// inflight_wall_us_<N> (cosched on a uring_context), inflight_asio_cpu_us_<N>,
/// raw_uring_inflight_cpu_us_<N>, poll_inflight_cpu_us_<N> and poll_inflight_wall_us_<N>.
void run_group(const config& cfg, results& res, std::FILE* out);

}  // namespace cosched_bench::inflight
