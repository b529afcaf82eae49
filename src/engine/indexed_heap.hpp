// A binary min-heap of pointers whose elements know their position, so that
// one element can be removed or re-sorted after its key changed in O(log n):
// the run queue's ordered sets of entities.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace cosched::detail {

/// Position of an element in an indexed_heap (a member of the element).
struct heap_position {
  static constexpr std::uint32_t none = ~std::uint32_t{0};
  std::uint32_t index = none;
  bool linked() const noexcept { return index != none; }
};

/// Min-heap of `T*` ordered by `Less` (a strict weak order on `const T&`).
/// `Position` is the member of T that holds its place in this heap (an
/// element may be in several heaps through several members).
///
/// @par Thread Safety
/// Distinct objects: Safe. Shared objects: Unsafe.
///
/// @par Ownership and Lifetime
/// Borrows its elements; an element must be removed before it is destroyed.
template <class T, heap_position T::*Position, class Less>
class indexed_heap {
 public:
  bool empty() const noexcept { return items_.empty(); }
  std::size_t size() const noexcept { return items_.size(); }
  /// The least element (the heap must not be empty).
  T* top() const noexcept { return items_.front(); }
  /// Every element, in no particular order.
  const std::vector<T*>& items() const noexcept { return items_; }

  void push(T& item) {
    items_.push_back(&item);
    place(items_.size() - 1, item);
    sift_up(items_.size() - 1);
  }

  void erase(T& item) noexcept {
    const std::size_t at = (item.*Position).index;
    (item.*Position).index = heap_position::none;
    T* last = items_.back();
    items_.pop_back();
    if (last == &item) return;
    place(at, *last);
    update_at(at);
  }

  /// Restores the order after `item`'s key changed.
  void update(T& item) noexcept {
    if (items_.size() > 1) update_at((item.*Position).index);
  }

 private:
  void place(std::size_t at, T& item) noexcept {
    items_[at] = &item;
    (item.*Position).index = static_cast<std::uint32_t>(at);
  }
  void update_at(std::size_t at) noexcept {
    if (at > 0 && less_(*items_[at], *items_[(at - 1) / 2]))
      sift_up(at);
    else
      sift_down(at);
  }
  void sift_up(std::size_t at) noexcept {
    T* item = items_[at];
    while (at > 0) {
      const std::size_t parent = (at - 1) / 2;
      if (!less_(*item, *items_[parent])) break;
      place(at, *items_[parent]);
      at = parent;
    }
    place(at, *item);
  }
  void sift_down(std::size_t at) noexcept {
    T* item = items_[at];
    const std::size_t n = items_.size();
    for (;;) {
      std::size_t child = 2 * at + 1;
      if (child >= n) break;
      if (child + 1 < n && less_(*items_[child + 1], *items_[child])) ++child;
      if (!less_(*items_[child], *item)) break;
      place(at, *items_[child]);
      at = child;
    }
    place(at, *item);
  }

  std::vector<T*> items_;
  [[no_unique_address]] Less less_;
};

}  // namespace cosched::detail
