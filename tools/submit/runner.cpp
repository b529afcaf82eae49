// The graph runner: pushes and actions (kills, ring sets) are timed events (on
// the virtual clock, or on a steady timer in real time); the scheduler and job coroutines do the rest,
// on the sim backend's rings, the drm backend's host rings or real GPU work
// (virtgpu's calibrated rings).
#include "submit/runner.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <iomanip>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <span>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <unordered_map>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "cosched/cosched.hpp"
#include "cosched/drm/fence_source.hpp"
#include "cosched/drm/host_ring.hpp"
#include "cosched/reactor.hpp"
#include "cosched/sim/real_ring.hpp"
#include "cosched/sim/sim_ring.hpp"
#include "cosched/virtgpu/calibrated_ring.hpp"
#include "submit/stats.hpp"

namespace cosched::submit {
namespace {

using sim_job = job<sim::command>;

// The body of every graph job, run once the scheduler has waited through its
// declared dependencies (the graph's `deps`, in order): hand over the command
// (or throw, for the fault "throw:<message>").
sim_job graph_job(sim::command cmd, const fault_spec* throws) {
  if (throws) throw std::runtime_error(std::string(throws->throw_message()));
  co_return cmd;
}

sim::fault to_sim(const fault_spec& f) {
  switch (f.kind) {
    case fault_kind::none: return sim::fault::none();
    case fault_kind::error: return sim::fault::error(f.errno_value);
    case fault_kind::hang: return sim::fault::hang();
    case fault_kind::slow: return sim::fault::slow(f.slow_us);
    case fault_kind::body_throws: return sim::fault::none();  // the command is never made
  }
  return sim::fault::none();
}

std::string json_string(std::string_view text) { return nlohmann::json(std::string(text)).dump(); }

scheduling_policy scheduling_policy_of(policy_kind p) {
  switch (p) {
    case policy_kind::fifo: return scheduling_policy::fifo;
    case policy_kind::rr: return scheduling_policy::rr;
    case policy_kind::fair: return scheduling_policy::fair;
    case policy_kind::deadline: return scheduling_policy::deadline;
  }
  return scheduling_policy::fifo;
}

std::string signal_name(int signal) {
  return signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "signal " + std::to_string(signal);
}

std::string unit_name(const virtgpu::calibration& c) {
  return std::to_string(c.unit_side) + "x" + std::to_string(c.unit_side) + " copy";
}

// How many jobs were verified right, wrong, and not at all.
std::array<std::size_t, 3> verified_counts(const run_outcome& outcome) {
  std::array<std::size_t, 3> counts{};
  for (const auto& v : outcome.verified) ++counts[v ? (*v ? 0 : 1) : 2];
  return counts;
}

// How the failed jobs failed: by themselves (cause null: their own fault or
// timeout, a kill, shutdown) or by cascade (cause another job: a failed
// dependency, a ban or ring close); and how many jobs have a fault of their own,
// and of those how many failed by cascade before it could act.
struct failure_counts {
  std::size_t by_itself = 0;
  std::size_t by_cascade = 0;
  std::size_t with_fault = 0;
  std::size_t with_fault_by_cascade = 0;
};

failure_counts count_failures(const graph& g, const run_outcome& outcome) {
  failure_counts counts;
  for (std::size_t i = 0; i < g.jobs.size(); ++i) {
    const auto& result = outcome.jobs[i];
    const bool cascade = !result.error.empty() && result.cause.has_value();
    if (!result.error.empty()) ++(cascade ? counts.by_cascade : counts.by_itself);
    if (g.jobs[i].fault.kind == fault_kind::none) continue;
    ++counts.with_fault;
    if (cascade) ++counts.with_fault_by_cascade;
  }
  return counts;
}

template <class Ring>
std::vector<ring_run> logs_of(const std::vector<std::unique_ptr<Ring>>& rings) {
  std::vector<ring_run> runs;
  for (std::size_t r = 0; r < rings.size(); ++r)
    for (const auto& record : rings[r]->log()) runs.push_back({r, record});
  return runs;
}

// Virtual time: events on the virtual clock, the io_context run to idleness
// between instants. On the drm backend the reactor has an io_context of its
// own, which drm::virtual_time runs (alone) inside the clock's completion
// events until the kernel's signal has come back.
class virtual_driver {
 public:
  virtual_driver(asio::io_context& ctx, const run_options& options)
      : ctx_(ctx), timers_(clock_), progress_(options.progress) {
    if (options.backend == backend_kind::drm) kernel_.emplace(options.device, clock_);
  }
  // After each push and each finish: a long run reports its progress every
  // progress_interval of wall time (the clock is read every 256th call only).
  void tick() {
    if (!progress_ || ++ticks_ % 256 != 0) return;
    const auto now = std::chrono::steady_clock::now();
    if (now < next_report_) return;
    if (next_report_ != std::chrono::steady_clock::time_point{}) progress_(counts_);
    next_report_ = now + progress_interval;
  }
  ring<sim::command>& make_ring() {
    if (kernel_)
      return *drm_rings_.emplace_back(std::make_unique<drm::host_ring>(kernel_->source, kernel_->time));
    return *sim_rings_.emplace_back(std::make_unique<sim::virtual_ring>(clock_));
  }
  timer_service* timers() { return &timers_; }
  sim::time_us now() const { return clock_.now(); }
  run_progress counts_;
  void at(sim::time_us when, sim::phase p, std::function<void()> fn) { clock_.at(when, p, std::move(fn)); }
  // Runs until nothing is pending; returns whether jobs are left ("nothing left to do").
  template <class Done>
  void run(Done&&) { clock_.run(ctx_); }
  template <class Done>
  void finish(Done&&) { clock_.run(ctx_); }
  std::vector<ring_run> log() const { return kernel_ ? logs_of(drm_rings_) : logs_of(sim_rings_); }
  std::size_t ring_count() const { return kernel_ ? drm_rings_.size() : sim_rings_.size(); }

