// cosched-bench group "inflight": scheduler-thread CPU per completion with N fences
// in flight, cosched against poll() and a bare io_uring loop. See bench_inflight.hpp.
#include "bench_inflight.hpp"

#include <liburing.h>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <coroutine>
#include <random>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>
#include <asio/io_context.hpp>

#include "bench_util.hpp"
#include "cosched/entity.hpp"
#include "cosched/job.hpp"
#include "cosched/log.hpp"
#include "cosched/reactor.hpp"
#include "cosched/ring.hpp"
#include "cosched/scheduler.hpp"
#include "cosched/uring_context.hpp"

namespace cosched_bench::inflight {
namespace {

struct run_plan {
  std::size_t n = 1;
  std::uint32_t warm = 1;   // completions before the measured ones
  std::uint32_t count = 1;  // measured completions
  std::uint32_t seed = 1;
  std::uint32_t total() const { return warm + count; }
};

struct measurement {
  double cpu_us = 0;        // scheduler-thread CPU per completion
  double wall_us = 0;       // wall time per completion
  double submits = 0;       // io_uring_enter calls made to submit, per completion (cosched only)
  std::uint64_t awake = 0;  // signals sent while the scheduler thread was not asleep
};

// The device, the same for every mechanism.
struct device_link {
  alignas(64) std::atomic<std::uint64_t> consumed{0};
  sleep_probe scheduler;  // the scheduler thread, watched by the device

  void run(const config& cfg, const std::vector<int>& fds, const run_plan& plan) {
    pin_to(cfg, 1);
    std::mt19937 rng(plan.seed);
    for (std::uint64_t k = 0; k < plan.total(); ++k) {
      const int fd = fds[rng() % plan.n];
      scheduler.wait_until_asleep();
      fd_signal(fd);
      backoff b;
      // acquire: pairs with the consumer's release after it reset the eventfd.
      while (consumed.load(std::memory_order_acquire) < k + 1) b.pause();
    }
  }
};

// Scheduler-thread bookkeeping of a run: when the warm-up ends and when the
// last measured completion is consumed.
struct window {
  std::uint64_t completed = 0;
  std::uint64_t cpu0 = 0, cpu1 = 0, wall0 = 0, wall1 = 0, submits0 = 0, submits1 = 0;

  // Returns true when the run is complete.
  bool on_completion(const run_plan& plan, device_link& link, std::uint64_t submits) {
    ++completed;
    if (completed == plan.warm) {
      cpu0 = thread_cpu_ns();
      wall0 = now_ns();
      submits0 = submits;
    }
    const bool last = completed == plan.total();
    if (last) {
      cpu1 = thread_cpu_ns();
      wall1 = now_ns();
      submits1 = submits;
    }
    // release: the eventfd was reset before the device may signal it again.
    link.consumed.store(completed, std::memory_order_release);
    return last;
  }
  measurement result(const run_plan& plan) const {
    const double k = plan.count;
    return {double(cpu1 - cpu0) / 1e3 / k, double(wall1 - wall0) / 1e3 / k, double(submits1 - submits0) / k};
  }
};

// ------------------------------------------------------------------ cosched

struct slot_command {
  std::uint32_t slot;
};

template <class Context>
class cosched_rig;

template <class Context>
class eventfd_ring final : public cosched::ring<slot_command> {
 public:
  explicit eventfd_ring(cosched_rig<Context>& rig) : rig_(rig) {}
  cosched::fence run(slot_command& cmd) override { return rig_.arm(cmd.slot); }
  // The commands reference nothing; the polls that are still armed end with
  // the reactor.
  void cancel_all() noexcept override {}

 private:
  cosched_rig<Context>& rig_;
};

cosched::job<slot_command> slot_job(std::uint32_t slot) { co_return slot_command{slot}; }

// Context: asio::io_context (the reactor's eventfd waited for by Asio's epoll) or
// cosched::uring_context (the loop waits in io_uring_enter).
template <class Context>
class cosched_rig {
 public:
  cosched_rig(const std::vector<int>& fds, const run_plan& plan, device_link& link)
      : fds_(fds),
        plan_(plan),
        link_(link),
        reactor_(ctx_),
        ring_(*this),
        sched_(ctx_.get_executor(), ring_, {.credit_limit = 1u << 20}),
        queue_(sched_.make_entity({.name = "ring"})) {}

