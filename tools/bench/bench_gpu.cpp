// cosched-bench group "gpu": latency, throughput and CPU per job of real GPU
// work on virtio-gpu (virgl), cosched against a bare io_uring loop and a
// submit thread per queue. See bench_gpu.hpp.
#include "bench_gpu.hpp"

#include <liburing.h>
#include <sys/ioctl.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include "cosched/cosched.hpp"
#include "cosched/drm/fence_source.hpp"
#include "cosched/drm/syncobj.hpp"
#include "cosched/reactor.hpp"
#include "cosched/uring_context.hpp"
#include "cosched/virtgpu/command.hpp"
#include "cosched/virtgpu/ring.hpp"
#include "cosched/virtgpu/texture.hpp"

#if __has_include(<drm/drm.h>)
#include <drm/drm.h>
#else
#include <libdrm/drm.h>
#endif

namespace cosched_bench::gpu {
namespace {

using cosched::virtgpu::command;
using cosched::virtgpu::region;
using cosched::virtgpu::texture;

// The kernel uAPI the peers call directly (cosched carries its own copies internally).
struct syncobj_eventfd_args {
  std::uint32_t handle, flags;
  std::uint64_t point;
  std::int32_t fd;
  std::uint32_t pad;
};
constexpr unsigned long ioctl_syncobj_eventfd = DRM_IOWR(0xCF, syncobj_eventfd_args);

int xioctl(int fd, unsigned long request, void* arg) {
  int r;
  do {
    r = ::ioctl(fd, request, arg);
  } while (r < 0 && (errno == EINTR || errno == EAGAIN));
  return r < 0 ? errno : 0;
}

// A timeline syncobj of the peers, with blocking waits.
struct peer_timeline {
  explicit peer_timeline(const cosched::virtgpu::device& dev)
      : gpu(dev), syncobj(cosched::drm::timeline_syncobj::create(dev.drm())), submit(dev) {}

  // EXECBUFFER of `c` signalling `point`.
  void submit_point(command& c, std::uint64_t point) {
    const cosched::drm::submission s{{syncobj.handle(), point}, {}};
    if (const auto ec = submit.submit(c, s)) die("gpu: EXECBUFFER", ec.value());
  }
  void wait(std::uint64_t point) {
    std::uint32_t handle = syncobj.handle();
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    drm_syncobj_timeline_wait args{};
    args.handles = reinterpret_cast<std::uintptr_t>(&handle);
    args.points = reinterpret_cast<std::uintptr_t>(&point);
    args.count_handles = 1;
    args.timeout_nsec = (now.tv_sec + 30) * 1'000'000'000LL + now.tv_nsec;
    args.flags = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT;
    if (const int err = xioctl(gpu.fd(), DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &args))
      die("gpu: TIMELINE_WAIT", err);
  }

  cosched::virtgpu::device gpu;
  cosched::drm::timeline_syncobj syncobj;
  cosched::virtgpu::driver submit;
  std::uint64_t last = 0;
};

double us(std::uint64_t ns) { return double(ns) / 1000.0; }

// Shuts the scheduler down and runs the context until that has completed.
template <class Context>
void shut_down(Context& ctx, cosched::scheduler<command>& sched) {
  auto down = sched.shutdown();
  ctx.restart();
  down.async_wait(ctx.get_executor(), [&ctx](std::error_code) { ctx.stop(); });
  ctx.run();
}

struct latencies {
  std::vector<double> p50, p99;
  void add(std::vector<std::uint64_t>& samples) {
    p50.push_back(percentile(samples, 50) / 1000.0);
    p99.push_back(percentile(samples, 99) / 1000.0);
  }
};

// ------------------------------------------------------------------ (a) latency

// cosched: job A (an empty command) is pushed at t0; job B, on another entity,
// co_awaits A's finished fence and records t1 when it resumes. B's own empty
// command runs after t1; the next sample starts once B has finished.
template <class Context>
struct cosched_latency {
  static Context make_context() {
    if constexpr (std::is_same_v<Context, asio::io_context>)
      return Context(1);
    else
      return Context();
  }
  cosched_latency(const cosched::virtgpu::device& dev, std::uint32_t warm, std::uint32_t count)
      : events(ctx),
        source(dev.drm(), events),
        ring(source, cosched::virtgpu::driver(dev), cosched::virtgpu::ring_options),
        sched(ctx.get_executor(), ring, {.credit_limit = 4}),
        submitter(sched.make_entity({.name = "submit"})),
        waiter(sched.make_entity({.name = "wait"})),
        gpu(dev),
        warmup(warm),
        total(warm + count) {}

