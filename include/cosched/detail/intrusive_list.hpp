// The one intrusive list of cosched: fence waiters, the engine's work nodes,
// an entity's jobs, a ring's jobs in flight, the registered entities, the run
// queue's changed entries and the uring context's handlers are all lists of it.
// Internal; in include/ because public headers' detail types embed its hooks.
// (Not the pools' free lists, src/pool.cpp: those link freed storage, not
// objects, on the allocator's fastest path.)
//
// The problem: each of those lists links objects that live elsewhere (a job's
// block, an entity's record, a handler's allocation) and must never allocate to
// link them, and several are counted in bytes per job (a run may hold a million
// jobs). So the links live in the element, as a member (its hook), and a list
// is one or two pointers.
//
// Two hook shapes; the hook member's type chooses the list's shape:
//
//  - list_hook<T> (two pointers): doubly linked, for lists that erase an
//    element from anywhere in O(1). The list object is one pointer, its front;
//    the front's `prev` is the back (itself when alone), and an element that is
//    not linked has a null `prev`. So a list costs its owner one pointer (a
//    fence state keeps its waiters in 8 bytes), the back is one load away, and
//    whether an element is linked is known exactly (linked()), which a debug
//    build checks on every link and erase. This is the fence waiters' own
//    representation, and it serves every doubly linked list rather than a
//    second, head-and-tail one: against a tail pointer it costs a load of the
//    back through the front where the back is needed (push_back, erasing the
//    back), and the front's `prev` is written where a tail pointer would be.
//
//  - slist_hook<T> (one pointer): singly linked, for elements that only ever
//    leave from the front (FIFO: push_back and pop_front; LIFO: push_front and
//    pop_front). The list object is two pointers, front and back, so that
//    push_back is O(1); a whole list moves in O(1) (move construction and
//    assignment, splice_back). An element that is not linked has a null `next`,
//    as the back has, so a debug build can only tell that an element is not
//    linked in the middle of a list or at the back of the same one.
//
// Each list is declared as intrusive_list<T, &T::hook>, with an alias beside
// its element type. The hook member may derive from its hook instead of being
// one (job_block::on_ring: the part of a job on a ring, which shares storage
// with the part before it runs). An element is in at most one list per hook.
//
// @par Thread Safety
// None of its own: distinct lists are safe to use from distinct threads, one
// list is not. Whoever owns a list guards it (a lock, or one thread), as the
// comment at each declaration says; an element's hook belongs to the list the
// element is in, and is only read and written under that list's guard.
//
// @par Ownership
// A list borrows its elements: it never creates or destroys one. Elements
// must outlive their time in the list; a list is destroyed only empty (or
// with elements nobody walks again). Hooks are not copied: an element that
// holds one is not copyable (nothing copies a linked element).
#pragma once

#include <cassert>
#include <cstddef>
#include <iterator>
#include <type_traits>
#include <utility>

namespace cosched::detail {

template <class T, auto Member, class Hook>
class intrusive_list;

/// The links of an element of a doubly linked intrusive_list (see the file's
/// comment): null while not linked. Only intrusive_list reads or writes them.
template <class T>
class list_hook {
 public:
  list_hook() noexcept = default;
  list_hook(const list_hook&) = delete;
  list_hook& operator=(const list_hook&) = delete;

 private:
  template <class, auto, class>
  friend class intrusive_list;
  T* prev_ = nullptr;  // the element before; for the front, the back; null: not linked
  T* next_ = nullptr;  // the element after; null for the back
};

/// The link of an element of a singly linked intrusive_list (see the file's
/// comment): null while not linked, as for the back. Only intrusive_list reads
/// or writes it.
template <class T>
class slist_hook {
 public:
  slist_hook() noexcept = default;
  slist_hook(const slist_hook&) = delete;
  slist_hook& operator=(const slist_hook&) = delete;

 private:
  template <class, auto, class>
  friend class intrusive_list;
  T* next_ = nullptr;  // the element after; null for the back, and while not linked
};

namespace list_detail {

template <class MemberPointer>
struct member_pointer;
template <class M, class C>
struct member_pointer<M C::*> {
  using member = M;
  using owner = C;
};

// The hook a member is, or derives from (no definition: for decltype only).
template <class T>
list_hook<T> hook_of(const list_hook<T>*);
template <class T>
slist_hook<T> hook_of(const slist_hook<T>*);

template <auto Member>
using hook_t =
    decltype(hook_of(static_cast<const typename member_pointer<decltype(Member)>::member*>(nullptr)));

// Forward iteration over a list of either shape, through List::next().
template <class List, class T>
class iterator {
 public:
  using iterator_category = std::forward_iterator_tag;
  using value_type = T;
  using difference_type = std::ptrdiff_t;
  using pointer = T*;
  using reference = T&;