  measurement run(const config& cfg) {
    for (std::uint32_t slot = 0; slot < plan_.n; ++slot) queue_.push(slot_job(slot));
    link_.scheduler.watch(current_tid());
    std::thread device([&] { link_.run(cfg, fds_, plan_); });
    ctx_.run();
    device.join();
    // The measurement ends with every slot's command in flight, by design:
    // the shutdown that cancels them is expected, and not worth its warning.
    const auto logger = cosched::logger();
    const auto level = logger->level();
    logger->set_level(std::max(level, spdlog::level::err));
    auto down = sched_.shutdown(std::chrono::nanoseconds(0));
    ctx_.restart();
    while (!down.signalled()) ctx_.poll();
    logger->set_level(level);
    measurement m = window_.result(plan_);
    m.awake = link_.scheduler.awake;
    return m;
  }

  cosched::fence arm(std::uint32_t slot) {
    cosched::fence hardware = reactor_.wait_readable(fds_[slot]);
    hardware.async_wait(ctx_.get_executor(), [this, slot](std::error_code ec) {
      if (ec) {
        if (ec == cosched::make_error_code(cosched::errc::broken))
          return;  // the reactor went first at teardown
        die("inflight: reactor wait failed", ec.value());
      }
      on_completion(slot);
    });
    return hardware;
  }

 private:
  void on_completion(std::uint32_t slot) {
    fd_drain(fds_[slot]);
    queue_.push(slot_job(slot));
    if (window_.on_completion(plan_, link_, enter_calls())) ctx_.stop();
  }

  // io_uring_enter calls: submissions (io_context: its waits are epoll's), or
  // every enter of the uring_context's loop, waits included.
  std::uint64_t enter_calls() const {
    if constexpr (std::is_same_v<Context, cosched::uring_context>)
      return ctx_.enter_calls();
    else
      return reactor_.submit_calls();
  }
  static Context make_context() {
    if constexpr (std::is_same_v<Context, asio::io_context>)
      return Context(1);
    else
      return Context();
  }

  const std::vector<int>& fds_;
  run_plan plan_;
  device_link& link_;
  window window_;
  Context ctx_ = make_context();
  cosched::reactor reactor_;
  eventfd_ring<Context> ring_;
  cosched::scheduler<slot_command> sched_;
  cosched::entity<slot_command> queue_;
};

// ------------------------------------------------------------------ poll() over all fds

class poll_rig {
 public:
  poll_rig(const std::vector<int>& fds, const run_plan& plan, device_link& link)
      : fds_(fds), plan_(plan), link_(link), waiters_(plan.n) {
    pfds_.reserve(plan.n);
    for (std::size_t i = 0; i < plan.n; ++i) pfds_.push_back(pollfd{fds[i], POLLIN, 0});
  }
  ~poll_rig() {
    for (auto& h : waiters_)
      if (h) h.destroy();
  }
  poll_rig(const poll_rig&) = delete;
  poll_rig& operator=(const poll_rig&) = delete;

  measurement run(const config& cfg) {
    for (std::uint32_t slot = 0; slot < plan_.n; ++slot) consumer(slot);
    link_.scheduler.watch(current_tid());
    std::thread device([&] { link_.run(cfg, fds_, plan_); });
    bool finished = false;
    while (!finished) {
      int ready = ::poll(pfds_.data(), nfds_t(pfds_.size()), -1);
      if (ready < 0) {
        if (errno == EINTR) continue;
        die("inflight: poll", errno);
      }
      for (std::size_t i = 0; ready > 0 && i < pfds_.size(); ++i) {
        if (!pfds_[i].revents) continue;
        --ready;
        if (auto h = std::exchange(waiters_[i], {})) h.resume();
        finished = finished || window_.completed >= plan_.total();
      }
    }
    device.join();
    measurement m = window_.result(plan_);
    m.awake = link_.scheduler.awake;
    return m;
  }

 private:
  detached consumer(std::uint32_t slot) {
    for (;;) {
      co_await park{waiters_[slot]};
      fd_drain(fds_[slot]);
      window_.on_completion(plan_, link_, 0);
    }
  }

