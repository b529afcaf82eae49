// Fence states, promises and timelines.
#include "cosched/fence.hpp"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#include "cosched/detail/job_block.hpp"

namespace cosched {

namespace {
std::atomic<std::uint64_t> next_context{1};
}

std::uint64_t new_context() noexcept {
  // relaxed: only uniqueness matters.
  return next_context.fetch_add(1, std::memory_order_relaxed);
}

namespace detail {

#if defined(__x86_64__) || defined(__aarch64__)
static_assert(sizeof(fence_state) == 72, "a fence state is 72 bytes (see fence_state)");
#endif

std::uint64_t new_contexts(std::uint32_t n) noexcept {
  // relaxed: only uniqueness matters.
  return next_context.fetch_add(n, std::memory_order_relaxed);
}

void destroy_fence_block(ref_block* block) noexcept {
  switch (block->type) {
    case block_kind::single:
      delete static_cast<single_fence_block*>(block);
      return;
    case block_kind::job:
      delete static_cast<job_block*>(block);
      return;
    case block_kind::combinator:
      destroy_combinator_block(block);
      return;
  }
}

bool fence_state::add_waiter(fence_waiter& w) const noexcept {
  std::lock_guard guard(lock);
  if (signalled.load(std::memory_order_relaxed)) return false;  // lock orders it
  waiters.push_back(w);
  return true;
}

bool fence_state::remove_waiter(fence_waiter& w) const noexcept {
  std::lock_guard guard(lock);
  if (!waiter_list::linked(w)) return false;  // not linked (notified, or never added)
  // Notified here and since added to another fence as its only waiter (its
  // own tail, and not this list's head).
  if (waiter_list::prev(w) == &w && waiters.front() != &w) return false;
  waiters.erase(w);
  return true;
}

void fence_state::signal(std::error_code ec, std::optional<fence_point> root_cause) noexcept {
  // Recording before the lock is safe: nobody reads the outcome of a pending
  // fence, and a second signal terminates below.
  if (signalled.load(std::memory_order_relaxed)) signalled_twice();
  record(ec, root_cause);
  signal_recorded();
}

void fence_state::signalled_twice() const noexcept {
  std::fprintf(stderr, "cosched: fence (%llu:%llu) signalled twice\n",
               static_cast<unsigned long long>(point.context), static_cast<unsigned long long>(point.seqno));
  std::abort();
}

void fence_state::signal_recorded() noexcept {
  std::lock_guard guard(lock);
  if (signalled.load(std::memory_order_relaxed)) signalled_twice();
  // release: error and cause become visible to anyone who sees signalled == true.
  signalled.store(true, std::memory_order_release);
  // Waiters are notified under the lock: a waiter that is being removed
  // concurrently either was unlinked first (and is not notified) or is notified
  // before its remover can proceed. notify only hands off; it never blocks.
  // Each waiter is unlinked before its notify, which may link it to another fence.
  waiters.unlink_each([this](fence_waiter& w) noexcept { w.notify(w, *this); });
}

void fence_state::set_deadline(std::int64_t ns) noexcept {
  // relaxed: a hint; the CAS loop keeps the minimum.
  auto current = deadline_ns.load(std::memory_order_relaxed);
  while (ns < current && !deadline_ns.compare_exchange_weak(current, ns, std::memory_order_relaxed)) {
  }
}

}  // namespace detail

fence fence::make_signalled(std::error_code ec, std::optional<fence_point> cause) {
  auto* block = new detail::single_fence_block(fence_point{new_context(), 1});
  block->state.signal(ec, cause);
  return adopt(&block->state);
}

namespace {

// The stub fence's block: built signalled on first use, never destroyed.
struct stub_holder {
  detail::single_fence_block block{fence_point{0, 0}};
  stub_holder() noexcept {
    block.state.signal({}, std::nullopt);
    block.immortal = true;  // before any handle exists: the static's initialisation publishes it
  }
};

detail::fence_state& stub_state() noexcept {
  static stub_holder holder;
  return holder.block.state;
}

}  // namespace

fence fence::stub() noexcept { return adopt(&stub_state()); }

promise::promise() : promise(fence_point{new_context(), 1}) {}

promise::promise(fence_point point) : state_(&(new detail::single_fence_block(point))->state) {}

fence promise::get_fence() const noexcept {
  state_->owner->add_ref();
  return fence::adopt(state_);
}

void promise::signal(std::error_code ec, std::optional<fence_point> cause) noexcept {
  if (!state_) return;
  auto* state = std::exchange(state_, nullptr);
  state->signal(ec, cause);
  state->owner->release();
}

void promise::reset() noexcept {
  if (state_) signal(make_error_code(errc::broken));
}

// ------------------------------------------------------------------ timeline

// The fast path of advance() takes no lock: it publishes the value, then looks
// whether anyone waits. at() registers, then re-reads the value. Both use
// seq_cst so that at least one side sees the other (no lost wake-up).
struct timeline::state {
  std::uint64_t context;
  std::atomic<std::uint64_t> value{0};
  std::atomic<std::size_t> waiting{0};
  std::mutex lock;
  std::multimap<std::uint64_t, promise> pending;  // guarded by lock

  // Signals the points up to `reached` under the lock, so that when advance()
  // returns every point up to its value has signalled (waiters only hand off).
  void signal_reached(std::uint64_t reached) {
    auto end = pending.upper_bound(reached);
    std::size_t count = 0;
    for (auto it = pending.begin(); it != end; ++it, ++count) it->second.set_value();
    pending.erase(pending.begin(), end);
    waiting.fetch_sub(count, std::memory_order_seq_cst);
  }
};

timeline::timeline() : timeline(new_context()) {}

timeline::timeline(std::uint64_t context) : state_(std::make_unique<state>()) { state_->context = context; }

timeline::~timeline() = default;  // pending promises signal broken as they go

std::uint64_t timeline::context() const noexcept { return state_->context; }

std::uint64_t timeline::value() const noexcept {
  // acquire: pairs with the release in advance().
  return state_->value.load(std::memory_order_acquire);
}

fence timeline::at(std::uint64_t seqno) {
  promise point(fence_point{state_->context, seqno});
  fence result = point.get_fence();
  if (state_->value.load(std::memory_order_seq_cst) >= seqno) {
    point.set_value();
    return result;
  }
  std::lock_guard guard(state_->lock);
  state_->pending.emplace(seqno, std::move(point));
  state_->waiting.fetch_add(1, std::memory_order_seq_cst);
  state_->signal_reached(state_->value.load(std::memory_order_seq_cst));
  return result;
}

void timeline::advance(std::uint64_t seqno) {
  auto current = state_->value.load(std::memory_order_seq_cst);
  do {
    if (seqno <= current) return;
  } while (!state_->value.compare_exchange_weak(current, seqno, std::memory_order_seq_cst));
  if (state_->waiting.load(std::memory_order_seq_cst) == 0) return;
  std::lock_guard guard(state_->lock);
  state_->signal_reached(state_->value.load(std::memory_order_seq_cst));
}

}  // namespace cosched