  iterator() noexcept = default;
  explicit iterator(T* element) noexcept : element_(element) {}
  T& operator*() const noexcept { return *element_; }
  T* operator->() const noexcept { return element_; }
  iterator& operator++() noexcept {
    element_ = List::next(*element_);
    return *this;
  }
  iterator operator++(int) noexcept {
    iterator before = *this;
    ++*this;
    return before;
  }
  friend bool operator==(const iterator&, const iterator&) = default;

 private:
  T* element_ = nullptr;
};

}  // namespace list_detail

/// A list of `T`s linked through their hook member `Member` (`&T::hook`); the
/// hook's type chooses the shape (see the file's comment). Every operation is
/// O(1) but iteration; none allocates or throws.
///
/// Iteration (begin/end, or front() and next()) must not unlink the element it
/// stands on: copy the elements first (ring_slot::in_flight), or take them one
/// by one from the front.
template <class T, auto Member, class Hook = list_detail::hook_t<Member>>
class intrusive_list;

/// The doubly linked list: one pointer, its front (the front's `prev` is the
/// back). Operations: push_back, push_front, pop_front, erase, unlink_each,
/// front, back, empty, iteration, and linked/prev/next of an element.
template <class T, auto Member>
class intrusive_list<T, Member, list_hook<T>> {
  static_assert(std::is_same_v<typename list_detail::member_pointer<decltype(Member)>::owner, T>,
                "the hook must be a member of the element type itself");

 public:
  using iterator = list_detail::iterator<intrusive_list, T>;

  intrusive_list() noexcept = default;
  intrusive_list(const intrusive_list&) = delete;
  intrusive_list& operator=(const intrusive_list&) = delete;

  bool empty() const noexcept { return front_ == nullptr; }
  /// The first element, or null.
  T* front() const noexcept { return front_; }
  /// The last element, or null.
  T* back() const noexcept { return front_ ? hook(*front_).prev_ : nullptr; }

  /// Links `element`, which must not be linked, at the back.
  void push_back(T& element) noexcept {
    list_hook<T>& h = hook(element);
    assert(!h.prev_ && "intrusive_list: an element linked twice");
    h.next_ = nullptr;
    if (front_) {
      list_hook<T>& first = hook(*front_);
      T* last = first.prev_;
      hook(*last).next_ = &element;
      h.prev_ = last;
      first.prev_ = &element;  // the new back
    } else {
      h.prev_ = &element;  // alone: its own back
      front_ = &element;
    }
  }

  /// Links `element`, which must not be linked, at the front.
  void push_front(T& element) noexcept {
    list_hook<T>& h = hook(element);
    assert(!h.prev_ && "intrusive_list: an element linked twice");
    h.next_ = front_;
    if (front_) {
      list_hook<T>& first = hook(*front_);
      h.prev_ = first.prev_;  // the back
      first.prev_ = &element;
    } else {
      h.prev_ = &element;  // alone: its own back
    }
    front_ = &element;
  }

  /// Unlinks the first element and returns it; null when empty.
  T* pop_front() noexcept {
    T* element = front_;
    if (!element) return nullptr;
    list_hook<T>& h = hook(*element);
    front_ = h.next_;
    if (front_) hook(*front_).prev_ = h.prev_;  // the back
    h.prev_ = h.next_ = nullptr;
    return element;
  }

  /// Unlinks `element`, which must be linked in this list.
  void erase(T& element) noexcept {
    list_hook<T>& h = hook(element);
    assert(h.prev_ && "intrusive_list: erasing an element that is not linked");
    if (&element == front_) {
      front_ = h.next_;
      if (front_) hook(*front_).prev_ = h.prev_;  // the back
    } else {
      hook(*h.prev_).next_ = h.next_;
      if (h.next_)
        hook(*h.next_).prev_ = h.prev_;
      else
        hook(*front_).prev_ = h.prev_;  // a new back
    }
    h.prev_ = h.next_ = nullptr;
  }

  /// Empties the list, front to back: unlinks each element, then calls
  /// `visit(element)`, which may destroy it or link it anywhere. The list is
  /// empty from the start; the elements not visited yet are still linked to
  /// each other meanwhile, so `visit` must not erase them.
  template <class Visit>
  void unlink_each(Visit&& visit) noexcept(noexcept(visit(std::declval<T&>()))) {
    T* element = std::exchange(front_, nullptr);
    while (element) {
      list_hook<T>& h = hook(*element);
      T* after = h.next_;
      h.prev_ = h.next_ = nullptr;
      visit(*element);
      element = after;
    }
  }

