// cosched-bench group "gpu": real GPU work on a virtio-gpu device with virgl
// (run it where there is one: tests/drm-vm/run.sh --gpu virgl), against a bare
// io_uring loop on the same ioctls and a submit thread per queue.
#pragma once

#include <cstdio>

#include "bench_util.hpp"

namespace cosched_bench::gpu {

/// The figures this group sets (declared by run_group whether or not it can run).
inline constexpr const char* keys[] = {
    "gpu_latency_p50_us",        "gpu_latency_p99_us",      "gpu_asio_latency_p50_us",
    "gpu_bare_latency_p50_us",   "gpu_bare_latency_p99_us", "gpu_thread_latency_p50_us",
    "gpu_thread_latency_p99_us", "gpu_throughput_ms",       "gpu_bare_throughput_ms",
    "gpu_cpu_per_job_us",        "gpu_bare_cpu_per_job_us", "gpu_submit_ioctl_cpu_us",
    "gpu_registrations_per_job",
};

/// Measures, interleaved within each repetition:
/// (a) latency: an empty GPU job is submitted, its driver fence signals, a job
///     waiting on it resumes; cosched (uring_context, virtgpu::ring) vs a bare
///     loop (EXECBUFFER + SYNCOBJ_EVENTFD + an io_uring read of the eventfd) vs
///     a submit thread that blocks in SYNCOBJ_TIMELINE_WAIT and then posts to
///     the waiter's io_context;
/// (b) throughput: 2000 small GPU jobs over 4 entities through cosched vs a bare
///     loop that submits the same commands back to back and waits once;
/// (c) the CPU cosched's thread spends per GPU job, against the submit ioctl's.
/// Without a virgl device it prints why and sets nothing.
void run_group(const config& cfg, results& res, std::FILE* out);

}  // namespace cosched_bench::gpu
