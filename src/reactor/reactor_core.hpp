// The reactor's common core: its requests (POLL_ADD, POLL_REMOVE, no-ops) in a
// table of generation-tagged entries, the completions that signal their fences or
// call their watches, and the public operations, on whichever reactor_loop it runs.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>
#include <variant>
#include <vector>

#include "cosched/fence.hpp"
#include "cosched/reactor.hpp"
#include "reactor/reactor_loop.hpp"

struct io_uring;
struct io_uring_sqe;

namespace cosched::detail {

// ---- the public operations, as handed to the loop's thread ----

/// reactor::wait_readable(): poll `fd` once, then signal `done`.
struct start_wait_request {
  int fd;
  promise done;
};
/// reactor::cancel(): cancel the wait behind `waited` (kept: its state is the key).
struct cancel_wait_request {
  fence waited;
};
/// reactor::watch(): call `on_ready` each time `fd` becomes readable.
struct start_watch_request {
  reactor::watch_id id;
  int fd;
  std::function<void()> on_ready;
};
/// reactor::unwatch().
struct stop_watch_request {
  reactor::watch_id id;
};
/// One public operation, called off the loop's thread and carried to it.
using handoff =
    std::variant<start_wait_request, cancel_wait_request, start_watch_request, stop_watch_request>;

/// The handler that carries a handoff to the loop's thread: one type for every
/// operation, so that a loop posts it to its context's concrete executor (one
/// allocation, as a lambda would be). It holds the core weakly: an operation
/// that arrives after the reactor is gone is dropped (a wait's promise fails
/// `broken` as it goes).
struct handoff_handler {
  std::weak_ptr<reactor_core> core;
  handoff request;
  void operator()();
};

/// The mechanism of a cosched::reactor, written once for both loops: a table of
/// requests, each an entry whose index and generation (with the reactor's tag)
/// make up its requests' user_data, so that a completion finds its entry in O(1)
/// and a stale one (of a released entry, or of an earlier reactor on a shared
/// ring) is recognised and dropped. Oneshot entries (waits) signal a promise and
/// are released; multishot entries (watches) call their callback and are re-armed
/// when the kernel ends the multishot, until unwatched.
///
/// What depends on the context (the ring, submission, reaping, posting) is the
/// reactor_loop's: the core calls it per prepared request, and the loop hands
/// each completion to dispatch() without a virtual call of the core's.
///
/// @par Thread Safety
/// perform(), hand_off(), on_own_thread(), next_watch_id(), pending() and loop()
/// from any thread; everything else on the loop's thread only.
///
/// @par Ownership and Lifetime
/// Owned by a shared_ptr in cosched::reactor; handlers posted for it hold a
/// weak_ptr. Owns its loop, which is destroyed after the table (so a ring of the
/// loop's own is closed after the oneshot promises failed `broken`).
class reactor_core final : public std::enable_shared_from_this<reactor_core> {
 public:
  /// Takes `loop`; start() must follow once the core is owned by a shared_ptr.
  explicit reactor_core(std::unique_ptr<reactor_loop> loop) noexcept;
  /// Lets the loop end what it must (teardown()), then fails pending waits with
  /// errc::broken. On the loop's thread, or while the context is not running.
  ~reactor_core();
  reactor_core(const reactor_core&) = delete;
  reactor_core& operator=(const reactor_core&) = delete;

  /// Starts the loop and takes the tag its requests carry.
  void start();

  // ---- the public operations ----

  /// Runs `request` now on the loop's thread, or hands it to that thread.
  void perform(handoff request);
  /// Hands `request` to the loop's thread (called off it).
  void hand_off(handoff request);
  /// Whether the calling thread is the loop's.
  bool on_own_thread() const noexcept { return loop_->on_own_thread(); }
  /// A new watch id, unique for this reactor.
  reactor::watch_id next_watch_id() noexcept {
    // relaxed: only uniqueness matters.
    return next_watch_.fetch_add(1, std::memory_order_relaxed);
  }

  /// Cancels the wait keyed by `key`; returns whether one was pending.
  bool cancel_wait(const fence_state* key);

  // ---- the loops' side ----

  /// A completion of the ring: signals or calls its entry, or drops it if stale.
  /// The callbacks it runs may make requests.
  void dispatch(std::uint64_t user_data, std::int32_t res, std::uint32_t flags);
  /// A POLL_REMOVE for every entry in use: the polls of a ring that outlives
  /// the reactor end with it. Throws when the submission queue stays full.
  void cancel_all();
  /// Entries in use (waits and watches), a snapshot from another thread.
  std::size_t pending() const noexcept {
    // relaxed: a snapshot; on the loop thread, which alone changes it, exact.
    return pending_count_.load(std::memory_order_relaxed);
  }

  reactor_loop& loop() noexcept { return *loop_; }
  const reactor_loop& loop() const noexcept { return *loop_; }

 private:
  /// One request slot. An index is reused after release, with the generation
  /// advanced, so that a late completion of its earlier request is stale.
  struct entry {
    enum class kind : std::uint8_t { free, oneshot, multishot };
    kind what = kind::free;
    std::uint32_t generation = 0;
    int fd = -1;
    std::optional<promise> done;     // oneshot
    std::function<void()> on_ready;  // multishot
    const fence_state* key = nullptr;
    bool unwatched = false;
    bool failed = false;  // multishot: the kernel refused the poll; waits for unwatch(), not re-armed
  };

  friend struct handoff_handler;
  /// Runs a handed-off operation on the loop's thread.
  void apply(handoff& request);
  void run(start_wait_request& request);
  void run(cancel_wait_request& request);
  void run(start_watch_request& request);
  void run(stop_watch_request& request);

  std::uint32_t allocate(entry::kind what, int fd);
  void release(std::uint32_t index);
  std::uint64_t user_data_of(std::uint32_t index) const noexcept;
  /// A free submission queue entry; submits a full queue first if the loop can.
  io_uring_sqe* next_sqe();
  /// POLL_ADD (oneshot or multishot) for the entry at `index`.
  void prepare(std::uint32_t index);
  /// POLL_REMOVE of the entry's poll; its completion carries the cancel marker.
  void prepare_cancel(std::uint32_t index);
  /// A no-op in the entry's name: its completion releases a refused watch.
  void prepare_nop(std::uint32_t index);

  /// The loop; declared first, so destroyed last.
  std::unique_ptr<reactor_loop> loop_;
  /// The loop's ring (taken once: no virtual call per request).
  io_uring& ring_;
  /// The reactor's tag in the top byte of every user_data (from start()): on a
  /// shared ring, completions of an earlier reactor's requests may still arrive,
  /// and must not be taken for this one's.
  std::uint64_t tag_ = 0;
  /// The request table; `free_slots_` lists its released indices.
  std::vector<entry> entries_;
  std::vector<std::uint32_t> free_slots_;
  /// Waits by their fence's state (for cancel()), watches by id (for unwatch()).
  std::unordered_map<const fence_state*, std::uint32_t> by_fence_;
  std::unordered_map<reactor::watch_id, std::uint32_t> watches_;
  /// Entries in use; written on the loop's thread only.
  std::atomic<std::size_t> pending_count_{0};
  std::atomic<reactor::watch_id> next_watch_{1};
};

}  // namespace cosched::detail
