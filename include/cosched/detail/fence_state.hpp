// The shared state behind a fence: a one-shot signal with an error code, a cause
// and an intrusive list of waiters. Internal; users hold cosched::fence handles.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <system_error>

#include "cosched/detail/intrusive_list.hpp"
#include "cosched/detail/spinlock.hpp"

namespace cosched {

/// A point on a timeline: the context (one per timeline) and a 64-bit sequence
/// number. The finished fence of the N-th job pushed to an entity is the point
/// (entity context, N).
struct fence_point {
  std::uint64_t context = 0;
  std::uint64_t seqno = 0;
  friend bool operator==(const fence_point&, const fence_point&) = default;
};

/// A fresh, process-unique timeline context id. Thread-safe.
std::uint64_t new_context() noexcept;

namespace detail {

/// `n` consecutive fresh contexts; returns the first. Thread-safe.
std::uint64_t new_contexts(std::uint32_t n) noexcept;

struct fence_state;

/// An intrusive waiter. `notify` is called exactly once, under the fence's lock,
/// when the fence signals, unless the waiter was removed first. It must be short
/// and must not block: it hands the wake-up to the waiter's executor.
///
/// Linked in a fence's list (waiter_list, doubly linked), a waiter has a
/// `prev`: the waiter before it, or, for the list's head, the list's tail
/// (itself when it waits alone), so that a fence needs no tail pointer; a
/// waiter that is not linked has none (so it needs no flag: every job has one).
///
/// What `notify` acts on derives from the waiter (a job's block, an
/// asynchronous wait, a combinator's link), so a waiter needs no pointer to it.
struct fence_waiter {
  list_hook<fence_waiter> waiter_link;  // its place in a fence's waiters, guarded by the fence's lock
  void (*notify)(fence_waiter& self, fence_state& state) noexcept = nullptr;
};

/// A fence's waiters, in the order they were added: one pointer, the head,
/// whose prev is the tail (intrusive_list's doubly linked shape).
using waiter_list = intrusive_list<fence_waiter, &fence_waiter::waiter_link>;

/// The kinds of fence blocks: how the last reference destroys one.
enum class block_kind : std::uint8_t {
  single,      // single_fence_block: a promise's, a signalled fence's
  job,         // job_block: a job's finished fence
  combinator,  // when_all / when_any (combinators.cpp)
};

struct ref_block;
/// Destroys `block` as its kind says (the last reference is gone).
void destroy_fence_block(ref_block* block) noexcept;
/// Destroys a when_all / when_any block (defined in combinators.cpp).
void destroy_combinator_block(ref_block* block) noexcept;

/// Reference counting for a block that holds one or more fence states. 8 bytes:
/// a kind instead of a pointer to a destroy function (a run may hold a million
/// job blocks).
struct ref_block {
  explicit ref_block(block_kind k) noexcept : type(k) {}

  std::atomic<std::uint32_t> refs{1};
  // Set once, before the block is shared (the stub fence's block): it is never
  // destroyed, so references to it are not counted.
  bool immortal = false;
  const block_kind type;  // also tells a job's block from other fence blocks

  void add_ref() noexcept {
    if (immortal) return;
    // relaxed: a new reference is made from an existing one, which keeps the block alive.
    refs.fetch_add(1, std::memory_order_relaxed);
  }
  void release() noexcept {
    if (immortal) return;
    // acq_rel: the last releaser must see every write made through other references.
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy_fence_block(this);
  }
};

/// State machine (one transition): pending --signal()--> signalled.
/// The outcome (error, `cause`, `has_cause`) is written before `signalled` is
/// stored with release, and read only after an acquire load of `signalled`
/// returned true.
///
/// 72 bytes: every job's block holds one, and a run may hold a million jobs.
struct fence_state {
  explicit fence_state(ref_block* owner_block, fence_point p) noexcept : owner(owner_block), point(p) {}
  fence_state(const fence_state&) = delete;
  fence_state& operator=(const fence_state&) = delete;

  bool is_signalled() const noexcept {
    // acquire: pairs with the release in signal(), so error/cause are visible.
    return signalled.load(std::memory_order_acquire);
  }

  /// Links `w` unless the fence has already signalled. Returns false (and does
  /// not link) when it has.
  bool add_waiter(fence_waiter& w) const noexcept;

  /// Unlinks `w` if it is still linked. Returns true when it was unlinked (its
  /// notify will not be called), false when notify has been called already.
  /// `w` must not be linked to another fence meanwhile (it may have been
  /// notified and added to another fence as its only waiter).
  bool remove_waiter(fence_waiter& w) const noexcept;

  /// Signals the fence and notifies every waiter. Calling it twice is a
  /// programming error inside cosched and terminates.
  void signal(std::error_code ec, std::optional<fence_point> root_cause) noexcept;

  /// Records the outcome that signal_recorded() will publish. Only the
  /// signalling side may call it, before the fence signals: nobody reads the
  /// outcome of a pending fence.
  void record(std::error_code ec, std::optional<fence_point> root_cause) noexcept {
    error_value = ec.value();
    error_category = &ec.category();
    has_cause = ec && root_cause.has_value();
    if (has_cause) cause = *root_cause;
  }
  /// The recorded error (meaningful for the signalling side, or once signalled).
  std::error_code error() const noexcept {
    return error_category ? std::error_code(error_value, *error_category) : std::error_code();
  }
  /// The recorded root cause (meaningful for the signalling side, or once signalled).
  std::optional<fence_point> recorded_cause() const noexcept {
    return has_cause ? std::optional<fence_point>(cause) : std::nullopt;
  }
  /// Signals with the outcome recorded before (success if none was).
  void signal_recorded() noexcept;

  /// Records a deadline (nanoseconds on the steady clock); keeps the earliest.
  void set_deadline(std::int64_t ns) noexcept;  // atomic: safe on a shared state

  [[noreturn]] void signalled_twice() const noexcept;

  ref_block* owner;
  fence_point point;
  mutable spinlock lock;
  std::atomic<bool> signalled{false};
  bool has_cause = false;
  // The error, as a std::error_code's two parts (it has a 4-byte hole of its
  // own); no category: none recorded, a default std::error_code.
  int error_value = 0;
  const std::error_category* error_category = nullptr;
  fence_point cause;
  std::atomic<std::int64_t> deadline_ns{INT64_MAX};
  mutable waiter_list waiters;  // guarded by lock; the head's prev is the tail
};

/// A block holding exactly one fence state: what a standalone promise allocates.
struct single_fence_block final : ref_block {
  explicit single_fence_block(fence_point p) noexcept : ref_block(block_kind::single), state(this, p) {}
  fence_state state;
};

}  // namespace detail
}  // namespace cosched
