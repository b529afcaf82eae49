// The run queue and its policies on their own: no scheduler, executor or ring.
// A small harness plays the engine's part (heads, runs, finishes, credits on
// ring slots whose ring is never called) and each case checks the exact order
// in which heads run and the ring each goes to.
#include "engine/run_queue.hpp"

#include <atomic>
#include <cctype>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "catch.hpp"

using namespace cosched;
using namespace cosched::detail;
using std::chrono::nanoseconds;

namespace {

struct release_block {
  void operator()(job_block* block) const noexcept { block->release(); }
};
using block_ptr = std::unique_ptr<job_block, release_block>;

/// An entity as the run queue sees it: a priority, jobs not yet run (the first
/// is its head once prepared), and its queue entry.
struct fake_entity {
  explicit fake_entity(std::string entity_name, priority p = priority::normal)
      : name(std::move(entity_name)), prio(p) {
    entry.prio = &prio;
  }
  std::string name;
  std::atomic<priority> prio;
  queue_entry entry;
  std::deque<job_block*> waiting;  // pushed, not run, in push order
};

/// Plays the engine: pushes prepared jobs, runs what the run queue chooses,
/// finishes commands at given times.
struct harness {
  explicit harness(scheduling_policy policy, std::uint32_t credit_limit = 1, std::size_t rings = 1,
                   ring_mode mode = ring_mode::shared_ring)
      : limit(credit_limit),
        queue_policy(policy),
        queue_mode(mode),
        slots(make_slots(mode == ring_mode::shared_ring ? rings : 0)),
        queue(policy, mode, credit_limit, pointers()) {}

  std::vector<std::unique_ptr<ring_slot>> make_slots(std::size_t n) {
    std::vector<std::unique_ptr<ring_slot>> made;
    for (std::size_t i = 0; i < n; ++i) made.push_back(std::make_unique<ring_slot>(nullptr, i));
    return made;
  }
  std::vector<ring_slot*> pointers() const {
    std::vector<ring_slot*> out;
    for (auto& slot : slots) out.push_back(slot.get());
    return out;
  }

  fake_entity& add(const std::string& name, priority p = priority::normal) {
    entities.push_back(std::make_unique<fake_entity>(name, p));
    fake_entity& e = *entities.back();
    ring_slot* own = nullptr;
    if (queue_mode == ring_mode::ring_per_entity) {
      slots_own.push_back(std::make_unique<ring_slot>(nullptr, 0));
      own = slots_own.back().get();
    }
    queue.add(e.entry, own);
    if (own) own->set_index(e.entry.ordinal);
    return e;
  }

  /// Pushes a prepared job (tag: the entity's name and a number).
  job_block& push(fake_entity& e, std::uint32_t credits = 1,
                  std::optional<nanoseconds> deadline = std::nullopt) {
    blocks.emplace_back(new job_block(fence_point{1, ++seqno}));
    job_block& job = *blocks.back();
    job.phase = job_phase::prepared;
    job.push_order = push_counter++;
    job.credits = credits;
    // As push makes it: for a deadline, and for every job while the fair clock runs.
    if (deadline || queue_policy == scheduling_policy::fair) job.make_cold().deadline = deadline;
    e.waiting.push_back(&job);
    tags[&job] = e.name + std::to_string(++counts[&e]);
    if (!e.entry.head) {
      e.entry.head = &job;
      queue.changed(e.entry);
    }
    return job;
  }

  /// One selection step; runs the chosen head at `at`. Returns "tag@ring", or "" if nothing runs.
  std::string step(nanoseconds at = nanoseconds(0)) {
    const queue_choice next = queue.next();
    if (!next) return "";
    fake_entity& e = owner_of(*next.entry);
    job_block& job = *next.entry->head;
    REQUIRE(&job == e.waiting.front());
    e.waiting.pop_front();
    job.phase = job_phase::running;
    lazy_now now(at);
    queue.ran(e.entry, job, *next.ring, now);
    next.ring->append(job);
    e.entry.head = e.waiting.empty() ? nullptr : e.waiting.front();
    queue.changed(e.entry);
    return tags[&job] + "@" + std::to_string(next.ring->index());
  }

