// The intrusive list on its own, in both shapes: the exact order of the
// elements after every operation, the doubly linked list's representation
// (the front's prev is the back) and a hook that is the base of its member.
#include "cosched/detail/intrusive_list.hpp"

#include <vector>

#include "catch.hpp"

using cosched::detail::intrusive_list;
using cosched::detail::list_hook;
using cosched::detail::slist_hook;

namespace {

struct doubly_item {
  explicit doubly_item(int i) noexcept : id(i) {}
  int id;
  list_hook<doubly_item> link;
};
using doubly_list = intrusive_list<doubly_item, &doubly_item::link>;

struct singly_item {
  explicit singly_item(int i) noexcept : id(i) {}
  int id;
  slist_hook<singly_item> link;
};
using singly_list = intrusive_list<singly_item, &singly_item::link>;

// An element whose hook is the base of a member (as job_block::on_ring).
struct part_item {
  struct part : list_hook<part_item> {
    int payload = 0;
  };
  explicit part_item(int i) noexcept : id(i) {}
  int id;
  part in_list;
};
using part_list = intrusive_list<part_item, &part_item::in_list>;

// What each shape costs its element and its owner, in pointers.
static_assert(sizeof(list_hook<doubly_item>) == 2 * sizeof(void*));
static_assert(sizeof(doubly_list) == sizeof(void*));
static_assert(sizeof(slist_hook<singly_item>) == sizeof(void*));
static_assert(sizeof(singly_list) == 2 * sizeof(void*));

// The ids front to back by iteration; checked against a walk by next() and
// against front() and back().
template <class List>
std::vector<int> ids(const List& list) {
  std::vector<int> by_iteration;
  for (auto& item : list) by_iteration.push_back(item.id);
  std::vector<int> by_next;
  for (auto* item = list.front(); item; item = List::next(*item)) by_next.push_back(item->id);
  CHECK(by_next == by_iteration);
  CHECK(list.empty() == by_iteration.empty());
  if (by_iteration.empty()) {
    CHECK(list.front() == nullptr);
    CHECK(list.back() == nullptr);
  } else {
    CHECK(list.front()->id == by_iteration.front());
    CHECK(list.back()->id == by_iteration.back());
  }
  return by_iteration;
}

// The doubly linked representation: the front's prev is the back, every other
// element's prev the one before it.
template <class List, class Item>
void check_prev_links(const List& list) {
  const Item* before = list.back();
  for (const Item& item : list) {
    CHECK(List::prev(item) == before);
    CHECK(List::linked(item));
    before = &item;
  }
}

}  // namespace

TEST_CASE(
    "intrusive_list (doubly linked): push_back and push_front keep their order, the front's prev is the back",
    "[intrusive_list][detail]") {
  doubly_item a(1), b(2), c(3), d(4);
  doubly_list list;
  CHECK(ids(list).empty());
  CHECK_FALSE(doubly_list::linked(a));

  list.push_back(a);
  CHECK(ids(list) == std::vector<int>{1});
  CHECK(doubly_list::prev(a) == &a);  // alone: its own back
  CHECK(doubly_list::next(a) == nullptr);
  list.push_back(b);
  CHECK(ids(list) == std::vector<int>{1, 2});
  list.push_front(c);
  CHECK(ids(list) == std::vector<int>{3, 1, 2});
  list.push_back(d);
  CHECK(ids(list) == std::vector<int>{3, 1, 2, 4});
  check_prev_links<doubly_list, doubly_item>(list);
  CHECK(doubly_list::prev(c) == &d);
  CHECK(doubly_list::next(d) == nullptr);

  CHECK(list.pop_front() == &c);
  CHECK(ids(list) == std::vector<int>{1, 2, 4});
  CHECK_FALSE(doubly_list::linked(c));
  CHECK(doubly_list::next(c) == nullptr);
  CHECK(doubly_list::prev(a) == &d);
  check_prev_links<doubly_list, doubly_item>(list);
  CHECK(list.pop_front() == &a);
  CHECK(list.pop_front() == &b);
  CHECK(ids(list) == std::vector<int>{4});
  CHECK(doubly_list::prev(d) == &d);
  CHECK(list.pop_front() == &d);
  CHECK(ids(list).empty());
  CHECK(list.pop_front() == nullptr);
  for (const auto* item : {&a, &b, &c, &d}) {
    CHECK(doubly_list::prev(*item) == nullptr);
    CHECK(doubly_list::next(*item) == nullptr);
  }
}