 private:
  // The drm backend's side: the reactor on its own io_context, the fence source.
  struct drm_kernel {
    drm_kernel(const drm::device& dev, sim::virtual_clock& clock)
        : events(context), source(dev, events), time(clock, context) {}
    asio::io_context context{1};
    reactor events;
    drm::fence_source source;
    drm::virtual_time time;
  };

  static constexpr std::chrono::milliseconds progress_interval{500};

  asio::io_context& ctx_;
  sim::virtual_clock clock_;
  sim::virtual_timers timers_;
  std::function<void(const run_progress&)> progress_;
  std::uint64_t ticks_ = 0;
  // The first report is due one interval after the first look at the clock.
  std::chrono::steady_clock::time_point next_report_{};
  std::optional<drm_kernel> kernel_;  // outlives the rings
  std::vector<std::unique_ptr<sim::virtual_ring>> sim_rings_;
  std::vector<std::unique_ptr<drm::host_ring>> drm_rings_;
};

// Real time: the same events on a steady timer; a device thread executes each
// ring. sim: the reactor polls the ring's eventfd; drm: the ring signals its
// timeline syncobj and the fence source's EVENTFD registrations come back
// through the reactor, on this io_context; virtgpu: the GPU executes each
// command as calibrated work and its driver signals the ring's timeline.
class real_driver {
 public:
  real_driver(asio::io_context& ctx, const graph& g, const run_options& options)
      : ctx_(ctx),
        reactor_(ctx),
        workload_(calibrated_workload(g, options)),
        epoch_(std::chrono::steady_clock::now()),
        timer_(ctx),
        watchdog_(ctx),
        progress_(options.progress) {
    if (options.stop_on_signals) {
      signals_.emplace(ctx, SIGINT, SIGTERM);
      signals_->async_wait([this](std::error_code ec, int signal) {
        if (!ec) interrupted_by_ = signal;
      });
    }
    if (options.backend == backend_kind::drm) source_.emplace(options.device, reactor_);
    if (options.backend == backend_kind::virtgpu) source_.emplace(options.gpu.drm(), reactor_);
  }
  ~real_driver() {
    // Rings stop their device threads on the io_context's thread (this one).
    sim_rings_.clear();
    drm_rings_.clear();
    gpu_rings_.clear();
  }
  ring<sim::command>& make_ring() {
    if (workload_)
      return *gpu_rings_.emplace_back(std::make_unique<virtgpu::calibrated_ring>(*workload_, *source_, epoch_));
    if (source_)
      return *drm_rings_.emplace_back(std::make_unique<drm::host_ring>(*source_, reactor_, epoch_));
    return *sim_rings_.emplace_back(std::make_unique<sim::real_ring>(reactor_, epoch_));
  }
  // virtgpu: the GPU work of the run, calibrated (which blocks briefly) before
  // the run's time starts.
  static std::unique_ptr<virtgpu::workload> calibrated_workload(const graph& g, const run_options& options) {
    if (options.backend != backend_kind::virtgpu) return nullptr;
    auto w = std::make_unique<virtgpu::workload>(options.gpu, g.jobs.size(), options.verify);
    w->calibrate();
    return w;
  }
  // virtgpu: what the outcome reports of the GPU (after the run).
  void describe_gpu(run_outcome& outcome) const {
    if (!workload_) return;
    outcome.renderer = workload_->get_device().info().renderer;
    outcome.calibration = workload_->measured();
    if (workload_->verifying()) outcome.verified = workload_->verify();
  }
  timer_service* timers() { return nullptr; }  // steady timers on the executor
  sim::time_us now() const {
    return static_cast<sim::time_us>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - epoch_).count());
  }
  void at(sim::time_us when, sim::phase p, std::function<void()> fn) {
    events_.emplace(std::make_tuple(when, static_cast<std::uint8_t>(p), next_++), std::move(fn));
  }

