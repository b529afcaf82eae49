// cosched-bench group "wake": a device's eventfd write to the waiting job resumed,
// cosched against a bare io_uring loop and a waiter thread per queue. See bench_wake.hpp.
#include "bench_wake.hpp"

#include <liburing.h>
#include <poll.h>

#include <atomic>
#include <coroutine>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include "bench_ring.hpp"
#include "bench_util.hpp"
#include "cosched/entity.hpp"
#include "cosched/job.hpp"
#include "cosched/reactor.hpp"
#include "cosched/scheduler.hpp"
#include "cosched/uring_context.hpp"

namespace cosched_bench::wake {
namespace {

struct pingpong {
  pingpong(bool nonblocking_signal, std::uint32_t warm_up, std::uint32_t sample_count)
      : sig_fd(make_eventfd(nonblocking_signal)),
        ack_fd(make_eventfd(false)),
        warm(warm_up),
        samples(sample_count) {
    one_way.reserve(samples);
    rtt.reserve(samples);
  }
  ~pingpong() {
    ::close(sig_fd);
    ::close(ack_fd);
  }
  pingpong(const pingpong&) = delete;
  pingpong& operator=(const pingpong&) = delete;

  std::uint32_t total() const { return warm + samples; }
  // Waiting side, on resumption.
  void resumed(std::uint64_t t) {
    // acquire: pairs with the device's release; the eventfd write/read already
    // orders it, but the atomic keeps the hand-off visible to the compiler too.
    if (seen >= warm) one_way.push_back(t - stamp.load(std::memory_order_acquire));
    ++seen;
  }
  bool done() const { return seen >= total(); }

  void device(const config& cfg) {
    pin_to(cfg, 1);
    for (std::uint32_t i = 0; i < total(); ++i) {
      sleepers.wait_until_asleep();
      const std::uint64_t t0 = now_ns();
      stamp.store(t0, std::memory_order_release);
      fd_signal(sig_fd);
      fd_wait(ack_fd);
      if (i >= warm) rtt.push_back(now_ns() - t0);
    }
  }

  const int sig_fd;
  const int ack_fd;
  const std::uint32_t warm;
  const std::uint32_t samples;
  alignas(64) std::atomic<std::uint64_t> stamp{0};
  alignas(64) std::uint32_t seen = 0;  // waiting side only
  std::vector<std::uint64_t> one_way;  // waiting side only
  std::vector<std::uint64_t> rtt;      // device only
  sleep_probe sleepers;                // the waiting side's threads; device only once it runs
};

// ------------------------------------------------------------------ cosched

// Context: asio::io_context (the reactor's eventfd waited for by Asio's epoll) or
// cosched::uring_context (the loop waits in io_uring_enter).
template <class Context>
struct cosched_rig {
  explicit cosched_rig(pingpong& p)
      : pp(p),
        reactor(ctx),
        sched(ctx.get_executor(), ring, {.credit_limit = 1u << 20}),
        queue(sched.make_entity({.name = "wake"})) {}
  static Context make_context() {
    if constexpr (std::is_same_v<Context, asio::io_context>)
      return Context(1);
    else
      return Context();
  }
  pingpong& pp;
  Context ctx = make_context();
  cosched::reactor reactor;
  finished_ring ring;
  cosched::scheduler<command> sched;
  cosched::entity<command> queue;
};

template <class Context>
cosched::job<command> waiting_job(cosched::fence hardware, cosched_rig<Context>* rig) {
  // try_wait: the same wait as `co_await hardware`, but a failed poll ends the
  // run with a message instead of leaving the device blocked forever.
  if (auto ec = co_await cosched::try_wait(hardware)) die("wake: reactor wait failed", ec.value());
  rig->pp.resumed(now_ns());
  fd_drain(rig->pp.sig_fd);
  if (!rig->pp.done()) {
    rig->queue.push(waiting_job(rig->reactor.wait_readable(rig->pp.sig_fd), rig));
  } else {
    rig->ctx.stop();
  }
  fd_signal(rig->pp.ack_fd);
  co_return command{0};
}

template <class Context>
void run_cosched(const config& cfg, pingpong& pp) {
  cosched_rig<Context> rig(pp);
  rig.queue.push(waiting_job(rig.reactor.wait_readable(pp.sig_fd), &rig));
  pp.sleepers.watch(current_tid());
  std::thread device([&] { pp.device(cfg); });
  rig.ctx.run();
  device.join();
  auto down = rig.sched.shutdown();
  rig.ctx.restart();
  while (!down.signalled()) rig.ctx.poll();
}

// ------------------------------------------------------------------ raw io_uring

struct raw_uring_rig {
  raw_uring_rig(pingpong& p, unsigned flags) : pp(p) {
    io_uring_params params{};
    params.flags = flags;
    const int rc = io_uring_queue_init_params(8, &ring, &params);
    if (rc < 0) die("wake: io_uring_queue_init_params", -rc);
  }
  ~raw_uring_rig() { io_uring_queue_exit(&ring); }
  raw_uring_rig(const raw_uring_rig&) = delete;
  raw_uring_rig& operator=(const raw_uring_rig&) = delete;