  const std::vector<int>& fds_;
  run_plan plan_;
  device_link& link_;
  window window_;
  std::vector<std::coroutine_handle<>> waiters_;
  std::vector<pollfd> pfds_;
};

// ------------------------------------------------------------------ bare io_uring

class uring_rig {
 public:
  uring_rig(const std::vector<int>& fds, const run_plan& plan, device_link& link)
      : fds_(fds), plan_(plan), link_(link), waiters_(plan.n) {
    const unsigned n = unsigned(plan.n);
    const unsigned sq = std::clamp(n, 64u, 4096u);
    io_uring_params params{};
    params.flags = IORING_SETUP_CQSIZE;
    params.cq_entries = 2 * std::max(sq, n);
    const int rc = io_uring_queue_init_params(sq, &ring_, &params);
    if (rc < 0) die("inflight: io_uring_queue_init_params", -rc);
    ready_.reserve(plan.n);
  }
  ~uring_rig() {
    for (auto& h : waiters_)
      if (h) h.destroy();
    io_uring_queue_exit(&ring_);
  }
  uring_rig(const uring_rig&) = delete;
  uring_rig& operator=(const uring_rig&) = delete;

  measurement run(const config& cfg) {
    for (std::uint32_t slot = 0; slot < plan_.n; ++slot) {
      consumer(slot);
      arm(slot);
    }
    link_.scheduler.watch(current_tid());
    std::thread device([&] { link_.run(cfg, fds_, plan_); });
    while (window_.completed < plan_.total()) {
      const int rc = io_uring_submit_and_wait(&ring_, 1);
      if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
        die("inflight: io_uring_submit_and_wait", -rc);
      unsigned head, n = 0;
      io_uring_cqe* cqe;
      ready_.clear();
      io_uring_for_each_cqe(&ring_, head, cqe) {
        ++n;
        if (cqe->res < 0) die("inflight: poll completion", -cqe->res);
        ready_.push_back(std::uint32_t(io_uring_cqe_get_data64(cqe)));
      }
      io_uring_cq_advance(&ring_, n);
      for (std::uint32_t slot : ready_)
        if (auto h = std::exchange(waiters_[slot], {})) h.resume();
    }
    device.join();
    measurement m = window_.result(plan_);
    m.awake = link_.scheduler.awake;
    return m;
  }

 private:
  void arm(std::uint32_t slot) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (!sqe) {
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    io_uring_prep_poll_add(sqe, fds_[slot], POLLIN);
    io_uring_sqe_set_data64(sqe, slot);
  }

  detached consumer(std::uint32_t slot) {
    for (;;) {
      co_await park{waiters_[slot]};
      fd_drain(fds_[slot]);
      arm(slot);
      window_.on_completion(plan_, link_, 0);
    }
  }