  // Runs until `done()` (every job finished) or until nothing can make progress.
  template <class Done>
  void run(Done&& done) {
    arm_timer();
    arm_watchdog(done);
    while (!done() && !stalled_ && interrupted_by_ == 0) run_one();
    timer_.cancel();
    watchdog_.cancel();
  }
  // The signal that ended run() early, or 0.
  int interrupted_by() const { return interrupted_by_; }
  // After an interruption: the events not due yet, at once (pushes then fail
  // `shutdown`, so every job has an outcome).
  void fire_pending() {
    while (!events_.empty()) events_.extract(events_.begin()).mapped()();
  }
  // After shutdown: runs until `done()`.
  template <class Done>
  void finish(Done&& done) {
    while (!done()) run_one();
  }
  // One handler. The context stops when it runs out of work (the reactor
  // holds none while nothing is waited for); what is posted later needs a restart.
  void run_one() {
    if (ctx_.stopped()) ctx_.restart();
    ctx_.run_one();
  }
  std::vector<ring_run> log() const {
    return workload_ ? logs_of(gpu_rings_) : source_ ? logs_of(drm_rings_) : logs_of(sim_rings_);
  }
  std::size_t ring_count() const { return sim_rings_.size() + drm_rings_.size() + gpu_rings_.size(); }

 private:
  bool rings_stalled() const {
    auto stalled = [](const auto& r) { return r->stalled(); };
    return std::all_of(sim_rings_.begin(), sim_rings_.end(), stalled) &&
           std::all_of(drm_rings_.begin(), drm_rings_.end(), stalled) &&
           std::all_of(gpu_rings_.begin(), gpu_rings_.end(), stalled);
  }
  std::size_t runs_so_far() const {
    std::size_t n = 0;
    for (const auto& r : sim_rings_) n += r->log().size();
    for (const auto& r : drm_rings_) n += r->log().size();
    for (const auto& r : gpu_rings_) n += r->log().size();
    return n;
  }

  void arm_timer() {
    if (events_.empty()) return;
    const auto when = std::get<0>(events_.begin()->first);
    timer_.expires_at(epoch_ + std::chrono::microseconds(when));
    timer_.async_wait([this, when](std::error_code ec) {
      if (ec) return;
      while (!events_.empty() && std::get<0>(events_.begin()->first) == when) {
        auto node = events_.extract(events_.begin());
        node.mapped()();
      }
      arm_timer();
    });
  }

  template <class Done>
  void arm_watchdog(Done& done) {
    watchdog_.expires_after(std::chrono::milliseconds(200));
    watchdog_.async_wait([this, &done](std::error_code ec) {
      if (ec) return;
      const auto runs = runs_so_far();
      const bool quiet = events_.empty() && rings_stalled() && runs == last_runs_ && counts_.finished == last_finished_;
      // Two quiet looks in a row (at least 100 ms apart): nothing left to do.
      stalled_ = quiet && was_quiet_ && !done();
      was_quiet_ = quiet;
      last_runs_ = runs;
      last_finished_ = counts_.finished;
      if (progress_) progress_(counts_);
      if (!stalled_) arm_watchdog(done);
    });
  }

 public:
  void tick() {}  // the watchdog reports the progress
  run_progress counts_;

