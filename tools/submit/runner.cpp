// The graph runner: pushes and actions (kills, ring sets) are timed events (on
// the virtual clock, or on a steady timer in real time); the scheduler and job coroutines do the rest,
// on the sim backend's rings, the drm backend's host rings or real GPU work
// (virtgpu's calibrated rings).
#include "submit/runner.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <deque>
#include <iomanip>
#include <limits>
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
#include "cosched/detail/pool.hpp"
#include "cosched/drm/fence_source.hpp"
#include "cosched/drm/host_ring.hpp"
#include "cosched/reactor.hpp"
#include "cosched/sim/real_ring.hpp"
#include "cosched/sim/sim_ring.hpp"
#include "cosched/virtgpu/calibrated_ring.hpp"
#include "submit/stats.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace cosched::submit {
namespace {

using sim_job = job<sim::command>;

sim::fault to_sim(const fault_spec& f) {
  switch (f.kind) {
    case fault_kind::none:
      return sim::fault::none();
    case fault_kind::error:
      return sim::fault::error(f.errno_value);
    case fault_kind::hang:
      return sim::fault::hang();
    case fault_kind::slow:
      return sim::fault::slow(f.slow_us);
    case fault_kind::body_throws:
      return sim::fault::none();  // the command is never made
  }
  return sim::fault::none();
}

scheduling_policy scheduling_policy_of(policy_kind p) {
  switch (p) {
    case policy_kind::fifo:
      return scheduling_policy::fifo;
    case policy_kind::rr:
      return scheduling_policy::rr;
    case policy_kind::fair:
      return scheduling_policy::fair;
    case policy_kind::deadline:
      return scheduling_policy::deadline;
  }
  return scheduling_policy::fifo;
}

// A run of a command as a virtual-time run keeps it: run_record's fields in 32
// bytes instead of 40 (a command's tag is its job's index, below 2^32); a
// million jobs are at least a million runs.
struct compact_run {
  explicit compact_run(const sim::run_record& r) noexcept
      : run_at(r.run_at),
        start(r.start),
        end(r.end),
        tag(static_cast<std::uint32_t>(r.tag)),
        finishes(r.finishes) {}
  sim::run_record record() const noexcept { return {tag, run_at, start, finishes, end}; }

  sim::time_us run_at, start, end;
  std::uint32_t tag;
  bool finishes;
};

std::vector<ring_run> logs_of(const std::deque<std::vector<compact_run>>& logs) {
  std::vector<ring_run> runs;
  std::size_t total = 0;
  for (const auto& log : logs) total += log.size();
  runs.reserve(total);
  for (std::size_t r = 0; r < logs.size(); ++r)
    for (const auto& run : logs[r]) runs.push_back({r, run.record()});
  return runs;
}

template <class Ring>
std::vector<ring_run> logs_of(const std::vector<std::unique_ptr<Ring>>& rings) {
  std::vector<ring_run> runs;
  std::size_t total = 0;
  for (const auto& ring : rings) total += ring->log().size();
  runs.reserve(total);
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
  bool reports_progress() const noexcept { return static_cast<bool>(progress_); }
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
    auto& made = *sim_rings_.emplace_back(std::make_unique<sim::virtual_ring>(clock_));
    // Its runs are kept here, compact (a deque's elements do not move).
    auto& runs = sim_logs_.emplace_back();
    made.set_log_sink([&runs](const sim::run_record& record) { runs.emplace_back(record); });
    return made;
  }
  timer_service* timers() { return &timers_; }
  sim::time_us now() const { return clock_.now(); }
  run_progress counts_;
  void at(sim::time_us when, sim::phase p, std::function<void()> fn) { clock_.at(when, p, std::move(fn)); }
  // Runs until nothing is pending; returns whether jobs are left ("nothing left to do").
  template <class Done>
  void run(Done&&) {
    clock_.run(ctx_);
  }
  template <class Done>
  void finish(Done&&) {
    clock_.run(ctx_);
  }
  std::vector<ring_run> log() const { return kernel_ ? logs_of(drm_rings_) : logs_of(sim_logs_); }
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
  std::optional<drm_kernel> kernel_;               // outlives the rings
  std::deque<std::vector<compact_run>> sim_logs_;  // each sim ring's runs (outlives the rings)
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
      return *gpu_rings_.emplace_back(
          std::make_unique<virtgpu::calibrated_ring>(*workload_, *source_, epoch_));
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
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - epoch_)
            .count());
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
      const bool quiet =
          events_.empty() && rings_stalled() && runs == last_runs_ && counts_.finished == last_finished_;
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
  std::unique_ptr<virtgpu::workload> workload_;        // virtgpu: outlives the rings
  std::optional<drm::fence_source> source_;            // drm, virtgpu: outlives the rings
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