TEST_CASE("intrusive_list (doubly linked): push_front alone is a LIFO", "[intrusive_list][detail]") {
  doubly_item a(1), b(2), c(3);
  doubly_list list;
  list.push_front(a);
  CHECK(ids(list) == std::vector<int>{1});
  CHECK(doubly_list::prev(a) == &a);
  list.push_front(b);
  CHECK(ids(list) == std::vector<int>{2, 1});
  list.push_front(c);
  CHECK(ids(list) == std::vector<int>{3, 2, 1});
  check_prev_links<doubly_list, doubly_item>(list);
  CHECK(list.pop_front() == &c);
  CHECK(ids(list) == std::vector<int>{2, 1});
  list.push_front(c);
  CHECK(ids(list) == std::vector<int>{3, 2, 1});
  CHECK(list.pop_front() == &c);
  CHECK(list.pop_front() == &b);
  CHECK(list.pop_front() == &a);
  CHECK(ids(list).empty());
}

TEST_CASE("intrusive_list (doubly linked): erase at the front, in the middle and at the back",
          "[intrusive_list][detail]") {
  doubly_item a(1), b(2), c(3), d(4), e(5);
  doubly_list list;
  for (auto* item : {&a, &b, &c, &d, &e}) list.push_back(*item);
  CHECK(ids(list) == std::vector<int>{1, 2, 3, 4, 5});

  list.erase(c);  // the middle
  CHECK(ids(list) == std::vector<int>{1, 2, 4, 5});
  CHECK_FALSE(doubly_list::linked(c));
  CHECK(doubly_list::next(c) == nullptr);
  check_prev_links<doubly_list, doubly_item>(list);

  list.erase(a);  // the front: the next one leads, with the same back
  CHECK(ids(list) == std::vector<int>{2, 4, 5});
  CHECK(doubly_list::prev(b) == &e);
  check_prev_links<doubly_list, doubly_item>(list);

  list.erase(e);  // the back: the one before it is the back
  CHECK(ids(list) == std::vector<int>{2, 4});
  CHECK(doubly_list::prev(b) == &d);
  CHECK(doubly_list::next(d) == nullptr);
  check_prev_links<doubly_list, doubly_item>(list);

  list.push_back(c);  // an erased element links again
  CHECK(ids(list) == std::vector<int>{2, 4, 3});
  check_prev_links<doubly_list, doubly_item>(list);

  list.erase(d);
  list.erase(c);
  CHECK(ids(list) == std::vector<int>{2});
  CHECK(doubly_list::prev(b) == &b);  // alone again
  list.erase(b);
  CHECK(ids(list).empty());
  for (const auto* item : {&a, &b, &c, &d, &e}) CHECK_FALSE(doubly_list::linked(*item));
}

TEST_CASE("intrusive_list (doubly linked): unlink_each visits front to back, each already unlinked",
          "[intrusive_list][detail]") {
  doubly_item a(1), b(2), c(3);
  doubly_list list, other;
  for (auto* item : {&a, &b, &c}) list.push_back(*item);
  std::vector<int> visited;
  list.unlink_each([&](doubly_item& item) {
    visited.push_back(item.id);
    CHECK(list.empty());  // emptied before the first visit
    CHECK_FALSE(doubly_list::linked(item));
    CHECK(doubly_list::next(item) == nullptr);
    other.push_front(item);  // a visit may link it anywhere
  });
  CHECK(visited == std::vector<int>{1, 2, 3});
  CHECK(ids(list).empty());
  CHECK(ids(other) == std::vector<int>{3, 2, 1});
  check_prev_links<doubly_list, doubly_item>(other);

  visited.clear();
  doubly_list none;
  none.unlink_each([&](doubly_item& item) { visited.push_back(item.id); });
  CHECK(visited.empty());
}

TEST_CASE("intrusive_list (doubly linked): a hook that is the base of its member",
          "[intrusive_list][detail]") {
  part_item a(1), b(2), c(3);
  a.in_list.payload = 10;
  part_list list;
  list.push_back(a);
  list.push_back(b);
  list.push_back(c);
  CHECK(ids(list) == std::vector<int>{1, 2, 3});
  check_prev_links<part_list, part_item>(list);
  list.erase(b);
  CHECK(ids(list) == std::vector<int>{1, 3});
  CHECK(a.in_list.payload == 10);  // the rest of the member is left alone
  CHECK(list.pop_front() == &a);
  CHECK(list.pop_front() == &c);
  CHECK(ids(list).empty());
}

