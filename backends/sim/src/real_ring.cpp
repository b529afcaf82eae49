// The real-time simulated ring: device thread, eventfd, reactor watch.
#include "cosched/sim/real_ring.hpp"

#include "cosched/detail/os_error.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

namespace cosched::sim {

real_ring::real_ring(reactor& r, std::chrono::steady_clock::time_point epoch)
    : reactor_(r),
      device_(
          epoch, [this](const work& item, time_us start) { on_started(item, start); },
          [this](const work& item, time_us start) { on_finished(item, start); }) {
  event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (event_fd_ < 0) throw cosched::detail::os_error(errno, "cosched::sim::real_ring: eventfd");
  watch_ = reactor_.watch(event_fd_, [this] { on_device_event(); });
}

real_ring::~real_ring() {
  device_.stop();
  reactor_.unwatch(watch_);
  // The watch may still be armed until the reactor processes the unwatch; the
  // callback no longer runs for this ring once unwatched on the reactor thread.
  ::close(event_fd_);
  in_flight_.clear();  // pending promises signal `broken`
}

time_us real_ring::now() const noexcept { return device_.now(); }

fence real_ring::run(command& cmd) {
  const std::uint64_t id = next_id_++;
  auto [it, inserted] = in_flight_.emplace(id, running{promise(), &cmd});
  fence hardware = it->second.done.get_fence();
  run_ids_[&cmd] = id;
  {
    std::lock_guard guard(log_lock_);
    log_index_.emplace(id, log_.size());
    log_.push_back(run_record{cmd.tag, now(), 0, cmd.effect.what != fault::kind::hang, 0});
  }
  device_.push(work{id, cmd});
  return hardware;
}

void real_ring::cancel_all() noexcept {
  // Returns only once the device holds no command any more; what it finished
  // before that is dropped with the rest.
  device_.cancel_all([this] { done_.clear(); });
  in_flight_.clear();  // their fences fail `broken`; the scheduler no longer waits for them
  run_ids_.clear();
}

// On the device thread, under the device's lock: the log shows a command's
// start as soon as it begins (a command cancelled while running keeps it).
void real_ring::on_started(const work& item, time_us start) {
  std::lock_guard guard(log_lock_);
  if (auto it = log_index_.find(item.id); it != log_index_.end()) log_[it->second].start = start;
}

// On the device thread, under the device's lock.
void real_ring::on_finished(const work& item, time_us start) {
  std::error_code error;
  if (item.cmd.effect.what == fault::kind::error)
    error = std::error_code(item.cmd.effect.errno_value, std::generic_category());
  done_.push_back(done_item{item.id, start, now(), error});
  const std::uint64_t one = 1;
  // The device's lock published done_; the eventfd only wakes the reactor.
  [[maybe_unused]] auto written = ::write(event_fd_, &one, sizeof one);
}

void real_ring::on_device_event() {
  std::uint64_t count;
  while (::read(event_fd_, &count, sizeof count) == sizeof count) {
  }
  std::vector<done_item> finished;
  device_.locked([&](device_status) { finished.swap(done_); });
  for (const auto& item : finished) {
    auto it = in_flight_.find(item.id);
    if (it == in_flight_.end()) continue;  // cancelled meanwhile
    promise done = std::move(it->second.done);
    if (auto run = run_ids_.find(it->second.cmd); run != run_ids_.end() && run->second == item.id)
      run_ids_.erase(run);
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

timeout_verdict real_ring::on_timeout(command& cmd) {
  if (cmd.effect.what == fault::kind::slow) return timeout_verdict::progressing;
  const auto it = run_ids_.find(&cmd);
  if (it == run_ids_.end()) return timeout_verdict::progressing;  // finished and handled already
  const std::uint64_t id = it->second;
  // Finished on the device, its completion not yet through the reactor: never hung.
  const bool finished = device_.locked([&](device_status) {
    return std::any_of(done_.begin(), done_.end(), [id](const done_item& d) { return d.id == id; });
  });
  return finished ? timeout_verdict::progressing : timeout_verdict::hung;
}

std::size_t real_ring::completions_waiting() const {
  return device_.locked([this](device_status) { return done_.size(); });
}

bool real_ring::stalled() const {
  return device_.locked(
      [this](device_status device) { return device.hung || (device.idle && done_.empty()); });
}

std::vector<run_record> real_ring::log() const {
  std::lock_guard guard(log_lock_);
  return log_;
}

}  // namespace cosched::sim