  /// Steps until nothing more runs; the tags in run order.
  std::vector<std::string> drain(nanoseconds at = nanoseconds(0)) {
    std::vector<std::string> out;
    for (std::string s = step(at); !s.empty(); s = step(at)) out.push_back(s);
    return out;
  }

  /// The command of `tag` leaves its ring having run until `at`.
  void finish(const std::string& tag, nanoseconds at) {
    job_block& job = by_tag(tag);
    fake_entity& e = owner_of_job(job);
    lazy_now now(at);
    ring_slot& ring = *e.entry.ring;  // the job's (run_queue::ran)
    queue.left_ring(e.entry, job, now);
    ring.remove(job);
    job.phase = job_phase::decided;
  }

  job_block& by_tag(const std::string& tag) {
    for (auto& [job, name] : tags)
      if (name == tag) return *const_cast<job_block*>(job);
    FAIL("no job " << tag);
    throw std::logic_error("unreachable");
  }
  fake_entity& owner_of(const queue_entry& entry) {
    for (auto& e : entities)
      if (&e->entry == &entry) return *e;
    FAIL("unknown entry");
    throw std::logic_error("unreachable");
  }
  fake_entity& owner_of_job(const job_block& job) {
    const std::string& tag = tags.at(&job);
    for (auto& e : entities)
      if (tag.rfind(e->name, 0) == 0 && tag.size() > e->name.size() &&
          std::isdigit(static_cast<unsigned char>(tag[e->name.size()])))
        return *e;
    FAIL("unknown job");
    throw std::logic_error("unreachable");
  }

  std::uint32_t limit;
  scheduling_policy queue_policy;
  ring_mode queue_mode;
  std::vector<std::unique_ptr<ring_slot>> slots;
  std::vector<std::unique_ptr<ring_slot>> slots_own;
  run_queue queue;
  std::vector<std::unique_ptr<fake_entity>> entities;
  std::vector<block_ptr> blocks;
  std::map<const job_block*, std::string> tags;
  std::map<const fake_entity*, int> counts;
  std::uint64_t push_counter = 0;
  std::uint64_t seqno = 0;
};

using tags = std::vector<std::string>;

}  // namespace

TEST_CASE("fifo: strict priority, then push order", "[engine][run_queue][fifo]") {
  harness h(scheduling_policy::fifo, 8);
  auto& a = h.add("a");
  auto& b = h.add("b", priority::high);
  auto& c = h.add("c");
  h.push(a);
  h.push(c);
  h.push(b);
  h.push(a);
  CHECK(h.drain() == tags{"b1@0", "a1@0", "c1@0", "a2@0"});
}

TEST_CASE("fifo: the best head waits for credits and nothing runs past it", "[engine][run_queue][fifo]") {
  harness h(scheduling_policy::fifo, 2);
  auto& a = h.add("a", priority::high);
  auto& b = h.add("b", priority::low);
  h.push(a);
  h.push(a, 2);
  h.push(b);
  CHECK(h.step() == "a1@0");
  CHECK(h.step().empty());  // a2 needs 2 credits, 1 is free: b1 (1 credit) does not overtake it
  h.finish("a1", nanoseconds(10));
  CHECK(h.drain() == tags{"a2@0"});
  h.finish("a2", nanoseconds(20));
  CHECK(h.drain() == tags{"b1@0"});
}

TEST_CASE("fifo: a priority change takes effect when the entry is re-read", "[engine][run_queue][fifo]") {
  harness h(scheduling_policy::fifo, 1);
  auto& a = h.add("a");
  auto& b = h.add("b");
  h.push(a);
  h.push(b);
  b.prio.store(priority::kernel);
  h.queue.changed(b.entry);  // the engine does this when it processes the entity's update
  CHECK(h.step() == "b1@0");
}

