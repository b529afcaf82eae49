// Group "wake": latency from a device signalling a hardware fence (writing an
// eventfd) to the job that waits for it running its body, with the scheduler
// thread asleep when the signal comes.
//
// Ping-pong: the device (CPU 1) waits until the waiting side's threads are
// asleep, stamps the time, writes the signal eventfd and blocks in read() on an
// ack eventfd; the waiting side (CPU 0) takes the time as the first thing it
// does once resumed, resets the signal, re-arms its wait and writes the ack.
// one-way = resume time - stamp (CLOCK_MONOTONIC on both threads). Mechanisms:
//   cosched           job co_awaits reactor.wait_readable(fd), scheduler + reactor on
//                     an io_context the scheduler thread runs (ctx.run())
//   raw io_uring      the floor: POLL_ADD + io_uring_submit_and_wait, resuming a bare
//                     coroutine (plain ring; and SINGLE_ISSUER|DEFER_TASKRUN, shown
//                     for reference)
//   thread per queue  what runtimes do today: a waiter thread blocks in read(),
//                     then asio::post()s to the io_context, whose handler resumes a
//                     bare coroutine; the waiter thread is not pinned
#pragma once

#include <cstdio>

#include "bench_util.hpp"

namespace cosched_bench::wake {

/// Runs the group and sets wake_p50_us and wake_p99_us (cosched on a
/// uring_context), wake_asio_*, raw_uring_wake_*, raw_uring_defer_wake_p50_us
/// and thread_per_queue_wake_*.
void run_group(const config& cfg, results& res, std::FILE* out);

}  // namespace cosched_bench::wake