  static cosched::job<command> empty_job(command c) { co_return c; }
  static cosched::job<command> waiting_job(cosched::fence done, cosched_latency* self) {
    co_await done;
    self->resumed(now_ns());
    co_return command(self->gpu);
  }

  void sample() {
    t0 = now_ns();
    auto a = submitter.push(empty_job(command(gpu)));
    auto b = waiter.push(waiting_job(a.finished, this));
    b.finished.async_wait(ctx.get_executor(), [this](std::error_code ec) {
      if (ec) die("gpu: a latency job failed", ec.value());
      if (++done < total)
        sample();
      else
        ctx.stop();
    });
  }
  void resumed(std::uint64_t t1) {
    if (done >= warmup) samples.push_back(t1 - t0);
  }
  std::vector<std::uint64_t> run() {
    asio::post(ctx, [this] { sample(); });
    ctx.run();
    shut_down(ctx, sched);
    return samples;
  }

  Context ctx = make_context();
  cosched::reactor events;
  cosched::drm::fence_source source;
  cosched::virtgpu::ring ring;
  cosched::scheduler<command> sched;
  cosched::entity<command> submitter, waiter;
  cosched::virtgpu::device gpu;
  std::uint32_t warmup, total, done = 0;
  std::uint64_t t0 = 0;
  std::vector<std::uint64_t> samples;
};

// The floor: SYNCOBJ_EVENTFD on the point, EXECBUFFER, an io_uring read of the
// eventfd, reaped when it completes.
std::vector<std::uint64_t> bare_latency(const cosched::virtgpu::device& dev, std::uint32_t warm,
                                        std::uint32_t count) {
  peer_timeline tl(dev);
  io_uring ring{};
  if (const int rc = io_uring_queue_init(8, &ring, 0); rc < 0) die("gpu: io_uring_queue_init", -rc);
  const int efd = make_eventfd(false);
  command empty(dev);
  std::vector<std::uint64_t> samples;
  for (std::uint32_t i = 0; i < warm + count; ++i) {
    const std::uint64_t t0 = now_ns();
    const std::uint64_t point = ++tl.last;
    syncobj_eventfd_args reg{tl.syncobj.handle(), 0, point, efd, 0};
    if (const int err = xioctl(dev.fd(), ioctl_syncobj_eventfd, &reg)) die("gpu: SYNCOBJ_EVENTFD", err);
    tl.submit_point(empty, point);
    std::uint64_t value = 0;
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_read(sqe, efd, &value, sizeof value, 0);
    io_uring_cqe* cqe = nullptr;
    if (const int rc = io_uring_submit_and_wait(&ring, 1); rc < 0) die("gpu: io_uring_submit_and_wait", -rc);
    if (io_uring_peek_cqe(&ring, &cqe) != 0 || cqe->res != sizeof value) die("gpu: eventfd read");
    io_uring_cqe_seen(&ring, cqe);
    const std::uint64_t t1 = now_ns();
    if (i >= warm) samples.push_back(t1 - t0);
  }
  ::close(efd);
  io_uring_queue_exit(&ring);
  return samples;
}

// Today's userspace drivers: a submit thread per queue takes the request,
// submits, blocks in SYNCOBJ_TIMELINE_WAIT and posts the completion to the
// io_context of the waiter (this thread).
std::vector<std::uint64_t> thread_latency(const config& cfg, const cosched::virtgpu::device& dev,
                                          std::uint32_t warm, std::uint32_t count) {
  peer_timeline tl(dev);
  asio::io_context io(1);
  auto guard = asio::make_work_guard(io);
  std::mutex lock;
  std::condition_variable wake;
  std::deque<std::function<void()>> requests;  // guarded by lock
  bool stop = false;                           // guarded by lock
  std::thread submitter([&] {
    pin_to(cfg, 1);
    for (;;) {
      std::function<void()> request;
      {
        std::unique_lock held(lock);
        wake.wait(held, [&] { return stop || !requests.empty(); });
        if (requests.empty()) return;
        request = std::move(requests.front());
        requests.pop_front();
      }
      request();
    }
  });
  command empty(dev);
  std::vector<std::uint64_t> samples;
  std::uint32_t i = 0;
  std::uint64_t t0 = 0;
  std::function<void()> next = [&] {
    t0 = now_ns();
    {
      std::lock_guard held(lock);
      requests.push_back([&] {
        const std::uint64_t point = ++tl.last;
        tl.submit_point(empty, point);
        tl.wait(point);
        asio::post(io, [&] {
          const std::uint64_t t1 = now_ns();
          if (i >= warm) samples.push_back(t1 - t0);
          if (++i < warm + count)
            next();
          else
            guard.reset();
        });
      });
    }
    wake.notify_one();
  };
  asio::post(io, next);
  io.run();
  {
    std::lock_guard held(lock);
    stop = true;
  }
  wake.notify_one();
  submitter.join();
  return samples;
}

// ------------------------------------------------------------------ (b, c) throughput

constexpr std::uint32_t throughput_jobs = 2000;
constexpr std::uint32_t tile = 32;

// The same small commands for both: a 32x32 copy of a tile of its own.
std::vector<command> small_commands(const cosched::virtgpu::device& dev, const texture& from,
                                    const texture& to) {
  std::vector<command> cmds;
  cmds.reserve(throughput_jobs);
  const std::uint32_t per_row = from.width() / tile;
  for (std::uint32_t i = 0; i < throughput_jobs; ++i) {
    const std::uint32_t cell = i % (per_row * per_row);
    const std::uint32_t x = (cell % per_row) * tile, y = (cell / per_row) * tile;
    command c(dev);
    c.copy_region(to, x, y, from, region{x, y, tile, tile});
    cmds.push_back(std::move(c));
  }
  return cmds;
}

struct throughput {
  double wall_ms = 0;
  double cpu_per_job_us = 0;
  double ioctl_cpu_us = 0;   // bare loop: CPU inside EXECBUFFER per job
  double registrations = 0;  // cosched: EVENTFD registrations per job
};

throughput cosched_throughput(const cosched::virtgpu::device& dev, std::vector<command> cmds) {
  cosched::uring_context ctx;
  cosched::reactor events(ctx);
  cosched::drm::fence_source source(dev.drm(), events);
  cosched::virtgpu::ring ring(source, cosched::virtgpu::driver(dev), cosched::virtgpu::ring_options);
  cosched::scheduler<command> sched(ctx.get_executor(), ring, {.credit_limit = 64});
  std::vector<cosched::entity<command>> queues;
  queues.reserve(4);
  for (int e = 0; e < 4; ++e) queues.push_back(sched.make_entity({.name = "queue " + std::to_string(e)}));
  auto body = [](command c) -> cosched::job<command> { co_return c; };
  // Each entity's jobs in one batch (push(span) wakes the scheduler once), and
  // one wait per entity: its last job's finished fence signals after all of
  // its jobs' (push order), as the bare loop waits once for its last point.
  std::vector<std::vector<cosched::job<command>>> batches(4);
  for (std::uint32_t i = 0; i < throughput_jobs; ++i) batches[i % 4].push_back(body(std::move(cmds[i])));
  int entities_done = 0;
  throughput t;
  const std::uint64_t cpu0 = thread_cpu_ns();
  const std::uint64_t t0 = now_ns();
  for (int e = 0; e < 4; ++e) {
    auto pushed = queues[e].push(std::span(batches[e]));
    pushed.back().finished.async_wait(ctx.get_executor(), [&](std::error_code ec) {
      if (ec) die("gpu: a throughput job failed", ec.value());
      if (++entities_done == 4) ctx.stop();
    });
  }
  ctx.run();
  t.wall_ms = double(now_ns() - t0) / 1e6;
  t.cpu_per_job_us = us(thread_cpu_ns() - cpu0) / throughput_jobs;
  t.registrations = double(ring.points().registrations_made()) / throughput_jobs;
  shut_down(ctx, sched);
  return t;
}

throughput bare_throughput(const cosched::virtgpu::device& dev, std::vector<command>& cmds) {
  peer_timeline tl(dev);
  throughput t;
  std::uint64_t in_ioctl = 0;
  const std::uint64_t cpu0 = thread_cpu_ns();
  const std::uint64_t t0 = now_ns();
  for (auto& c : cmds) {
    const std::uint64_t c0 = thread_cpu_ns();
    tl.submit_point(c, ++tl.last);
    in_ioctl += thread_cpu_ns() - c0;
  }
  tl.wait(tl.last);
  t.wall_ms = double(now_ns() - t0) / 1e6;
  t.cpu_per_job_us = us(thread_cpu_ns() - cpu0) / throughput_jobs;
  t.ioctl_cpu_us = us(in_ioctl) / throughput_jobs;
  return t;
}

void row(std::FILE* out, const char* name, const latencies& l) {
  const spread a = summarize(l.p50), b = summarize(l.p99);
  std::fprintf(out, "  %-50s p50 %8.1f us [%7.1f..%7.1f]  p99 %8.1f us\n", name, a.median, a.lo, a.hi,
               b.median);
}

}  // namespace

void run_group(const config& cfg, results& res, std::FILE* out) {
  for (const char* k : keys) res.declare(k);
  std::optional<cosched::virtgpu::device> dev;
  try {
    dev = cosched::virtgpu::device::open();
  } catch (const std::system_error& e) {
    std::fprintf(out, "\n[gpu] not measured: %s\n", e.what());
    return;
  }
  const std::uint32_t warm = cfg.quick ? 5 : 20;
  const std::uint32_t count = cfg.quick ? 30 : 200;
  std::fprintf(out,
               "\n[gpu] %s on %s (%s): (a) an empty GPU job submitted -> its driver fence signals -> the job "
               "waiting on it resumes, %u samples per rep; (b) %u small GPU jobs (a 32x32 copy each) over 4 "
               "entities, wall time; (c) CPU per job; %d rep(s)\n",
               dev->drm().driver().c_str(), dev->drm().path().c_str(), dev->info().renderer.c_str(), count,
               throughput_jobs, cfg.reps);
  std::fflush(out);
  auto from = texture::create(*dev, 256, 256, texture::backing::host_only);
  auto to = texture::create(*dev, 256, 256, texture::backing::host_only);
  latencies cs, cs_asio, bare, thread;
  std::vector<double> cs_wall, bare_wall, cs_cpu, bare_cpu, ioctl_cpu, registrations;
  // Mechanisms alternate within a rep so that drifting load affects all alike.
  for (int rep = 0; rep < cfg.reps; ++rep) {
    {
      cosched_latency<cosched::uring_context> rig(*dev, warm, count);
      auto s = rig.run();
      cs.add(s);
    }
    {
      cosched_latency<asio::io_context> rig(*dev, warm, count);
      auto s = rig.run();
      cs_asio.add(s);
    }
    {
      auto s = bare_latency(*dev, warm, count);
      bare.add(s);
    }
    {
      auto s = thread_latency(cfg, *dev, warm, count);
      thread.add(s);
    }
    {
      const auto t = cosched_throughput(*dev, small_commands(*dev, from, to));
      cs_wall.push_back(t.wall_ms);
      cs_cpu.push_back(t.cpu_per_job_us);
      registrations.push_back(t.registrations);
    }
    {
      auto cmds = small_commands(*dev, from, to);
      const auto t = bare_throughput(*dev, cmds);
      bare_wall.push_back(t.wall_ms);
      bare_cpu.push_back(t.cpu_per_job_us);
      ioctl_cpu.push_back(t.ioctl_cpu_us);
    }
  }
  row(out, "(a) cosched, uring_context: job co_awaits a GPU job", cs);
  row(out, "(a) cosched, asio::io_context: same", cs_asio);
  row(out, "(a) bare loop: EXECBUFFER + SYNCOBJ_EVENTFD + io_uring", bare);
  row(out, "(a) submit thread: TIMELINE_WAIT, then post", thread);
  const spread cw = summarize(cs_wall), bw = summarize(bare_wall);
  std::fprintf(out, "  %-50s %8.1f ms [%7.1f..%7.1f]\n",
               "(b) cosched: 2000 jobs, 4 entities, credit limit 64", cw.median, cw.lo, cw.hi);
  std::fprintf(out, "  %-50s %8.1f ms [%7.1f..%7.1f]\n", "(b) bare loop: submit all, wait once", bw.median,
               bw.lo, bw.hi);
  const double cc = summarize(cs_cpu).median, bc = summarize(bare_cpu).median,
               ic = summarize(ioctl_cpu).median;
  std::fprintf(
      out,
      "  %-50s %8.1f us per job (bare loop %.1f us, of which the submit ioctl %.1f us); cosched %.2f "
      "EVENTFD registrations per job\n",
      "(c) CPU of the submitting thread", cc, bc, ic, summarize(registrations).median);
  std::fflush(out);
  res.set("gpu_latency_p50_us", summarize(cs.p50).median);
  res.set("gpu_latency_p99_us", summarize(cs.p99).median);
  res.set("gpu_asio_latency_p50_us", summarize(cs_asio.p50).median);
  res.set("gpu_bare_latency_p50_us", summarize(bare.p50).median);
  res.set("gpu_bare_latency_p99_us", summarize(bare.p99).median);
  res.set("gpu_thread_latency_p50_us", summarize(thread.p50).median);
  res.set("gpu_thread_latency_p99_us", summarize(thread.p99).median);
  res.set("gpu_throughput_ms", cw.median);
  res.set("gpu_bare_throughput_ms", bw.median);
  res.set("gpu_cpu_per_job_us", cc);
  res.set("gpu_bare_cpu_per_job_us", bc);
  res.set("gpu_submit_ioctl_cpu_us", ic);
  res.set("gpu_registrations_per_job", summarize(registrations).median);
}

}  // namespace cosched_bench::gpu