TEST_CASE("rr: one command per entity per round, never served first", "[engine][run_queue][rr]") {
  harness h(scheduling_policy::rr, 16);
  auto& a = h.add("a");
  auto& b = h.add("b");
  auto& c = h.add("c");
  for (int i = 0; i < 3; ++i) h.push(a);
  h.push(b);
  h.push(b);
  auto& d = h.add("d", priority::low);
  h.push(d);
  h.push(c);
  CHECK(h.drain() == tags{"a1@0", "b1@0", "c1@0", "a2@0", "b2@0", "a3@0", "d1@0"});
}

TEST_CASE("deadline: earliest first within a priority, heads without one last",
          "[engine][run_queue][deadline]") {
  harness h(scheduling_policy::deadline, 16);
  auto& a = h.add("a");
  auto& b = h.add("b");
  auto& c = h.add("c");
  auto& k = h.add("k", priority::high);
  h.push(a);  // no deadline
  h.push(b, 1, nanoseconds(30));
  h.push(c, 1, nanoseconds(-5));  // deadlines are signed
  h.push(k);                      // a higher priority, no deadline
  h.push(b, 1, nanoseconds(1));   // behind b1: waits for it
  CHECK(h.drain() == tags{"k1@0", "c1@0", "b1@0", "b2@0", "a1@0"});
}

TEST_CASE("fair: backlogged entities share ring time by weight (high 4, low 1)",
          "[engine][run_queue][fair]") {
  harness h(scheduling_policy::fair, 1);
  auto& a = h.add("a", priority::high);
  auto& b = h.add("b", priority::low);
  for (int i = 0; i < 10; ++i) h.push(a);
  for (int i = 0; i < 10; ++i) h.push(b);
  // Each command takes 100 ns of ring time: a's virtual time grows by 200 per
  // command, b's by 800; ties go to push order (every a job was pushed first).
  tags order;
  nanoseconds now(0);
  for (int i = 0; i < 13; ++i) {
    const std::string ran = h.step(now);
    REQUIRE(!ran.empty());
    order.push_back(ran.substr(0, ran.find('@')));
    now += nanoseconds(100);
    h.finish(order.back(), now);
  }
  CHECK(order == tags{"a1", "b1", "a2", "a3", "a4", "a5", "b2", "a6", "a7", "a8", "a9", "b3", "a10"});
}

TEST_CASE("fair: an entity that was idle rejoins at the floor, not with a burst",
          "[engine][run_queue][fair]") {
  harness h(scheduling_policy::fair, 1);
  auto& a = h.add("a");
  auto& c = h.add("c");
  for (int i = 0; i < 8; ++i) h.push(a);
  nanoseconds now(0);
  for (const char* tag : {"a1", "a2", "a3"}) {
    CHECK(h.step(now) == std::string(tag) + "@0");
    now += nanoseconds(100);
    h.finish(tag, now);
  }
  CHECK(h.step(now) == "a4@0");  // at this step the floor rises to a's 1200
  CHECK(h.queue.fair().floor() == 1200);
  h.push(c);
  h.push(c);
  now += nanoseconds(100);
  h.finish("a4", now);  // a: 1600
  // c turns active at 1199 (1 ns below the floor), not 0: c1 runs, c is
  // charged 400 (1599) and is still 1 ns below a's 1600, so c2 runs too; then
  // a5 and a6 (c at 1999).
  tags order;
  for (int i = 0; i < 4; ++i) {
    const std::string ran = h.step(now);
    order.push_back(ran.substr(0, ran.find('@')));
    now += nanoseconds(100);
    h.finish(order.back(), now);
  }
  CHECK(order == tags{"c1", "c2", "a5", "a6"});
}