// Each job's finished fence, from its push until the run is over (one
// reference to the job's block), then the outcome read from it: an index into
// the run's error names and the job of its root cause. One word per job
// either way, so that reading the outcomes of a million jobs takes no memory
// beside the jobs' blocks it lets go of. Not copyable.
class finished_fences {
 public:
  static constexpr std::uint32_t no_cause = std::numeric_limits<std::uint32_t>::max();

  explicit finished_fences(std::size_t jobs) : words_(jobs, 0) {}
  finished_fences(const finished_fences&) = delete;
  finished_fences& operator=(const finished_fences&) = delete;
  ~finished_fences() {
    // Those not settled yet (a run left by an exception).
    for (std::size_t i = settled_; i < words_.size(); ++i)
      if (words_[i]) state(i).owner->release();
  }

  /// Job `i`'s fence, pushed and not settled yet.
  detail::fence_state& state(std::size_t i) const noexcept {
    // NOLINTNEXTLINE(performance-no-int-to-ptr): one word per job, a pointer until settled (see above)
    return *reinterpret_cast<detail::fence_state*>(static_cast<std::uintptr_t>(words_[i]));
  }
  fence get(std::size_t i) const noexcept {
    state(i).owner->add_ref();
    return fence::adopt(&state(i));
  }
  /// At its push: job `i`'s fence (every job is pushed once).
  void hold(std::size_t i, const fence& f) noexcept {
    f.state()->owner->add_ref();
    words_[i] = reinterpret_cast<std::uintptr_t>(f.state());
  }

  /// Once every job has signalled, in job order: the next job's fence goes,
  /// its outcome stays.
  void settle_next(std::uint16_t error, std::uint32_t cause) noexcept {
    detail::fence_state& f = state(settled_);
    words_[settled_++] = std::uint64_t{error} << 32 | cause;
    f.owner->release();
  }
  std::uint16_t error(std::size_t i) const noexcept { return static_cast<std::uint16_t>(words_[i] >> 32); }
  std::uint32_t cause(std::size_t i) const noexcept { return static_cast<std::uint32_t>(words_[i]); }

 private:
  // [0, settled_): outcomes; from settled_ on: a fence_state* (0: not pushed yet).
  std::vector<std::uint64_t> words_;
  std::size_t settled_ = 0;
};

// What a run keeps per job while it runs, shared with the finish watches and
// the scheduler's exception handler. It is made before the scheduler, so that
// it outlives every signal (which the watches record) and every exception.
//
// All jobs of a large graph are pushed at once, so what it keeps per job adds
// to the scheduler's own record and frame of every job: while the run goes
// on, the moment each job finished (its outcome stays in its finished fence);
// the job_outcomes are made after the run, once the scheduler's records of
// the jobs are gone.
struct run_state {
  run_state(const graph& graph_in, std::function<sim::time_us()> clock_in, bool exact_push_times)
      : g(graph_in),
        clock(std::move(clock_in)),
        finished(graph_in.jobs.size()),
        // Not initialised: a page of it is touched when its jobs finish.
        finished_us(new sim::time_us[graph_in.jobs.size()]),
        open_jobs(graph_in.jobs.size()) {
    // Exact sizes, so that no list grows by doubling.
    std::vector<std::uint32_t> per_entity(g.entities.size(), 0);
    for (const auto& job : g.jobs) ++per_entity[job.entity];
    jobs_by_seqno.resize(g.entities.size());
    for (std::size_t e = 0; e < g.entities.size(); ++e) jobs_by_seqno[e].reserve(per_entity[e]);
    // In virtual time a job is pushed at its submit_at_us exactly.
    if (!exact_push_times) queued_us.resize(g.jobs.size());
  }

  /// Job `index`'s finished fence has just signalled (`state`): called inline
  /// in the signal, so it only notes the moment and counts.
  void record(std::size_t index, const detail::fence_state& state) noexcept {
    const sim::time_us now = clock();
    finished_us[index] = now;
    end_us = std::max(end_us, now);
    --open_jobs;
    if (state.error()) ++failed_jobs;
    counts->finished = g.jobs.size() - open_jobs;
    counts->failed = failed_jobs;
    if (tick) tick(tick_arg);
  }