  void arm() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_poll_add(sqe, pp.sig_fd, POLLIN);
    io_uring_sqe_set_data64(sqe, 1);
  }
  void run() {
    while (!pp.done()) {
      const int rc = io_uring_submit_and_wait(&ring, 1);
      if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) die("wake: io_uring_submit_and_wait", -rc);
      unsigned head, n = 0;
      io_uring_cqe* cqe;
      io_uring_for_each_cqe(&ring, head, cqe) {
        ++n;
        if (cqe->res < 0) die("wake: poll completion", -cqe->res);
      }
      io_uring_cq_advance(&ring, n);
      if (n && waiter) std::exchange(waiter, {}).resume();
    }
  }

  pingpong& pp;
  io_uring ring{};
  std::coroutine_handle<> waiter;
};

detached raw_consumer(raw_uring_rig& rig) {
  rig.arm();
  for (;;) {
    co_await park{rig.waiter};
    rig.pp.resumed(now_ns());
    fd_drain(rig.pp.sig_fd);
    const bool last = rig.pp.done();
    if (!last) rig.arm();
    fd_signal(rig.pp.ack_fd);
    if (last) co_return;
  }
}

void run_raw_uring(const config& cfg, pingpong& pp, unsigned flags) {
  raw_uring_rig rig(pp, flags);
  raw_consumer(rig);
  pp.sleepers.watch(current_tid());
  std::thread device([&] { pp.device(cfg); });
  rig.run();
  device.join();
}

// ------------------------------------------------------------------ thread per queue

struct thread_rig {
  explicit thread_rig(pingpong& p) : pp(p) {}
  pingpong& pp;
  asio::io_context ctx{1};
  std::coroutine_handle<> waiter;
  std::atomic<bool> stopping{false};
};

detached posted_consumer(thread_rig& rig) {
  for (;;) {
    co_await park{rig.waiter};
    rig.pp.resumed(now_ns());
    const bool last = rig.pp.done();
    if (last) rig.ctx.stop();
    fd_signal(rig.pp.ack_fd);
    if (last) co_return;
  }
}

void run_thread_per_queue(const config& cfg, pingpong& pp) {
  thread_rig rig(pp);
  auto keep_running = asio::make_work_guard(rig.ctx);
  posted_consumer(rig);
  std::atomic<pid_t> waiter_tid{0};
  std::thread waiter([&] {
    unpin(cfg);
    waiter_tid.store(current_tid(), std::memory_order_release);
    for (;;) {
      fd_wait(pp.sig_fd);  // the blocking read consumes the signal
      // acquire: pairs with the release below; the eventfd write orders it too.
      if (rig.stopping.load(std::memory_order_acquire)) break;
      asio::post(rig.ctx, [&rig] {
        if (rig.waiter) std::exchange(rig.waiter, {}).resume();
      });
    }
  });
  pp.sleepers.watch(current_tid());
  backoff b;
  while (waiter_tid.load(std::memory_order_acquire) == 0) b.pause();
  pp.sleepers.watch(waiter_tid.load(std::memory_order_acquire));
  std::thread device([&] { pp.device(cfg); });
  rig.ctx.run();
  device.join();
  rig.stopping.store(true, std::memory_order_release);
  fd_signal(pp.sig_fd);
  waiter.join();
}