TEST_CASE("fair: a tie in virtual time goes to the higher priority, then push order",
          "[engine][run_queue][fair]") {
  harness h(scheduling_policy::fair, 1);
  auto& a = h.add("a");
  for (int i = 0; i < 8; ++i) h.push(a);
  nanoseconds now(0);
  for (const char* tag : {"a1", "a2", "a3"}) {
    CHECK(h.step(now) == std::string(tag) + "@0");
    now += nanoseconds(100);
    h.finish(tag, now);
  }
  CHECK(h.step(now) == "a4@0");  // the floor rises to a's 1200; a4 in flight keeps a above it
  CHECK(h.queue.fair().floor() == 1200);
  // Two clients turn active at the floor, the normal one pushed first: they tie
  // at 1200, and the high one goes first.
  auto& n = h.add("n");
  auto& x = h.add("x", priority::high);
  auto& y = h.add("y");
  h.push(n);
  h.push(x);
  h.push(y);
  now += nanoseconds(100);
  h.finish("a4", now);  // a: 1600
  CHECK(h.step(now) == "x1@0");
  now += nanoseconds(10);
  h.finish("x1", now);           // x: 1200 + 10 x 8 / 4 = 1220
  CHECK(h.step(now) == "n1@0");  // n and y tie at 1200, both normal: push order
  now += nanoseconds(10);
  h.finish("n1", now);
  CHECK(h.step(now) == "y1@0");
}

TEST_CASE("fair: commands in flight without a measurement follow the scheduler's mean, without re-keying",
          "[engine][run_queue][fair]") {
  harness h(scheduling_policy::fair, 8);
  auto& x = h.add("x");
  auto& y = h.add("y");
  auto& z = h.add("z");
  // y: one command in flight, none of its own measured, virtual time 0: its
  // estimate is the scheduler's mean (1 ns before any) x 4 (normal).
  y.entry.in_flight = 1;
  h.push(y);
  // z: 3000 of virtual time, nothing in flight.
  z.entry.fair.virtual_time = 3000;
  h.push(z);
  queue_choice next = h.queue.next();
  REQUIRE(next);
  CHECK(next.entry == &y.entry);  // 0 + 1 x 4 < 3000
  // A command of x that ran 5000 ns leaves the ring: the mean is now 5000.
  // Neither y nor z changed, and neither is re-keyed.
  job_block& x1 = h.push(x);
  x.waiting.clear();
  x.entry.head = nullptr;
  x.entry.in_flight = 1;
  x1.cold->fair_run_at = nanoseconds(0);
  x.entry.ring = h.slots[0].get();
  lazy_now at(nanoseconds(5000));
  h.queue.left_ring(x.entry, x1, at);
  CHECK(h.queue.fair().mean() == 5000);
  next = h.queue.next();
  REQUIRE(next);
  CHECK(next.entry == &z.entry);  // y: 0 + 5000 x 4 = 20000 > 3000
}

TEST_CASE("several rings: placement, ties to the lowest index, an entity stays on its ring",
          "[engine][run_queue][rings]") {
  harness h(scheduling_policy::fifo, 2, 3);
  auto& a = h.add("a");
  auto& b = h.add("b");
  auto& c = h.add("c");
  h.push(a);
  h.push(a);
  h.push(b);
  h.push(c);
  h.push(a);
  // a1 to ring 0 (all empty: lowest index); a2 follows a to ring 0; b1 and c1
  // to the least loaded rings; a3 to ring 0, which is full: it waits, and
  // nothing else is left.
  CHECK(h.drain() == tags{"a1@0", "a2@0", "b1@1", "c1@2"});
  h.finish("a1", nanoseconds(10));
  CHECK(h.drain() == tags{"a3@0"});
}