  /// Once every job has finished: keeps of each job's outcome its error and
  /// cause, in place of its finished fence, which it lets go of (and with it
  /// of the scheduler's record of the job), so that what is made after the
  /// run (the outcomes, the outputs) takes the memory the jobs had.
  void finish() {
    std::vector<std::error_code> error_codes(1);  // [0]: none, as error_names
    for (std::size_t i = 0; i < g.jobs.size(); ++i) {
      const detail::fence_state& f = finished.state(i);
      const bool signalled = f.is_signalled();  // every job's has, by now
      std::uint16_t error = 0;
      std::uint32_t cause = finished_fences::no_cause;
      if (const std::error_code ec = signalled ? f.error() : std::error_code()) {
        auto known = static_cast<std::size_t>(std::find(error_codes.begin(), error_codes.end(), ec) -
                                              error_codes.begin());
        if (known == error_codes.size()) {
          if (known > std::numeric_limits<std::uint16_t>::max())
            throw std::length_error("cosched::submit::run_graph: more than 65535 distinct errors");
          error_codes.push_back(ec);
          error_names.push_back(error_name(ec));
        }
        error = static_cast<std::uint16_t>(known);
      }
      if (const auto root = signalled ? f.recorded_cause() : std::nullopt) {
        if (const auto job = job_at(*root)) cause = *job;
      }
      finished.settle_next(error, cause);
    }
    for (auto& [point, what] : thrown) {
      if (const auto job = job_at(point)) messages.emplace_back(*job, std::move(what));
    }
    std::sort(messages.begin(), messages.end());
    std::vector<std::pair<fence_point, std::string>>().swap(thrown);
    std::vector<std::vector<std::uint32_t>>().swap(jobs_by_seqno);
    give_back_free_memory();
  }

  /// After finish(): each job's outcome, with its runs from `runs`.
  std::vector<job_outcome> outcomes(const std::vector<ring_run>& runs) const {
    std::vector<job_outcome> jobs(g.jobs.size());
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      auto& result = jobs[i];
      result.error = error_names[finished.error(i)];
      if (finished.cause(i) != finished_fences::no_cause) result.cause = finished.cause(i);
      result.queued_us = queued_us.empty() ? g.jobs[i].submit_at_us : queued_us[i];
      result.finished_us = finished_us[i];
    }
    for (const auto& ring_entry : runs) {
      auto& result = jobs[ring_entry.record.tag];
      ++result.attempts;
      result.scheduled_us = ring_entry.record.run_at;
      result.ring = ring_entry.ring;
    }
    return jobs;
  }

  /// The job whose finished fence is at `point`, if it is one of the run's.
  std::optional<std::uint32_t> job_at(const fence_point& point) const {
    const auto owner = entity_by_context.find(point.context);
    if (owner == entity_by_context.end() || point.seqno < 1 ||
        point.seqno > jobs_by_seqno[owner->second].size())
      return std::nullopt;
    return jobs_by_seqno[owner->second][point.seqno - 1];
  }

  const graph& g;
  const std::function<sim::time_us()> clock;    // the driver's now()
  finished_fences finished;                     // each job's finished fence, then its outcome
  std::unique_ptr<sim::time_us[]> finished_us;  // when each job's finished fence signalled
  std::vector<sim::time_us> queued_us;          // when each job was pushed; empty: at its submit_at_us
  std::vector<std::vector<std::uint32_t>> jobs_by_seqno;  // [entity][seqno - 1]: the job pushed
  std::unordered_map<std::uint64_t, std::size_t> entity_by_context;
  sim::time_us end_us = 0;  // when the last finished fence signalled
  // What job bodies threw (fault "throw:<message>"), by finished point.
  std::vector<std::pair<fence_point, std::string>> thrown;
  // From finish() on: the names of the errors (finished's error indices), and
  // what bodies threw by job index, in job order.
  std::vector<std::string> error_names{std::string()};  // [0]: none
  std::vector<std::pair<std::size_t, std::string>> messages;
  std::size_t open_jobs;
  std::size_t failed_jobs = 0;
  // The driver's counts, for its progress line (and in real time its
  // watchdog), and what it is told at each count (none in real time: the
  // watchdog reports).
  run_progress* counts = nullptr;
  void (*tick)(void*) = nullptr;
  void* tick_arg = nullptr;

 private:
  // The pools keep freed job blocks and frames (up to 64 MiB per size class),
  // the heap what the jobs freed: given back (to the system with glibc), a
  // large run's outcomes and outputs do not add to the memory its jobs took.
  void give_back_free_memory() const noexcept {
    if (g.jobs.size() < large_run_jobs) return;
    detail::pool_release_cache();
#if defined(__GLIBC__)
    ::malloc_trim(0);
#endif
  }
  static constexpr std::size_t large_run_jobs = 1u << 16;
};