 private:
  asio::io_context& ctx_;
  reactor reactor_;
  std::unique_ptr<virtgpu::workload> workload_;  // virtgpu: outlives the rings
  std::optional<drm::fence_source> source_;    // drm, virtgpu: outlives the rings
  const std::chrono::steady_clock::time_point epoch_;  // time zero of the run and of its rings
  std::vector<std::unique_ptr<sim::real_ring>> sim_rings_;
  std::vector<std::unique_ptr<drm::host_ring>> drm_rings_;
  std::vector<std::unique_ptr<virtgpu::calibrated_ring>> gpu_rings_;
  asio::steady_timer timer_;
  asio::steady_timer watchdog_;
  std::function<void(const run_progress&)> progress_;
  std::map<std::tuple<sim::time_us, std::uint8_t, std::uint64_t>, std::function<void()>> events_;
  std::uint64_t next_ = 0;
  bool stalled_ = false;
  bool was_quiet_ = false;
  std::optional<asio::signal_set> signals_;  // with run_options::stop_on_signals; kept until the driver goes
  int interrupted_by_ = 0;
  std::size_t last_runs_ = 0;
  std::size_t last_finished_ = 0;
};

// Records the time at which a fence signals, inline in the signal (an
// intrusive waiter, as the scheduler's own): `clock` is called on the
// signalling thread under the fence's lock, so it must be short. One per job:
// kept small (the clock is shared). Immovable once watching.
class signal_stamp {
 public:
  using clock_fn = std::function<sim::time_us()>;

  signal_stamp() = default;
  signal_stamp(const signal_stamp&) = delete;
  signal_stamp& operator=(const signal_stamp&) = delete;
  ~signal_stamp() {
    if (watched_.valid()) watched_.state()->remove_waiter(waiter_);
  }

  void watch(const fence& f, const clock_fn& clock) {
    watched_ = f;
    clock_ = &clock;
    waiter_.owner = this;
    waiter_.notify = [](detail::fence_waiter& self, detail::fence_state&) noexcept {
      auto& stamp = *static_cast<signal_stamp*>(self.owner);
      stamp.at = (*stamp.clock_)();
    };
    if (!f.state()->add_waiter(waiter_)) at = clock();  // signalled already
  }

  sim::time_us at = 0;  // read once the fence has signalled

 private:
  fence watched_;
  const clock_fn* clock_ = nullptr;
  detail::fence_waiter waiter_;
};

