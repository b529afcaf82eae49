// A small test-and-test-and-set lock for the short critical sections of fences,
// mailboxes and inboxes: list links and flags, plus the hand-off of a wake-up
// (a queue push or an executor post), never anything that waits for another thread.
#pragma once

#include <atomic>
#include <thread>

namespace cosched::detail {

class spinlock {
 public:
  void lock() noexcept {
    for (unsigned spins = 0;; ++spins) {
      // acquire: the critical section must see what the previous holder wrote.
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins > 64) std::this_thread::yield();
      }
    }
  }
  bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) && !locked_.exchange(true, std::memory_order_acquire);
  }
  // release: publishes the critical section's writes to the next holder.
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace cosched::detail