// ------------------------------------------------------------------ the group

struct figures {
  std::vector<double> p50, p99, rtt50;
  std::uint64_t awake = 0;  // signals sent while the waiting side was not asleep
  void add(pingpong& pp) {
    if (pp.one_way.size() != pp.samples) die("wake: lost samples");
    awake += pp.sleepers.awake;
    p50.push_back(percentile(pp.one_way, 50) / 1e3);
    p99.push_back(percentile(pp.one_way, 99) / 1e3);
    rtt50.push_back(percentile(pp.rtt, 50) / 1e3);
  }
};

void print_row(std::FILE* out, const char* name, const figures& f) {
  const spread a = summarize(f.p50), b = summarize(f.p99), r = summarize(f.rtt50);
  std::fprintf(out,
               "  %-44s one-way p50 %6.2f us [%5.2f..%5.2f]  p99 %7.2f us [%6.2f..%6.2f]  RTT p50 %6.2f us\n",
               name, a.median, a.lo, a.hi, b.median, b.lo, b.hi, r.median);
  if (f.awake)
    std::fprintf(out, "  %-44s (%llu signals found it awake after 5 ms)\n", "",
                 static_cast<unsigned long long>(f.awake));
}

}  // namespace

void run_group(const config& cfg, results& res, std::FILE* out) {
  const std::uint32_t warm = cfg.quick ? 50 : 200;
  const std::uint32_t samples = cfg.quick ? 300 : 3000;
  std::fprintf(out,
               "\n[wake] device write(eventfd) -> waiting coroutine/job body resumed; scheduler asleep; "
               "ping-pong,\n"
               "       %u samples (+%u warm-up) per rep, %d rep(s); medians of per-rep p50/p99 [min..max]\n",
               samples, warm, cfg.reps);
  std::fflush(out);
  constexpr unsigned defer = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  figures cs, cs_asio, raw, raw_defer, tpq;
  // Mechanisms alternate within a rep so that drifting load affects all alike.
  for (int rep = 0; rep < cfg.reps; ++rep) {
    {
      pingpong pp(true, warm, samples);
      run_cosched<cosched::uring_context>(cfg, pp);
      cs.add(pp);
    }
    {
      pingpong pp(true, warm, samples);
      run_cosched<asio::io_context>(cfg, pp);
      cs_asio.add(pp);
    }
    {
      pingpong pp(true, warm, samples);
      run_raw_uring(cfg, pp, 0);
      raw.add(pp);
    }
    {
      pingpong pp(true, warm, samples);
      run_raw_uring(cfg, pp, defer);
      raw_defer.add(pp);
    }
    {
      pingpong pp(false, warm, samples);
      run_thread_per_queue(cfg, pp);
      tpq.add(pp);
    }
  }
  print_row(out, "cosched, uring_context: job co_awaits fence", cs);
  print_row(out, "cosched, asio::io_context: same", cs_asio);
  print_row(out, "raw io_uring POLL_ADD loop (floor)", raw);
  print_row(out, "  raw + SINGLE_ISSUER|DEFER_TASKRUN (ref.)", raw_defer);
  print_row(out, "thread per queue: read() -> asio::post", tpq);
  std::fflush(out);
  res.set("wake_p50_us", summarize(cs.p50).median);
  res.set("wake_p99_us", summarize(cs.p99).median);
  res.set("wake_asio_p50_us", summarize(cs_asio.p50).median);
  res.set("wake_asio_p99_us", summarize(cs_asio.p99).median);
  res.set("raw_uring_wake_p50_us", summarize(raw.p50).median);
  res.set("raw_uring_wake_p99_us", summarize(raw.p99).median);
  res.set("raw_uring_defer_wake_p50_us", summarize(raw_defer.p50).median);
  res.set("thread_per_queue_wake_p50_us", summarize(tpq.p50).median);
  res.set("thread_per_queue_wake_p99_us", summarize(tpq.p99).median);
}

}  // namespace cosched_bench::wake