template <class Driver>
run_outcome run_with(const graph& g, asio::io_context& ctx, Driver& driver) {
  const bool per_entity = g.scheduler.mode == ring_mode::ring_per_entity;
  scheduler_options options;
  options.credit_limit = g.scheduler.credit_limit;
  options.mode = per_entity ? cosched::ring_mode::ring_per_entity : cosched::ring_mode::shared_ring;
  options.timeout = std::chrono::microseconds(g.scheduler.timeout_us.value_or(0));
  options.timers = driver.timers();
  options.policy = scheduling_policy_of(g.scheduler.policy);
  options.pipeline = g.scheduler.pipeline;
  // What job bodies threw (fault "throw:<message>"), by finished point; matched
  // to jobs once the run is over.
  std::vector<std::pair<fence_point, std::string>> thrown;
  options.on_exception = [&thrown](const job_exception& e) { thrown.emplace_back(e.point, std::string(e.what)); };
  std::optional<scheduler<sim::command>> sched_storage;
  if (per_entity) {
    sched_storage.emplace(ctx.get_executor(), options);
  } else {
    std::vector<ring<sim::command>*> shared_rings;
    for (std::uint32_t r = 0; r < g.scheduler.rings; ++r) shared_rings.push_back(&driver.make_ring());
    sched_storage.emplace(ctx.get_executor(), std::span<ring<sim::command>* const>(shared_rings), options);
  }
  auto& sched = *sched_storage;
  // If anything below throws (a ring that cannot be made: out of file
  // descriptors), the scheduler is shut down before it goes, so that the error
  // is reported instead of a scheduler destroyed while running.
  struct shut_down_on_throw {
    scheduler<sim::command>& sched;
    Driver& driver;
    ~shut_down_on_throw() {
      if (sched.is_shut_down()) return;
      const fence down = sched.shutdown(std::chrono::nanoseconds(0));
      try {
        driver.finish([&] { return down.signalled(); });
      } catch (...) {
        // Already unwinding with the error that matters.
      }
    }
  } guard{sched, driver};

  std::vector<entity<sim::command>> entities;
  std::unordered_map<std::uint64_t, std::size_t> entity_by_context;
  for (std::size_t i = 0; i < g.entities.size(); ++i) {
    entities.push_back(sched.make_entity({.prio = g.entities[i].prio,
                                          .name = g.entities[i].name,
                                          .own_ring = per_entity ? &driver.make_ring() : nullptr,
                                          .rings = g.entities[i].rings}));
    entity_by_context.emplace(entities.back().context(), i);
  }

  run_outcome outcome;
  outcome.jobs.resize(g.jobs.size());
  std::vector<fence> finished(g.jobs.size());
  std::vector<std::vector<std::size_t>> jobs_by_seqno(g.entities.size());  // [entity][seqno-1]
  std::size_t open_jobs = g.jobs.size();

  // The moment each finished fence signals, taken inline on the signalling
  // thread: the handler that records the rest runs later, after dependents
  // may already have been scheduled.
  std::vector<signal_stamp> stamps(g.jobs.size());
  const signal_stamp::clock_fn stamp_clock = [&driver] { return driver.now(); };
  auto record_finish = [&](std::size_t index) {
    return [&, index](std::error_code ec) {
      auto& result = outcome.jobs[index];
      result.finished_us = stamps[index].at;
      result.error = error_name(ec);
      if (auto cause = finished[index].cause()) {
        auto owner = entity_by_context.find(cause->context);
        if (owner != entity_by_context.end() && cause->seqno >= 1 &&
            cause->seqno <= jobs_by_seqno[owner->second].size())
          result.cause = jobs_by_seqno[owner->second][cause->seqno - 1];
      }
      outcome.end_us = std::max(outcome.end_us, *result.finished_us);
      --open_jobs;
      ++driver.counts_.finished;
      if (ec) ++driver.counts_.failed;
      driver.tick();
    };
  };

  for (std::size_t index : push_order(g)) {
    driver.at(g.jobs[index].submit_at_us, sim::phase::push, [&, index] {
      const auto& spec = g.jobs[index];
      std::vector<fence> deps;
      deps.reserve(spec.deps.size());
      for (std::size_t dep : spec.deps) deps.push_back(finished[dep]);
      sim::command cmd{spec.duration_us, to_sim(spec.fault), index};
      outcome.jobs[index].queued_us = driver.now();
      // deadline_us: since the run's start, which is the scheduler's epoch in
      // virtual time (and a few microseconds before it in real time).
      std::optional<std::chrono::nanoseconds> deadline;
      if (spec.deadline_us) deadline = std::chrono::microseconds(*spec.deadline_us);
      const fault_spec* throws = spec.fault.kind == fault_kind::body_throws ? &spec.fault : nullptr;
      auto pushed = entities[spec.entity].push(graph_job(cmd, throws),
                                               {.credits = spec.credits, .deadline = deadline, .after = std::move(deps)});
      jobs_by_seqno[spec.entity].push_back(index);
      finished[index] = pushed.finished;
      stamps[index].watch(pushed.finished, stamp_clock);
      pushed.finished.async_wait(ctx.get_executor(), record_finish(index));
      ++driver.counts_.pushed;
      driver.tick();
    });
  }
  // Actions take effect with the kills of their instant, in file order.
  for (const auto& action : g.actions) {
    driver.at(action.at_us, sim::phase::kill, [&entities, &action] {
      auto& target = entities[action.entity];
      if (action.kind == action_kind::kill)
        target.kill();
      else
        target.set_rings(action.rings);
    });
  }

  driver.run([&] { return open_jobs == 0; });
  if constexpr (std::is_same_v<Driver, real_driver>) outcome.interrupted_by = driver.interrupted_by();
  outcome.shut_down_early = open_jobs > 0 && outcome.interrupted_by == 0;
  // Every run ends with shutdown; with jobs left, "nothing left to do" (or an
  // interruption) fails whatever is still undecided with `shutdown`, at this instant.
  auto done = sched.shutdown(std::chrono::nanoseconds(0));
  if constexpr (std::is_same_v<Driver, real_driver>) {
    if (outcome.interrupted_by != 0) driver.fire_pending();
  }
  driver.finish([&] { return done.signalled() && open_jobs == 0; });
  if (!done.signalled()) throw std::logic_error("scheduler shutdown did not complete");
  if (open_jobs > 0) throw std::logic_error("a job's finished fence never signalled");

  for (auto& [point, what] : thrown) {
    const auto owner = entity_by_context.find(point.context);
    if (owner == entity_by_context.end() || point.seqno < 1 || point.seqno > jobs_by_seqno[owner->second].size())
      continue;
    outcome.messages.emplace_back(jobs_by_seqno[owner->second][point.seqno - 1], std::move(what));
  }
  std::sort(outcome.messages.begin(), outcome.messages.end());
  outcome.runs = driver.log();
  outcome.rings = driver.ring_count();
  if constexpr (std::is_same_v<Driver, real_driver>) driver.describe_gpu(outcome);
  outcome.deadline_misses = sched.statistics().deadline_misses;
  for (const auto& run : outcome.runs) {
    auto& result = outcome.jobs[run.record.tag];
    ++result.attempts;
    result.scheduled_us = run.record.run_at;
    result.ring = run.ring;
  }
  return outcome;
}

}  // namespace

