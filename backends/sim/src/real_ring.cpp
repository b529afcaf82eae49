// The real-time simulated ring: device thread, eventfd, reactor watch.
#include "cosched/sim/real_ring.hpp"

#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace cosched::sim {

namespace {
constexpr time_us spin_limit_us = 200;

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
}  // namespace

bool real_ring::interrupted(std::uint64_t generation) const noexcept {
  // acquire: pairs with the release stores in cancel_all() and the destructor.
  return stop_flag_.load(std::memory_order_acquire) || generation_seen_.load(std::memory_order_acquire) != generation;
}

real_ring::real_ring(reactor& r, std::chrono::steady_clock::time_point epoch) : reactor_(r), epoch_(epoch) {
  event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (event_fd_ < 0) throw std::system_error(errno, std::generic_category(), "cosched::sim::real_ring: eventfd");
  watch_ = reactor_.watch(event_fd_, [this] { on_device_event(); });
  device_ = std::thread([this] { device_loop(); });
}

real_ring::~real_ring() {
  {
    std::lock_guard guard(lock_);
    stop_ = true;
    ++generation_;
    // release: the spinning device sees it without the lock.
    stop_flag_.store(true, std::memory_order_release);
    generation_seen_.store(generation_, std::memory_order_release);
  }
  wake_.notify_all();
  device_.join();
  reactor_.unwatch(watch_);
  // The watch may still be armed until the reactor processes the unwatch; the
  // callback no longer runs for this ring once unwatched on the reactor thread.
  ::close(event_fd_);
  in_flight_.clear();  // pending promises signal `broken`
}

time_us real_ring::now() const noexcept {
  return static_cast<time_us>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - epoch_).count());
}

fence real_ring::run(command& cmd) {
  const std::uint64_t id = next_id_++;
  auto [it, inserted] = in_flight_.emplace(id, promise());
  fence hardware = it->second.get_fence();
  {
    std::lock_guard guard(log_lock_);
    log_index_.emplace(id, log_.size());
    log_.push_back(run_record{cmd.tag, now(), 0, cmd.effect.what != fault::kind::hang, 0});
  }
  {
    std::lock_guard guard(lock_);
    queue_.push_back(work{id, cmd});
  }
  wake_.notify_one();
  return hardware;
}

void real_ring::cancel_all() noexcept {
  std::unique_lock guard(lock_);
  queue_.clear();
  ++generation_;
  // release: the spinning device sees it without the lock.
  generation_seen_.store(generation_, std::memory_order_release);
  wake_.notify_all();
  // Returns only once the device holds no command any more.
  idle_.wait(guard, [this] { return !busy_; });
  done_.clear();
  guard.unlock();
  in_flight_.clear();  // their fences fail `broken`; the scheduler no longer waits for them
}

void real_ring::device_loop() {
  // Commands last microseconds: the default 50 us timer slack would dominate.
  ::prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  std::unique_lock guard(lock_);
  for (;;) {
    wake_.wait(guard, [this] { return stop_ || !queue_.empty(); });
    if (stop_) break;
    work item = queue_.front();
    queue_.pop_front();
    busy_ = true;
    const std::uint64_t generation = generation_;
    const time_us start = now();
    bool finished = false;
    if (item.cmd.effect.what == fault::kind::hang) {
      // Never finishes: wait until cancelled or stopped.
      hung_ = true;
      wake_.wait(guard, [&] { return stop_ || generation_ != generation; });
      hung_ = false;
    } else {
      const time_us duration =
          item.cmd.effect.what == fault::kind::slow ? item.cmd.effect.slow_us : item.cmd.duration_us;
      const auto deadline = epoch_ + std::chrono::microseconds(start + duration);
      if (duration <= spin_limit_us) {
        // A timed sleep costs tens of microseconds to wake from: for short
        // commands the device spins, as hardware would simply be busy.
        guard.unlock();
        while (std::chrono::steady_clock::now() < deadline && !interrupted(generation)) cpu_relax();
        guard.lock();
        finished = !stop_ && generation_ == generation;
      } else {
        finished = !wake_.wait_until(guard, deadline, [&] { return stop_ || generation_ != generation; });
      }
    }
    busy_ = false;
    idle_.notify_all();
    if (!finished) continue;
    std::error_code error;
    if (item.cmd.effect.what == fault::kind::error)
      error = std::error_code(item.cmd.effect.errno_value, std::generic_category());
    done_.push_back(done_item{item.id, start, now(), error});
    const std::uint64_t one = 1;
    // The mutex published done_; the eventfd only wakes the reactor.
    [[maybe_unused]] auto written = ::write(event_fd_, &one, sizeof one);
  }
  busy_ = false;
  idle_.notify_all();
}

void real_ring::on_device_event() {
  std::uint64_t count;
  while (::read(event_fd_, &count, sizeof count) == sizeof count) {
  }
  std::vector<done_item> finished;
  {
    std::lock_guard guard(lock_);
    finished.swap(done_);
  }
  for (const auto& item : finished) {
    auto it = in_flight_.find(item.id);
    if (it == in_flight_.end()) continue;  // cancelled meanwhile
    promise done = std::move(it->second);
    in_flight_.erase(it);
    {
      std::lock_guard guard(log_lock_);
      auto& record = log_[log_index_.at(item.id)];
      record.start = item.start;
      record.end = item.end;
      log_index_.erase(item.id);
    }
    done.signal(item.error);
  }
}

bool real_ring::stalled() const {
  std::lock_guard guard(lock_);
  return hung_ || (!busy_ && queue_.empty() && done_.empty());
}

std::vector<run_record> real_ring::log() const {
  std::lock_guard guard(log_lock_);
  return log_;
}

}  // namespace cosched::sim