TEST_CASE("intrusive_list (singly linked): push_back and pop_front are a FIFO", "[intrusive_list][detail]") {
  singly_item a(1), b(2), c(3), d(4);
  singly_list list;
  CHECK(ids(list).empty());
  list.push_back(a);
  CHECK(ids(list) == std::vector<int>{1});
  list.push_back(b);
  list.push_back(c);
  CHECK(ids(list) == std::vector<int>{1, 2, 3});
  CHECK(singly_list::next(c) == nullptr);

  CHECK(list.pop_front() == &a);
  CHECK(ids(list) == std::vector<int>{2, 3});
  CHECK(singly_list::next(a) == nullptr);
  list.push_back(d);
  CHECK(ids(list) == std::vector<int>{2, 3, 4});
  list.push_back(a);  // a popped element links again
  CHECK(ids(list) == std::vector<int>{2, 3, 4, 1});
  CHECK(list.pop_front() == &b);
  CHECK(list.pop_front() == &c);
  CHECK(list.pop_front() == &d);
  CHECK(ids(list) == std::vector<int>{1});
  CHECK(list.pop_front() == &a);
  CHECK(ids(list).empty());  // the back went with the last element
  CHECK(list.pop_front() == nullptr);
  list.push_back(b);  // and a push after emptying starts afresh
  CHECK(ids(list) == std::vector<int>{2});
  CHECK(list.pop_front() == &b);
  for (const auto* item : {&a, &b, &c, &d}) CHECK(singly_list::next(*item) == nullptr);
}

TEST_CASE("intrusive_list (singly linked): push_front and pop_front are a LIFO, and mix with push_back",
          "[intrusive_list][detail]") {
  singly_item a(1), b(2), c(3), d(4);
  singly_list list;
  list.push_front(a);
  CHECK(ids(list) == std::vector<int>{1});
  list.push_front(b);
  CHECK(ids(list) == std::vector<int>{2, 1});
  list.push_front(c);
  CHECK(ids(list) == std::vector<int>{3, 2, 1});
  list.push_back(d);  // the back was the first pushed to the front
  CHECK(ids(list) == std::vector<int>{3, 2, 1, 4});
  CHECK(list.pop_front() == &c);
  CHECK(list.pop_front() == &b);
  CHECK(ids(list) == std::vector<int>{1, 4});
  CHECK(list.pop_front() == &a);
  CHECK(list.pop_front() == &d);
  CHECK(ids(list).empty());
}

TEST_CASE("intrusive_list (singly linked): a whole list moves, and splice_back appends one in order",
          "[intrusive_list][detail]") {
  singly_item a(1), b(2), c(3), d(4), e(5);
  singly_list first;
  first.push_back(a);
  first.push_back(b);

  singly_list moved(std::move(first));
  CHECK(ids(first).empty());
  CHECK(ids(moved) == std::vector<int>{1, 2});

  singly_list assigned;
  assigned = std::move(moved);
  CHECK(ids(moved).empty());
  CHECK(ids(assigned) == std::vector<int>{1, 2});

  singly_list more;
  more.push_back(c);
  more.push_back(d);
  assigned.splice_back(more);
  CHECK(ids(more).empty());
  CHECK(ids(assigned) == std::vector<int>{1, 2, 3, 4});
  assigned.push_back(e);  // the back is the spliced list's back
  CHECK(ids(assigned) == std::vector<int>{1, 2, 3, 4, 5});

  singly_list empty_one;
  assigned.splice_back(empty_one);  // nothing to append
  CHECK(ids(assigned) == std::vector<int>{1, 2, 3, 4, 5});
  empty_one.splice_back(assigned);  // onto an empty list: all of it
  CHECK(ids(assigned).empty());
  CHECK(ids(empty_one) == std::vector<int>{1, 2, 3, 4, 5});
  while (empty_one.pop_front()) {
  }
  CHECK(ids(empty_one).empty());
}

TEST_CASE("intrusive_list (singly linked): a chain linked by set_next outside any list, taken in order",
          "[intrusive_list][detail]") {
  // As uring_loop's lock-free stack: linked newest first, then reversed into a list.
  singly_item a(1), b(2), c(3);
  singly_list::set_next(a, nullptr);
  singly_list::set_next(b, &a);
  singly_list::set_next(c, &b);
  singly_item* newest = &c;
  singly_list taken;
  while (newest) {
    singly_item* older = singly_list::next(*newest);
    singly_list::set_next(*newest, nullptr);
    taken.push_front(*newest);
    newest = older;
  }
  CHECK(ids(taken) == std::vector<int>{1, 2, 3});
}