run_outcome run_graph(const graph& g, const run_options& options) {
  if (options.backend == backend_kind::drm && !options.device)
    throw std::invalid_argument(
        "cosched::submit::run_graph: the drm backend needs a device (open_drm_device)");
  if (options.backend == backend_kind::virtgpu && !options.gpu)
    throw std::invalid_argument(
        "cosched::submit::run_graph: the virtgpu backend needs a device (open_virtgpu_device)");
  if (options.backend == backend_kind::virtgpu && options.clock == clock_kind::virtual_time)
    throw std::invalid_argument("cosched::submit::run_graph: the virtgpu backend runs in real time only");
  if (options.verify && options.backend != backend_kind::virtgpu)
    throw std::invalid_argument("cosched::submit::run_graph: verify needs the virtgpu backend");
  asio::io_context ctx(1);
  if (options.clock == clock_kind::virtual_time) {
    virtual_driver driver(ctx, options);
    return run_with(g, ctx, driver);
  }
  real_driver driver(ctx, g, options);
  return run_with(g, ctx, driver);
}

namespace {

// Opens a backend's device; a std::system_error becomes backend_unavailable:
// `needs`, then the device's own reason without its "cosched::...: " prefix.
template <class Open>
auto open_backend_device(Open open, std::string_view prefix, const std::string& needs) {
  try {
    return open();
  } catch (const std::system_error& e) {
    std::string what = e.what();
    if (what.rfind(prefix, 0) == 0) what.erase(0, prefix.size());
    throw backend_unavailable(needs + ": " + what);
  }
}

}  // namespace

drm::device open_drm_device(const std::string& path) {
  return open_backend_device([&] { return path.empty() ? drm::device::open() : drm::device::open(path); },
                             "cosched::drm::device: ",
                             "--backend drm needs a DRM render node with timeline syncobjs and "
                             "DRM_IOCTL_SYNCOBJ_EVENTFD (Linux 6.6 or later)");
}

virtgpu::device open_virtgpu_device(const std::string& path) {
  return open_backend_device([&] { return virtgpu::device::open(path); }, "cosched::virtgpu::device: ",
                             "--backend virtgpu needs a virtio-gpu render node with virgl 3D (QEMU's "
                             "virtio-gpu-gl-pci), timeline syncobjs and Linux 6.6 or later");
}