TEST_CASE("several rings: a ring whose best head does not fit waits, the others go on",
          "[engine][run_queue][rings]") {
  harness h(scheduling_policy::fifo, 2, 2);
  auto& a = h.add("a", priority::high);
  auto& b = h.add("b");
  auto& c = h.add("c", priority::low);
  h.push(a);
  CHECK(h.step() == "a1@0");
  h.push(a, 2);  // a2 must go to ring 0 (a1 is there) and does not fit
  h.push(c);
  auto& d = h.add("d", priority::low);
  h.push(b);
  h.push(d);
  // Ring 0 waits for a2; b1 goes to ring 1 (least loaded among the others),
  // then c1 also to ring 1; d1 finds no ring.
  CHECK(h.drain() == tags{"b1@1", "c1@1"});
  h.finish("a1", nanoseconds(5));
  CHECK(h.drain() == tags{"a2@0"});
  h.finish("b1", nanoseconds(6));
  CHECK(h.drain() == tags{"d1@1"});
}

TEST_CASE("affinity: a head goes to the least loaded of its rings, ties to the lowest index",
          "[engine][run_queue][rings][affinity]") {
  harness h(scheduling_policy::fifo, 2, 3);
  auto& p = h.add("p");
  auto& q = h.add("q");
  auto& r = h.add("r");
  auto& s = h.add("s");
  auto& y = h.add("y");
  auto& z = h.add("z");
  const std::vector<std::size_t> y_rings{0, 1}, z_rings{0, 2};
  h.queue.restrict_to(y.entry, y_rings);
  h.queue.restrict_to(z.entry, z_rings);
  for (auto* e : {&p, &q, &r, &s, &z, &y}) h.push(*e);
  // p1, q1, r1 to rings 0, 1, 2 (each the least loaded, ties to the lowest
  // index); s1 to ring 0 (a three-way tie). Then ring 0 holds 2 credits and
  // the others 1: z1 goes to ring 2, the less loaded of its rings 0 and 2
  // (ring 1 is the lowest least loaded ring, but not one of z's), and y1 to
  // ring 1, the less loaded of its rings 0 and 1.
  CHECK(h.drain() == tags{"p1@0", "q1@1", "r1@2", "s1@0", "z1@2", "y1@1"});
}

TEST_CASE("affinity: a tie among a head's rings goes to the lowest index of them",
          "[engine][run_queue][rings][affinity]") {
  harness h(scheduling_policy::fifo, 1, 3);
  auto& a = h.add("a");
  auto& b = h.add("b");
  const std::vector<std::size_t> upper{1, 2};
  h.queue.restrict_to(a.entry, upper);
  h.push(a);
  h.push(b);
  // Every ring is empty: a1 takes ring 1, the lowest of its rings (not ring 0);
  // b1 may use every ring and takes ring 0.
  CHECK(h.drain() == tags{"a1@1", "b1@0"});
}

TEST_CASE("affinity: commands in flight keep their ring, a new set takes effect at the next placement",
          "[engine][run_queue][rings][affinity]") {
  harness h(scheduling_policy::fifo, 2, 2);
  auto& a = h.add("a");
  h.push(a);
  CHECK(h.drain() == tags{"a1@0"});
  const std::vector<std::size_t> ring_1{1};
  h.queue.restrict_to(a.entry, ring_1);
  h.push(a);
  // a1 is still on ring 0: a2 follows it there, although a may no longer use ring 0.
  CHECK(h.drain() == tags{"a2@0"});
  h.finish("a1", nanoseconds(10));
  h.push(a);
  CHECK(h.drain() == tags{"a3@0"});  // a2 is still in flight
  h.finish("a2", nanoseconds(20));
  h.finish("a3", nanoseconds(30));
  h.push(a);
  // Nothing in flight: a4 is placed, on ring 1 (ring 0 is empty too, and lower).
  CHECK(h.drain() == tags{"a4@1"});
  // Every ring is no restriction: back to the lowest least loaded ring.
  const std::vector<std::size_t> both{0, 1};
  h.finish("a4", nanoseconds(40));
  h.queue.restrict_to(a.entry, both);
  h.push(a);
  CHECK(h.drain() == tags{"a5@0"});
}