  iterator begin() const noexcept { return iterator(front_); }
  iterator end() const noexcept { return iterator(); }

  /// Whether `element` is linked (in some list through this hook).
  static bool linked(const T& element) noexcept { return hook(element).prev_ != nullptr; }
  /// The element before `element` in its list; for the front, the back (itself
  /// when alone); null when it is not linked.
  static T* prev(const T& element) noexcept { return hook(element).prev_; }
  /// The element after `element` in its list; null for the back.
  static T* next(const T& element) noexcept { return hook(element).next_; }

 private:
  static list_hook<T>& hook(T& element) noexcept { return element.*Member; }
  static const list_hook<T>& hook(const T& element) noexcept { return element.*Member; }

  T* front_ = nullptr;
};

/// The singly linked list: front and back. Operations: push_back, push_front,
/// pop_front, splice_back, moving the whole list, front, back, empty,
/// iteration, and next of an element.
template <class T, auto Member>
class intrusive_list<T, Member, slist_hook<T>> {
  static_assert(std::is_same_v<typename list_detail::member_pointer<decltype(Member)>::owner, T>,
                "the hook must be a member of the element type itself");

 public:
  using iterator = list_detail::iterator<intrusive_list, T>;

  intrusive_list() noexcept = default;
  intrusive_list(const intrusive_list&) = delete;
  intrusive_list& operator=(const intrusive_list&) = delete;
  /// Takes every element of `other`, which is left empty.
  intrusive_list(intrusive_list&& other) noexcept
      : front_(std::exchange(other.front_, nullptr)), back_(std::exchange(other.back_, nullptr)) {}
  /// Takes every element of `other`, which is left empty; this list must be empty.
  intrusive_list& operator=(intrusive_list&& other) noexcept {
    assert(empty() && "intrusive_list: a list moved onto a list that is not empty");
    front_ = std::exchange(other.front_, nullptr);
    back_ = std::exchange(other.back_, nullptr);
    return *this;
  }

  bool empty() const noexcept { return front_ == nullptr; }
  /// The first element, or null.
  T* front() const noexcept { return front_; }
  /// The last element, or null.
  T* back() const noexcept { return back_; }

  /// Links `element`, which must not be linked, at the back.
  void push_back(T& element) noexcept {
    slist_hook<T>& h = hook(element);
    assert(!h.next_ && &element != back_ && "intrusive_list: an element linked twice");
    h.next_ = nullptr;
    if (back_)
      hook(*back_).next_ = &element;
    else
      front_ = &element;
    back_ = &element;
  }

  /// Links `element`, which must not be linked, at the front.
  void push_front(T& element) noexcept {
    slist_hook<T>& h = hook(element);
    assert(!h.next_ && &element != back_ && "intrusive_list: an element linked twice");
    h.next_ = front_;
    if (!front_) back_ = &element;
    front_ = &element;
  }

  /// Unlinks the first element and returns it; null when empty.
  T* pop_front() noexcept {
    T* element = front_;
    if (!element) return nullptr;
    slist_hook<T>& h = hook(*element);
    front_ = h.next_;
    if (!front_) back_ = nullptr;
    h.next_ = nullptr;
    return element;
  }

  /// Moves every element of `other` to the back of this list, in order;
  /// `other` is left empty.
  void splice_back(intrusive_list& other) noexcept {
    if (!other.front_) return;
    if (back_)
      hook(*back_).next_ = other.front_;
    else
      front_ = other.front_;
    back_ = other.back_;
    other.front_ = other.back_ = nullptr;
  }

  iterator begin() const noexcept { return iterator(front_); }
  iterator end() const noexcept { return iterator(); }

  /// The element after `element` in its list; null for the back (and for an
  /// element that is not linked).
  static T* next(const T& element) noexcept { return hook(element).next_; }
  /// Links `element` to `after` outside any list, for the one structure that
  /// shares the hook without being a list: a lock-free stack whose elements a
  /// list takes afterwards (uring_loop's handlers posted from other threads).
  /// A list's element must not be passed.
  static void set_next(T& element, T* after) noexcept { hook(element).next_ = after; }

 private:
  static slist_hook<T>& hook(T& element) noexcept { return element.*Member; }
  static const slist_hook<T>& hook(const T& element) noexcept { return element.*Member; }

  T* front_ = nullptr;
  T* back_ = nullptr;
};

}  // namespace cosched::detail