void write_results(std::ostream& out, const graph& g, const run_outcome& outcome,
                   std::string_view backend, std::string_view clock) {
  auto optional_number = [](const std::optional<std::uint64_t>& v) {
    return v ? std::to_string(*v) : std::string("null");
  };
  std::size_t succeeded = 0;
  std::map<std::string, std::size_t> errors;
  auto message = outcome.messages.begin();  // sorted by job index
  for (std::size_t i = 0; i < g.jobs.size(); ++i) {
    const auto& result = outcome.jobs[i];
    out << "{\"job\": " << json_string(g.jobs[i].id)
        << ", \"entity\": " << json_string(g.entities[g.jobs[i].entity].name)
        << ", \"error\": " << (result.error.empty() ? "null" : json_string(result.error))
        << ", \"cause\": " << (result.cause ? json_string(g.jobs[*result.cause].id) : "null")
        << ", \"attempts\": " << result.attempts << ", \"queued_us\": " << result.queued_us
        << ", \"scheduled_us\": " << optional_number(result.scheduled_us)
        << ", \"finished_us\": " << optional_number(result.finished_us);
    // Several shared rings: the ring of the job's last run (null if never run).
    if (g.scheduler.rings > 1) out << ", \"ring\": " << (result.ring ? std::to_string(*result.ring) : "null");
    if (!outcome.verified.empty())
      out << ", \"verified\": " << (outcome.verified[i] ? (*outcome.verified[i] ? "true" : "false") : "null");
    // What the job's body threw (fault "throw:<message>").
    if (message != outcome.messages.end() && message->first == i)
      out << ", \"message\": " << json_string((message++)->second);
    out << "}\n";
    if (result.error.empty()) ++succeeded; else ++errors[result.error];
  }
  // The summary in the same style as the job lines: ", " and ": " separators.
  const auto failures = count_failures(g, outcome);
  out << "{\"summary\": {\"jobs\": " << g.jobs.size() << ", \"succeeded\": " << succeeded
      << ", \"failed\": " << g.jobs.size() - succeeded << ", \"failed_by_itself\": " << failures.by_itself
      << ", \"failed_by_cascade\": " << failures.by_cascade << ", \"jobs_with_fault\": " << failures.with_fault
      << ", \"errors\": {";
  const char* separator = "";
  for (const auto& [name, count] : errors) {
    out << separator << json_string(name) << ": " << count;
    separator = ", ";
  }
  out << "}, \"end_us\": " << outcome.end_us
      << ", \"nothing_left_to_do\": " << (outcome.shut_down_early ? "true" : "false")
      << ", \"interrupted\": " << (outcome.interrupted_by ? json_string(signal_name(outcome.interrupted_by)) : "null")
      << ", \"backend\": " << json_string(backend) << ", \"clock\": " << json_string(clock)
      << ", \"deadline_misses\": " << outcome.deadline_misses << ", ";
  if (outcome.calibration) {
    const auto& c = *outcome.calibration;
    out << "\"gpu\": {\"renderer\": " << json_string(outcome.renderer.value_or("")) << ", \"empty_job_us\": "
        << fixed_places(c.empty_us, 1) << ", \"unit\": " << json_string(unit_name(c)) << ", \"unit_us\": "
        << fixed_places(c.unit_us, 1) << "}, ";
  }
  if (!outcome.verified.empty()) {
    const auto counts = verified_counts(outcome);
    out << "\"verified\": {\"true\": " << counts[0] << ", \"false\": " << counts[1] << ", \"null\": " << counts[2]
        << "}, ";
  }
  write_stats_json(out, compute_stats(g, outcome));
  out << "}}\n";
}

void write_table(std::ostream& out, const graph& g, const run_outcome& outcome) {
  // Ids and names cut to table_cell's length: a long one must not widen every row.
  std::size_t id_width = 3, entity_width = 6, error_width = 7, cause_width = 5;
  for (std::size_t i = 0; i < g.jobs.size(); ++i) {
    const auto& result = outcome.jobs[i];
    id_width = std::max(id_width, table_cell(g.jobs[i].id).size());
    entity_width = std::max(entity_width, table_cell(g.entities[g.jobs[i].entity].name).size());
    error_width = std::max(error_width, result.error.size());
    if (result.cause) cause_width = std::max(cause_width, table_cell(g.jobs[*result.cause].id).size());
  }
  auto cell = [&out](std::string_view text, std::size_t width) {
    out << std::left << std::setw(static_cast<int>(width) + 2) << text;
  };
  auto number = [&out](const std::optional<std::uint64_t>& v, int width) {
    out << std::right << std::setw(width) << (v ? std::to_string(*v) : std::string("-")) << "  ";
  };
  cell("job", id_width);
  cell("entity", entity_width);
  cell("outcome", error_width);
  cell("cause", cause_width);
  out << "attempts     queued  scheduled   finished  (us)\n";
  for (std::size_t i = 0; i < g.jobs.size(); ++i) {
    const auto& result = outcome.jobs[i];
    cell(table_cell(g.jobs[i].id), id_width);
    cell(table_cell(g.entities[g.jobs[i].entity].name), entity_width);
    cell(result.error.empty() ? "ok" : result.error, error_width);
    cell(result.cause ? table_cell(g.jobs[*result.cause].id) : "-", cause_width);
    out << std::right << std::setw(8) << result.attempts << "  ";
    number(result.queued_us, 9);
    number(result.scheduled_us, 9);
    number(result.finished_us, 9);
    out << "\n";
  }
  write_summary(out, g, outcome);
}

