// when_all and when_any: a reference-counted block holding the combined fence's
// state and one intrusive waiter per input.
#include "cosched/combinators.hpp"

#include <atomic>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>

namespace cosched {

namespace detail {

namespace {

// The combined fence's block. Its reference count counts the handles to the
// combined fence (ref_block); the waiters it links into its inputs do not
// count: when the last handle goes, destroy() unlinks them first.
//
// Why that is enough: an input notifies its waiters under its own lock
// (fence_state::signal_recorded), and remove_waiter takes that lock. Once
// remove_waiter has returned for every input, no notification of this block is
// running or can start, so the block can be freed. Notifications never release
// a handle, so a block is never freed from inside one (see the precondition in
// combinators.hpp).
//
// State of a when_all block: `remaining` counts the inputs not yet signalled,
// plus one held by the constructor until every waiter is linked; whoever takes
// it to zero signals the result. State of a when_any block: `decided` turns
// true once; whoever turns it writes `winner` and signals the result.
struct combinator_block final : ref_block {
  // An input's waiter (notify gets the link back from it).
  struct link : fence_waiter {
    combinator_block* block = nullptr;
    fence input;
    std::size_t index = 0;  // reported by any_fence::index() when this input wins
  };

  combinator_block(std::size_t count, failure_cause c)
      : ref_block(block_kind::combinator),
        result(this, fence_point{new_context(), 1}),
        links(new link[count]),
        size(count),
        cause(c) {}

  static void destroy_block(ref_block* self) noexcept {
    auto* block = static_cast<combinator_block*>(self);
    for (std::size_t i = 0; i < block->size; ++i) {
      auto& l = block->links[i];
      if (l.input.valid()) l.input.state()->remove_waiter(l);
    }
    delete block;
  }

  std::optional<fence_point> cause_of(const fence& input) const noexcept {
    if (cause == failure_cause::as_is) return input.cause();
    return input.cause() ? input.cause() : std::optional<fence_point>(input.point());
  }

  // when_all: one input (or the constructor) is done.
  void arrive() noexcept {
    // acq_rel: the decrements form one release sequence, so the last one sees
    // the outcome of every input (each read after its signal) before reading them.
    if (remaining.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    for (std::size_t i = 0; i < size; ++i) {
      const fence& input = links[i].input;
      if (input.error()) {
        result.signal(input.error(), cause_of(input));
        return;
      }
    }
    result.signal({}, std::nullopt);
  }

  // when_any: `l` has signalled.
  void decide(const link& l) noexcept {
    // relaxed: only one exchange can see false; what the winner writes is
    // published by the release in result.signal().
    if (decided.exchange(true, std::memory_order_relaxed)) return;
    winner = l.index;
    result.signal(l.input.error(), cause_of(l.input));
  }

  static void on_all_input(fence_waiter& w, fence_state&) noexcept { static_cast<link&>(w).block->arrive(); }
  static void on_any_input(fence_waiter& w, fence_state&) noexcept {
    auto& l = static_cast<link&>(w);
    l.block->decide(l);
  }

  fence_state result;
  std::unique_ptr<link[]> links;
  const std::size_t size;
  const failure_cause cause;
  std::atomic<std::size_t> remaining{0};
  std::atomic<bool> decided{false};
  std::size_t winner = any_fence::none;  // written once, before `result` signals
};

void require_valid(std::span<const fence> inputs, const char* operation) {
  for (const auto& f : inputs)
    if (!f.valid()) throw std::invalid_argument(std::string("cosched::") + operation + ": an empty fence");
}

}  // namespace

void destroy_combinator_block(ref_block* block) noexcept { combinator_block::destroy_block(block); }

fence when_all(std::span<const fence> inputs, failure_cause cause) {
  require_valid(inputs, "when_all");
  if (inputs.empty()) return fence::stub();
  auto* block = new combinator_block(inputs.size(), cause);
  block->remaining.store(inputs.size() + 1, std::memory_order_relaxed);  // relaxed: not shared yet
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    auto& l = block->links[i];
    l.input = inputs[i];
    l.index = i;
    l.block = block;
    l.notify = &combinator_block::on_all_input;
  }
  // Fully built before the first waiter is linked: an input may signal, and
  // notify, on another thread from then on.
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    auto& l = block->links[i];
    if (!l.input.state()->add_waiter(l)) block->arrive();
  }
  block->arrive();  // the constructor's share
  return fence::adopt(&block->result);
}

any_fence when_any(std::span<const fence> inputs, std::span<const std::size_t> indices, failure_cause cause) {
  require_valid(inputs, "when_any");
  if (inputs.empty()) throw std::invalid_argument("cosched::when_any: no fences");
  if (indices.size() != inputs.size()) throw std::invalid_argument("cosched::when_any: one index per fence");
  auto* block = new combinator_block(inputs.size(), cause);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    auto& l = block->links[i];
    l.input = inputs[i];
    l.index = indices[i];
    l.block = block;
    l.notify = &combinator_block::on_any_input;
  }
  any_fence result(fence::adopt(&block->result));
  // An input signalled already: the first in argument order wins, and no
  // waiter is linked at all.
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].signalled()) {
      block->decide(block->links[i]);
      return result;
    }
  }
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    // relaxed: an early exit only; a later input linked after the decision is
    // notified harmlessly or unlinked with the block.
    if (block->decided.load(std::memory_order_relaxed)) break;
    auto& l = block->links[i];
    if (!l.input.state()->add_waiter(l)) block->decide(l);
  }
  return result;
}

}  // namespace detail

fence when_all(std::span<const fence> inputs) {
  return detail::when_all(inputs, detail::failure_cause::root);
}

any_fence when_any(std::span<const fence> inputs) {
  std::unique_ptr<std::size_t[]> indices(new std::size_t[inputs.size()]);
  for (std::size_t i = 0; i < inputs.size(); ++i) indices[i] = i;
  return detail::when_any(inputs, std::span<const std::size_t>(indices.get(), inputs.size()),
                          detail::failure_cause::root);
}

std::optional<std::size_t> any_fence::index() const noexcept {
  // The acquire in signalled() pairs with the release of the result's signal,
  // which follows the write of `winner`.
  if (!fence_.valid() || !fence_.signalled()) return std::nullopt;
  const auto* block = static_cast<const detail::combinator_block*>(fence_.state()->owner);
  return block->winner;
}

}  // namespace cosched
