// The host engine: simulated commands executed by a device thread (real time) or
// on the virtual clock, each completion a DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL.
#include "cosched/drm/host_ring.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>
#include <asio/steady_timer.hpp>

#include "cosched/log.hpp"
#include "cosched/sim/device_thread.hpp"

namespace cosched::drm {

// ------------------------------------------------------------------ virtual_time

void virtual_time::await(const fence& f, const char* what, std::uint64_t point) {
  if (f.signalled()) return;
  // The guard's handler may run after this returns (it is cancelled below):
  // it owns its flag.
  auto expired = std::make_shared<bool>(false);
  asio::steady_timer guard(reactor_context_, round_trip_limit_);
  guard.async_wait([expired](const std::error_code& ec) {
    if (!ec) *expired = true;
  });
  while (!f.signalled() && !*expired) {
    if (reactor_context_.stopped()) reactor_context_.restart();
    reactor_context_.run_one();
  }
  if (!f.signalled())
    throw std::runtime_error(std::string("cosched::drm::") + what +
                             ": the kernel's signal of timeline point " + std::to_string(point) +
                             " did not come back through the reactor within " +
                             std::to_string(round_trip_limit_.count()) + " ms");
}

// ------------------------------------------------------------------ engines

namespace {

// The fence of an `error:<ERRNO>` command: the kernel cannot fail a point that
// the host signals, so the ring fails its own fence once the kernel point has
// been reached. The promise is taken exactly once: by that completion, or by a
// reset (the fence then fails `broken`, and the late kernel signal finds nothing).
struct error_relay {
  std::mutex lock;
  std::optional<promise> done;  // guarded by lock

  bool pending() {
    std::lock_guard guard(lock);
    return done.has_value();
  }
  std::optional<promise> take() noexcept {
    std::optional<promise> taken;
    std::lock_guard guard(lock);
    taken.swap(done);
    return taken;
  }
};

}  // namespace

/// What both engines share: the timeline syncobj, its points and their fences.
struct host_ring::engine {
  engine(fence_source& s, asio::any_io_executor relay_executor)
      : source(s), syncobj(timeline_syncobj::create(s.get_device())), executor(std::move(relay_executor)) {}
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;
  virtual ~engine() = default;

  virtual fence run(sim::command& cmd) = 0;
  virtual void cancel_all() noexcept = 0;
  virtual sim::time_us now() const noexcept = 0;
  virtual bool stalled() const = 0;
  virtual std::vector<sim::run_record> log() const = 0;

  struct issued {
    std::uint64_t point = 0;
    fence kernel;                        // fence_source::wait on the point
    fence hardware;                      // what run() returns: `kernel`, or the relay's fence
    std::shared_ptr<error_relay> relay;  // error commands only
  };

  // Takes the next point and makes the command's hardware fence. Throws what
  // fence_source::wait throws (the scheduler fails the job with it).
  issued issue(const sim::command& cmd) {
    issued out;
    out.point = last_point + 1;
    out.kernel = source.wait(syncobj, out.point);
    last_point = out.point;
    if (cmd.effect.what != sim::fault::kind::error) {
      out.hardware = out.kernel;
      return out;
    }
    out.relay = std::make_shared<error_relay>();
    promise own;
    out.hardware = own.get_fence();
    out.relay->done.emplace(std::move(own));
    const std::error_code ec(cmd.effect.errno_value, std::generic_category());
    out.kernel.async_wait(executor, [relay = out.relay, ec](std::error_code kernel_error) {
      // A kernel wait that failed (its syncobj destroyed) reports its own error.
      if (auto done = relay->take()) done->signal(kernel_error ? kernel_error : ec);
    });
    return out;
  }