void write_summary(std::ostream& out, const graph& g, const run_outcome& outcome) {
  std::size_t succeeded = 0;
  for (const auto& result : outcome.jobs) succeeded += result.error.empty();
  const auto failures = count_failures(g, outcome);
  out << g.jobs.size() << " jobs: " << succeeded << " succeeded, " << g.jobs.size() - succeeded << " failed";
  if (succeeded < g.jobs.size()) out << " (" << failures.by_itself << " by itself, " << failures.by_cascade << " by cascade)";
  out << "; last fence signalled at " << outcome.end_us << " us";
  if (outcome.shut_down_early) out << " (nothing left to do: the rest was shut down)";
  if (outcome.interrupted_by) out << " (interrupted by " << signal_name(outcome.interrupted_by) << ": the rest was shut down)";
  out << "\n";
  if (failures.with_fault > 0) {
    out << failures.with_fault << (failures.with_fault == 1 ? " job has a fault of its own" : " jobs have a fault of their own");
    if (failures.with_fault_by_cascade > 0)
      out << "; " << failures.with_fault_by_cascade << " of them failed by cascade before it could act";
    out << "\n";
  }
  if (outcome.calibration) {
    const auto& c = *outcome.calibration;
    out << "GPU: " << outcome.renderer.value_or("virgl") << "; jobs sized by a calibration at start: an empty job "
        << fixed_places(c.empty_us, 1) << " us, each " << unit_name(c) << " " << fixed_places(c.unit_us, 1)
        << " us more\n";
  }
  if (!outcome.verified.empty()) {
    const auto counts = verified_counts(outcome);
    out << "verified by readback: " << counts[0] << " right, " << counts[1] << " wrong, " << counts[2]
        << " never reached the GPU\n";
  }
  // Per entity, fairness, ring time and deadline misses (of how many deadlines).
  write_stats_text(out, compute_stats(g, outcome));
}

}  // namespace cosched::submit

namespace cosched::submit {

void write_trace(std::ostream& out, const graph& g, const run_outcome& outcome) {
  // Process 1 holds the ring's track, process 2 one track per entity.
  constexpr int ring_pid = 1, entity_pid = 2;
  out << "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n";
  out << R"({"ph": "M", "pid": 1, "tid": 1, "name": "process_name", "args": {"name": "rings"}})";
  for (std::size_t r = 0; r < outcome.rings; ++r) {
    out << ",\n{\"ph\": \"M\", \"pid\": " << ring_pid << ", \"tid\": " << r + 1
        << ", \"name\": \"thread_name\", \"args\": {\"name\": \"ring " << r << "\"}}";
  }
  out << ",\n" << R"({"ph": "M", "pid": 2, "tid": 1, "name": "process_name", "args": {"name": "entities"}})";
  for (std::size_t e = 0; e < g.entities.size(); ++e) {
    out << ",\n{\"ph\": \"M\", \"pid\": " << entity_pid << ", \"tid\": " << e + 1
        << ", \"name\": \"thread_name\", \"args\": {\"name\": "
        << json_string(g.entities[e].name + " (" + std::string(to_string(g.entities[e].prio)) + ")") << "}}";
  }
  std::vector<std::uint32_t> attempt(g.jobs.size(), 0);
  for (const auto& ring_entry : outcome.runs) {
    const auto& run = ring_entry.record;
    const auto& job = g.jobs[run.tag];
    const auto& result = outcome.jobs[run.tag];
    ++attempt[run.tag];
    // A run that never finished (a hang, cancelled) lasts until its job's fence
    // signalled. A real-time ring records start and end only when the command
    // completes (0 until then): such a run is shown from when it was run.
    const std::uint64_t start = std::max(run.start, run.run_at);
    const std::uint64_t end = run.finishes && run.end >= start ? run.end
                              : std::max(start, result.finished_us.value_or(start));
    out << ",\n{\"ph\": \"X\", \"pid\": " << ring_pid << ", \"tid\": " << ring_entry.ring + 1
        << ", \"name\": " << json_string(job.id)
        << ", \"ts\": " << start << ", \"dur\": " << end - start
        << ", \"args\": {\"entity\": " << json_string(g.entities[job.entity].name)
        << ", \"attempt\": " << attempt[run.tag] << ", \"run_at_us\": " << run.run_at << "}}";
  }
  for (std::size_t i = 0; i < g.jobs.size(); ++i) {
    const auto& job = g.jobs[i];
    const auto& result = outcome.jobs[i];
    const std::uint64_t end = result.finished_us.value_or(result.queued_us);
    out << ",\n{\"ph\": \"X\", \"pid\": " << entity_pid << ", \"tid\": " << job.entity + 1
        << ", \"name\": " << json_string(job.id) << ", \"ts\": " << result.queued_us
        << ", \"dur\": " << end - result.queued_us << ", \"args\": {\"error\": "
        << (result.error.empty() ? "null" : json_string(result.error))
        << ", \"cause\": " << (result.cause ? json_string(g.jobs[*result.cause].id) : "null")
        << ", \"attempts\": " << result.attempts << "}}";
  }
  out << "\n]}\n";
}

}  // namespace cosched::submit