TEST_CASE("affinity: a waiting head moves to its new rings at the next step",
          "[engine][run_queue][rings][affinity]") {
  harness h(scheduling_policy::fifo, 1, 2);
  auto& busy = h.add("busy");
  auto& a = h.add("a");
  const std::vector<std::size_t> ring_0{0}, ring_1{1};
  h.queue.restrict_to(busy.entry, ring_0);
  h.queue.restrict_to(a.entry, ring_0);
  h.push(busy);
  CHECK(h.drain() == tags{"busy1@0"});
  h.push(a);
  CHECK(h.drain().empty());  // ring 0 is full and a may use no other
  h.queue.restrict_to(a.entry, ring_1);
  CHECK(h.drain() == tags{"a1@1"});
}

TEST_CASE("affinity: a head whose rings all wait for credits is passed over, other rings go on",
          "[engine][run_queue][rings][affinity]") {
  harness h(scheduling_policy::fifo, 1, 2);
  auto& y = h.add("y");
  auto& x = h.add("x", priority::high);
  auto& z = h.add("z", priority::low);
  const std::vector<std::size_t> ring_1{1};
  h.queue.restrict_to(y.entry, ring_1);
  h.queue.restrict_to(x.entry, ring_1);
  h.push(y);
  CHECK(h.drain() == tags{"y1@1"});
  h.push(x);
  h.push(z);
  // x1 comes first but ring 1, its only ring, is full: ring 1 waits for it,
  // and z1 runs on ring 0. (Were x free to use ring 0, x1 would run there.)
  CHECK(h.drain() == tags{"z1@0"});
  h.finish("y1", nanoseconds(5));
  CHECK(h.drain() == tags{"x1@1"});
}

TEST_CASE("affinity: heads restricted to the same rings compete by the policy, under fair too",
          "[engine][run_queue][rings][affinity][fair]") {
  harness h(scheduling_policy::fair, 1, 2);
  auto& hi = h.add("hi", priority::high);
  auto& lo = h.add("lo", priority::low);
  const std::vector<std::size_t> ring_1{1};
  h.queue.restrict_to(hi.entry, ring_1);
  h.queue.restrict_to(lo.entry, ring_1);
  for (int i = 0; i < 5; ++i) {
    h.push(hi);
    h.push(lo);
  }
  // One ring for both, by weight: hi 4, lo 1 (equal ring times of 1000 ns).
  std::vector<std::string> order;
  nanoseconds now(0);
  for (int i = 0; i < 6; ++i) {
    const auto ran = h.drain(now);
    REQUIRE(ran.size() == 1);
    order.push_back(ran.front());
    now += nanoseconds(1000);
    h.finish(ran.front().substr(0, ran.front().find('@')), now);
  }
  CHECK(order == tags{"hi1@1", "lo1@1", "hi2@1", "hi3@1", "hi4@1", "hi5@1"});
}

TEST_CASE("ring_per_entity: each ring runs its entity's head while it fits, closed rings none",
          "[engine][run_queue][ring_per_entity]") {
  harness h(scheduling_policy::fifo, 2, 0, ring_mode::ring_per_entity);
  auto& a = h.add("a");
  auto& b = h.add("b", priority::kernel);  // entities do not compete: priority plays no part
  auto& c = h.add("c");
  for (int i = 0; i < 3; ++i) h.push(b);
  for (int i = 0; i < 3; ++i) h.push(a);
  h.push(c);
  c.entry.ring->close();
  CHECK(h.drain() == tags{"a1@0", "a2@0", "b1@1", "b2@1"});
  h.finish("b1", nanoseconds(3));
  CHECK(h.drain() == tags{"b3@1"});
}