// The body of every graph job, run once the scheduler has waited through its
// declared dependencies (the graph's `deps`, in order): hand over the command
// (or throw, for the fault "throw:<message>"). The frame holds only the graph
// and the job's index (a million jobs are a million frames): the command is
// made from the graph at co_return.
sim::command command_of(const graph& g, std::uint32_t index) noexcept {
  const auto& spec = g.jobs[index];
  return {spec.duration_us, to_sim(spec.fault), index};
}

[[noreturn]] void throw_fault(const graph& g, std::uint32_t index) {
  throw std::runtime_error(std::string(g.jobs[index].fault.throw_message()));
}

sim_job graph_job(const graph& g, std::uint32_t index) {
  if (g.jobs[index].fault.kind == fault_kind::body_throws) throw_fault(g, index);
  co_return command_of(g, index);
}

// Records each job's outcome at the moment its finished fence signals, inline
// in the signal (an intrusive waiter, as the scheduler's own): on the
// signalling thread, under the fence's lock, so it must be short. An entity's
// finished fences signal in push order, so one watch per entity serves all
// its jobs: it waits on the oldest job not signalled yet and moves to the
// next one when that one signals. Immovable; its waiter is its base.
class finish_watch : detail::fence_waiter {
 public:
  finish_watch() noexcept {
    notify = [](detail::fence_waiter& self, detail::fence_state& state) noexcept {
      auto& watch = static_cast<finish_watch&>(self);
      watch.watched_ = nullptr;
      watch.run_->record(watch.jobs()[watch.next_++], state);
      watch.advance();
    };
  }
  finish_watch(const finish_watch&) = delete;
  finish_watch& operator=(const finish_watch&) = delete;
  ~finish_watch() {
    if (watched_) watched_->remove_waiter(*this);  // a run left by an exception
  }

  void attach(run_state& run, std::size_t entity) noexcept {
    run_ = &run;
    entity_ = entity;
  }
  /// After a push to the entity: watches the job if the entity's earlier jobs
  /// have all signalled.
  void pushed() {
    if (!watched_) advance();
  }

 private:
  const std::vector<std::uint32_t>& jobs() const noexcept { return run_->jobs_by_seqno[entity_]; }
  // Waits on the next job pushed and not recorded; one that has signalled
  // already (at its push, on a dead entity) is recorded now.
  void advance() {
    while (next_ < jobs().size()) {
      const detail::fence_state& state = run_->finished.state(jobs()[next_]);
      if (state.add_waiter(*this)) {
        watched_ = &state;
        return;
      }
      run_->record(jobs()[next_++], state);
    }
  }

  run_state* run_ = nullptr;
  std::size_t entity_ = 0;
  std::size_t next_ = 0;  // in jobs(): the job watched, or the next one pushed
  const detail::fence_state* watched_ = nullptr;
};

// The jobs in push order (push_order(g)), as indices of 32 bits; empty when it
// is the graph's order (every generated graph).
std::vector<std::uint32_t> push_sequence(const graph& g) {
  const bool in_file_order =
      std::is_sorted(g.jobs.begin(), g.jobs.end(),
                     [](const job_spec& a, const job_spec& b) { return a.submit_at_us < b.submit_at_us; });
  if (in_file_order) return {};
  const auto order = push_order(g);
  return std::vector<std::uint32_t>(order.begin(), order.end());
}