  fence_source& source;
  timeline_syncobj syncobj;
  asio::any_io_executor executor;  // the reactor's: where relays complete
  std::uint64_t last_point = 0;    // the scheduler's executor only
};

namespace {

sim::time_us duration_of(const sim::command& cmd) noexcept {
  return cmd.effect.what == sim::fault::kind::slow ? cmd.effect.slow_us : cmd.duration_us;
}

// ------------------------------------------------------------------ virtual time

// sim::virtual_ring's timing, with each completion a kernel signal that is
// awaited (through the reactor) within its clock event.
class virtual_engine final : public host_ring::engine {
 public:
  virtual_engine(fence_source& s, virtual_time& t)
      : engine(s, t.reactor_context().get_executor()), time_(t) {}
  ~virtual_engine() override { cancel_all(); }

  fence run(sim::command& cmd) override {
    auto& clock = time_.clock();
    const sim::time_us now = clock.now();
    sim::run_record record{cmd.tag, now, std::max(now, busy_until_), true, 0};
    issued work = issue(cmd);
    const std::uint64_t id = next_id_++;
    auto& slot = pending_[id];
    slot.point = work.point;
    slot.hardware = work.hardware;
    slot.relay = std::move(work.relay);
    if (stuck_ || cmd.effect.what == sim::fault::kind::hang) {
      // Nothing after a hang ever starts.
      stuck_ = true;
      record.finishes = false;
      log_.push_back(record);
      return work.hardware;
    }
    record.end = record.start + duration_of(cmd);
    busy_until_ = record.end;
    log_.push_back(record);
    slot.event = clock.at(record.end, sim::phase::completion, [this, id] { complete(id); });
    return work.hardware;
  }

  void cancel_all() noexcept override {
    auto dropped = std::move(pending_);
    pending_.clear();
    stuck_ = false;
    busy_until_ = time_.clock().now();
    for (auto& [id, slot] : dropped) {
      if (slot.event) time_.clock().cancel(slot.event);
      // Its fence fails `broken` now, as sim::virtual_ring's would; kernel
      // fences of abandoned points are simply no longer waited for.
      if (slot.relay) slot.relay->take();
    }
  }

  sim::time_us now() const noexcept override { return time_.clock().now(); }
  bool stalled() const override { return stuck_ || pending_.empty(); }
  std::vector<sim::run_record> log() const override { return log_; }

 private:
  struct pending_run {
    sim::virtual_clock::event_id event = 0;
    std::uint64_t point = 0;
    fence hardware;
    std::shared_ptr<error_relay> relay;
  };

  // The command's end: signal its point, and see the fence signalled before
  // anything else of this instant happens.
  void complete(std::uint64_t id) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    pending_run done = std::move(it->second);
    pending_.erase(it);
    syncobj.signal(done.point);
    time_.await(done.hardware, "host_ring", done.point);
  }

  virtual_time& time_;
  bool stuck_ = false;  // a hung command blocks the ring
  sim::time_us busy_until_ = 0;
  std::uint64_t next_id_ = 0;
  std::map<std::uint64_t, pending_run> pending_;
  std::vector<sim::run_record> log_;
};

// ------------------------------------------------------------------ real time

// sim::real_ring's device thread, whose completion is the kernel signal.
//
// The device's hooks run under its lock: the start and the end of a command in
// the log, and the signal of its point (with signalled_point_, which stalled()
// reads with the device's state). The device signals a point before it is idle
// again, so once cancel_all() has seen the device idle no point of a cancelled
// command is signalled any more.
class thread_engine final : public host_ring::engine {
 public:
  thread_engine(fence_source& s, reactor& events, std::chrono::steady_clock::time_point epoch)
      : engine(s, events.get_executor()),
        device_(
            epoch,
            [this](const item& work, sim::time_us start) { set_log(work.log_index, start, std::nullopt); },
            [this](const item& work, sim::time_us start) { on_finished(work, start); }) {}

  ~thread_engine() override {
    device_.stop();
    for (auto& relay : relays_) relay->take();
  }