  const std::vector<int>& fds_;
  run_plan plan_;
  device_link& link_;
  window window_;
  std::vector<std::coroutine_handle<>> waiters_;
  std::vector<std::uint32_t> ready_;
  io_uring ring_{};
};

// ------------------------------------------------------------------ the group

}  // namespace

void run_group(const config& cfg, results& res, std::FILE* out) {
  const std::size_t max_n = sizes[std::size(sizes) - 1];
  const rlim_t limit = raise_nofile(max_n + 256);
  std::fprintf(
      out,
      "\n[inflight] scheduler-thread CPU per completion, N fences in flight, one random fence "
      "signalled at a time;\n"
      "           %d rep(s), medians [min..max]; wall = device signal-to-signal time per completion\n",
      cfg.reps);
  std::fflush(out);
  std::vector<int> fds;
  for (std::size_t i = 0; i < max_n && i + 64 < limit; ++i) fds.push_back(make_eventfd(true));

  // One mechanism's samples at one N, a sample per rep.
  struct series {
    std::vector<double> cpu, wall, submits;
  };
  struct row {
    series uring, asio, raw, poll;
    std::uint64_t awake = 0;
  };
  std::vector<row> rows(std::size(sizes));
  // Runs one mechanism (a rig type) over the first n fences, from drained fds.
  auto measure = [&]<class Rig>(std::type_identity<Rig>, std::size_t n, const run_plan& plan, series& into,
                                row& r) {
    for (std::size_t i = 0; i < n; ++i) fd_drain(fds[i]);
    device_link link;
    Rig rig(fds, plan, link);
    const measurement m = rig.run(cfg);
    into.cpu.push_back(m.cpu_us);
    into.wall.push_back(m.wall_us);
    into.submits.push_back(m.submits);
    r.awake += m.awake;
  };
  for (int rep = 0; rep < cfg.reps; ++rep) {
    for (std::size_t s = 0; s < std::size(sizes); ++s) {
      const std::size_t n = sizes[s];
      if (n > fds.size()) continue;
      // Every mechanism gets the same sequence of fences in a rep.
      const std::uint32_t seed = 1234u + std::uint32_t(rep);
      const run_plan plan{n, cfg.quick ? 20u : 50u, cfg.quick ? 150u : 600u, seed};
      measure(std::type_identity<cosched_rig<cosched::uring_context>>{}, n, plan, rows[s].uring, rows[s]);
      measure(std::type_identity<cosched_rig<asio::io_context>>{}, n, plan, rows[s].asio, rows[s]);
      measure(std::type_identity<uring_rig>{}, n, plan, rows[s].raw, rows[s]);
      // poll() costs O(N) per wake-up (about 1 ms at 8192): fewer samples there.
      const std::uint32_t budget = cfg.quick ? 16384 : 65536;
      const auto count =
          std::clamp<std::uint32_t>(budget / std::uint32_t(n), cfg.quick ? 30 : 60, cfg.quick ? 150 : 600);
      measure(std::type_identity<poll_rig>{}, n, run_plan{n, cfg.quick ? 5u : 10u, count, seed}, rows[s].poll,
              rows[s]);
    }
  }
  for (int fd : fds) ::close(fd);

  std::fprintf(out, "  %-6s %-48s %-42s %-26s %s\n", "N", "cosched, uring_context (ring N deep, reactor)",
               "cosched, asio::io_context", "raw io_uring (floor)", "poll() over all N (peer)");
  for (std::size_t s = 0; s < std::size(sizes); ++s) {
    const std::size_t n = sizes[s];
    // Appended piecewise: g++ 12 -O3 warns (-Wrestrict, a false positive) on "literal" + std::string.
    auto key = [n](const char* prefix) {
      std::string k(prefix);
      k += '_';
      k += std::to_string(n);
      return k;
    };
    if (rows[s].uring.cpu.empty()) {
      std::fprintf(out, "  %-6zu not run: RLIMIT_NOFILE allows only %zu eventfds\n", n, fds.size());
      continue;
    }
    const row& r = rows[s];
    const spread c = summarize(r.uring.cpu), w = summarize(r.uring.wall), sub = summarize(r.uring.submits);
    const spread ac = summarize(r.asio.cpu), aw = summarize(r.asio.wall), asub = summarize(r.asio.submits);
    const spread rc = summarize(r.raw.cpu), rw = summarize(r.raw.wall);
    const spread pc = summarize(r.poll.cpu), pw = summarize(r.poll.wall);
    std::fprintf(out,
                 "  %-6zu cpu %6.2f us [%5.2f..%5.2f] wall %6.2f, %.2f enter/c  "
                 "cpu %6.2f us wall %6.2f, %.2f submit/c  cpu %5.2f us wall %6.2f  "
                 "cpu %8.2f us [%7.2f..%7.2f] wall %8.2f\n",
                 n, c.median, c.lo, c.hi, w.median, sub.median, ac.median, aw.median, asub.median, rc.median,
                 rw.median, pc.median, pc.lo, pc.hi, pw.median);
    if (r.awake)
      std::fprintf(out, "         (%llu signals found the scheduler awake after 5 ms)\n",
                   static_cast<unsigned long long>(r.awake));
    res.set(key("inflight_cpu_us"), c.median);
    res.set(key("inflight_wall_us"), w.median);
    res.set(key("inflight_asio_cpu_us"), ac.median);
    res.set(key("raw_uring_inflight_cpu_us"), rc.median);
    res.set(key("poll_inflight_cpu_us"), pc.median);
    res.set(key("poll_inflight_wall_us"), pw.median);
  }
  std::fflush(out);
}

}  // namespace cosched_bench::inflight