template <class Driver>
run_outcome run_with(const graph& g, asio::io_context& ctx, Driver& driver) {
  if (g.jobs.size() > std::numeric_limits<std::uint32_t>::max())
    throw std::length_error("cosched::submit::run_graph: more than 2^32 - 1 jobs");
  run_state run(
      g, [&driver] { return driver.now(); }, std::is_same_v<Driver, virtual_driver>);
  run.counts = &driver.counts_;
  if constexpr (std::is_same_v<Driver, virtual_driver>) {
    if (driver.reports_progress()) {
      run.tick = [](void* d) { static_cast<Driver*>(d)->tick(); };
      run.tick_arg = &driver;
    }
  }
  const std::unique_ptr<finish_watch[]> watches(new finish_watch[g.entities.size()]);
  for (std::size_t e = 0; e < g.entities.size(); ++e) watches[e].attach(run, e);

  const bool per_entity = g.scheduler.mode == ring_mode::ring_per_entity;
  scheduler_options options;
  options.credit_limit = g.scheduler.credit_limit;
  options.mode = per_entity ? cosched::ring_mode::ring_per_entity : cosched::ring_mode::shared_ring;
  options.timeout = std::chrono::microseconds(g.scheduler.timeout_us.value_or(0));
  options.timers = driver.timers();
  options.policy = scheduling_policy_of(g.scheduler.policy);
  options.pipeline = g.scheduler.pipeline;
  options.on_exception = [&run](const job_exception& e) {
    run.thrown.emplace_back(e.point, std::string(e.what));
  };
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
  for (std::size_t i = 0; i < g.entities.size(); ++i) {
    entities.push_back(sched.make_entity({.prio = g.entities[i].prio,
                                          .name = g.entities[i].name,
                                          .own_ring = per_entity ? &driver.make_ring() : nullptr,
                                          .rings = g.entities[i].rings}));
    run.entity_by_context.emplace(entities.back().context(), i);
  }

  auto push = [&](std::uint32_t index) {
    const auto& spec = g.jobs[index];
    if (!run.queued_us.empty()) run.queued_us[index] = driver.now();
    // deadline_us: since the run's start, which is the scheduler's epoch in
    // virtual time (and a few microseconds before it in real time).
    std::optional<std::chrono::nanoseconds> deadline;
    if (spec.deadline_us) deadline = std::chrono::microseconds(*spec.deadline_us);
    // The graph's deps are declared: the scheduler waits for them, in order,
    // before it first runs the body.
    std::vector<fence> deps;
    deps.reserve(spec.deps.size());
    for (const std::uint32_t dep : spec.deps) deps.push_back(run.finished.get(dep));
    auto pushed = entities[spec.entity].push(
        graph_job(g, index), {.credits = spec.credits, .deadline = deadline, .after = std::move(deps)});
    run.jobs_by_seqno[spec.entity].push_back(index);
    run.finished.hold(index, pushed.finished);
    watches[spec.entity].pushed();
    ++driver.counts_.pushed;
    driver.tick();
  };
  // One event per instant with pushes: its jobs are pushed one after another
  // in push order, as one event per job would push them (nothing else fires
  // between the pushes of an instant), without an event per job.
  const std::vector<std::uint32_t> order = push_sequence(g);
  auto job_at = [&order](std::size_t position) {
    return order.empty() ? static_cast<std::uint32_t>(position) : order[position];
  };
  for (std::size_t begin = 0; begin < g.jobs.size();) {
    const std::uint64_t at = g.jobs[job_at(begin)].submit_at_us;
    std::size_t end = begin + 1;
    while (end < g.jobs.size() && g.jobs[job_at(end)].submit_at_us == at) ++end;
    driver.at(at, sim::phase::push, [&, begin, end] {
      for (std::size_t position = begin; position < end; ++position) push(job_at(position));
    });
    begin = end;
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

  run_outcome outcome;
  driver.run([&] { return run.open_jobs == 0; });
  if constexpr (std::is_same_v<Driver, real_driver>) outcome.interrupted_by = driver.interrupted_by();
  outcome.shut_down_early = run.open_jobs > 0 && outcome.interrupted_by == 0;
  // Every run ends with shutdown; with jobs left, "nothing left to do" (or an
  // interruption) fails whatever is still undecided with `shutdown`, at this instant.
  auto done = sched.shutdown(std::chrono::nanoseconds(0));
  if constexpr (std::is_same_v<Driver, real_driver>) {
    if (outcome.interrupted_by != 0) driver.fire_pending();
  }
  driver.finish([&] { return done.signalled() && run.open_jobs == 0; });
  if (!done.signalled()) throw std::logic_error("scheduler shutdown did not complete");
  if (run.open_jobs > 0) throw std::logic_error("a job's finished fence never signalled");

  outcome.end_us = run.end_us;
  outcome.deadline_misses = sched.statistics().deadline_misses;
  run.finish();
  outcome.messages = std::move(run.messages);
  outcome.runs = driver.log();
  outcome.rings = driver.ring_count();
  if constexpr (std::is_same_v<Driver, real_driver>) driver.describe_gpu(outcome);
  outcome.jobs = run.outcomes(outcome.runs);
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

}  // namespace cosched::submit