  fence run(sim::command& cmd) override {
    issued work = issue(cmd);
    std::size_t index;
    {
      std::lock_guard guard(log_lock_);
      index = log_.size();
      log_.push_back(sim::run_record{cmd.tag, now(), 0, cmd.effect.what != sim::fault::kind::hang, 0});
    }
    // Forget what has come back already.
    while (!in_transit_.empty() && in_transit_.front().second.signalled()) in_transit_.pop_front();
    in_transit_.emplace_back(work.point, work.kernel);
    std::erase_if(relays_, [](const auto& relay) { return !relay->pending(); });
    if (work.relay) relays_.push_back(work.relay);
    device_.push(item{work.point, cmd, index});
    return work.hardware;
  }

  void cancel_all() noexcept override {
    // Returns only once the device holds no command any more.
    device_.cancel_all();
    in_transit_.clear();
    for (auto& relay : relays_) relay->take();  // their fences fail `broken`
    relays_.clear();
  }

  sim::time_us now() const noexcept override { return device_.now(); }

  bool stalled() const override {
    // The device's state and the last point it signalled, seen together.
    const auto signalled = device_.locked([this](sim::device_status device) -> std::optional<std::uint64_t> {
      if (!device.hung && !device.idle) return std::nullopt;  // it is executing, or has work queued
      return signalled_point_;
    });
    if (!signalled) return false;
    // A point the device signalled whose fence has not signalled yet is still
    // on its way back through the kernel and the reactor: progress to come.
    return std::none_of(in_transit_.begin(), in_transit_.end(), [signalled](const auto& entry) {
      return entry.first <= *signalled && !entry.second.signalled();
    });
  }

  std::vector<sim::run_record> log() const override {
    std::lock_guard guard(log_lock_);
    return log_;
  }

 private:
  struct item {
    std::uint64_t point;
    sim::command cmd;
    std::size_t log_index;
  };

  void set_log(std::size_t index, sim::time_us start, std::optional<sim::time_us> end) {
    std::lock_guard guard(log_lock_);
    auto& record = log_[index];
    record.start = start;
    if (end) record.end = *end;
  }

  // On the device thread, under the device's lock.
  void on_finished(const item& work, sim::time_us start) {
    try {
      syncobj.signal(work.point);
      signalled_point_ = work.point;
    } catch (const std::system_error& e) {
      // The point's fence never signals: the scheduler's timeout, if any, recovers.
      logger()->error("cosched::drm::host_ring: {}", e.what());
    }
    set_log(work.log_index, start, now());
  }

  // Written by the device thread: guarded by the device's lock (device_.locked()).
  std::uint64_t signalled_point_ = 0;

  mutable std::mutex log_lock_;
  std::vector<sim::run_record> log_;  // guarded by log_lock_

  // The scheduler's executor only.
  std::deque<std::pair<std::uint64_t, fence>> in_transit_;  // (point, kernel fence) not yet seen signalled
  std::vector<std::shared_ptr<error_relay>> relays_;

  sim::device_thread<item> device_;  // last: its thread starts once the rest is initialised
};

}  // namespace

// ------------------------------------------------------------------ host_ring

host_ring::host_ring(fence_source& source, reactor& events, std::chrono::steady_clock::time_point epoch)
    : engine_(std::make_unique<thread_engine>(source, events, epoch)) {}

host_ring::host_ring(fence_source& source, virtual_time& time)
    : engine_(std::make_unique<virtual_engine>(source, time)) {}

host_ring::~host_ring() = default;

fence host_ring::run(sim::command& cmd) { return engine_->run(cmd); }

void host_ring::cancel_all() noexcept { engine_->cancel_all(); }

timeout_verdict host_ring::on_timeout(sim::command& cmd) {
  return cmd.effect.what == sim::fault::kind::slow ? timeout_verdict::progressing : timeout_verdict::hung;
}

const timeline_syncobj& host_ring::timeline() const noexcept { return engine_->syncobj; }

std::uint64_t host_ring::last_point() const noexcept { return engine_->last_point; }

sim::time_us host_ring::now() const noexcept { return engine_->now(); }

bool host_ring::stalled() const { return engine_->stalled(); }

std::vector<sim::run_record> host_ring::log() const { return engine_->log(); }

}  // namespace cosched::drm
