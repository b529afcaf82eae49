// cosched-bench's coroutine floor: a minimal single-threaded coroutine scheduler
// that runs the dag group's graphs. See bench_floor.hpp.
#include "bench_floor.hpp"

#include <bit>
#include <cassert>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <new>

#include "bench_util.hpp"

namespace cosched_bench::dag {
namespace {

// ------------------------------------------------------------------ frames

// Recycles the frames of one size (the first one asked for) through a free
// list; any other size goes to operator new. After the first round every job
// frame comes from the list. Single-threaded; the cached frames are freed when
// the program exits.
class frame_pool {
 public:
  constexpr frame_pool() = default;
  frame_pool(const frame_pool&) = delete;
  frame_pool& operator=(const frame_pool&) = delete;
  ~frame_pool() {
    while (free_) ::operator delete(take());
  }

  void* allocate(std::size_t size) {
    if (block_size_ == 0) block_size_ = size;
    if (size == block_size_ && free_) return take();
    return ::operator new(size);
  }
  void deallocate(void* p, std::size_t size) noexcept {
    if (size != block_size_) {
      ::operator delete(p);
      return;
    }
    free_ = ::new (p) free_block{free_};
  }

 private:
  struct free_block {
    free_block* next;
  };
  free_block* take() noexcept {
    free_block* b = free_;
    free_ = b->next;
    return b;
  }

  free_block* free_ = nullptr;  // cached frames, most recently freed first
  std::size_t block_size_ = 0;  // the size class cached; 0 until the first frame
};

frame_pool frames;

// ------------------------------------------------------------------ the scheduler

// A coroutine waiting for a completion: it lives in the waiting frame, which
// stays suspended (so the node stays valid) until the completion queues it.
struct waiter {
  waiter* next = nullptr;
  std::coroutine_handle<> job;
};

// Whether a job has completed, and the coroutines that await it until then.
struct completion {
  bool done = false;
  waiter* waiters = nullptr;  // most recent first; the order does not matter
};

// A job: a lazily started coroutine whose frame frees itself when it finishes.
// The scheduler owns the frame from spawn on.
struct floor_job {
  struct promise_type {
    static void* operator new(std::size_t size) { return frames.allocate(size); }
    static void operator delete(void* p, std::size_t size) noexcept { frames.deallocate(p, size); }
    floor_job get_return_object() noexcept {
      return {std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
  std::coroutine_handle<> handle;
};

// One thread's FIFO ready queue over a ring of handles. A job is queued once
// when spawned and once each time a completion it waits for is reached, and is
// never in the queue twice at once, so a ring of `max_jobs` never overflows.
// Not thread-safe; immovable (jobs hold a reference to it).
class floor_scheduler {
 public:
  explicit floor_scheduler(std::uint32_t max_jobs)
      : ring_(std::bit_ceil(std::size_t{max_jobs} | 1)), mask_(ring_.size() - 1), max_jobs_(max_jobs) {}
  floor_scheduler(const floor_scheduler&) = delete;
  floor_scheduler& operator=(const floor_scheduler&) = delete;
  // Frames never run are destroyed with the queue (none are after run()).
  ~floor_scheduler() {
    while (head_ != tail_) ring_[head_++ & mask_].destroy();
  }

  void spawn(floor_job j) {
    assert(spawned_ < max_jobs_);
    ++spawned_;
    push(j.handle);
  }

  // Resumes queued jobs in FIFO order until none is ready.
  void run() {
    while (head_ != tail_) ring_[head_++ & mask_].resume();
  }

  // Marks `c` done and queues the jobs that await it.
  void complete(completion& c) noexcept {
    c.done = true;
    for (waiter* w = c.waiters; w; w = w->next) push(w->job);
    c.waiters = nullptr;
    ++completed_;
  }

  std::uint32_t completed() const noexcept { return completed_; }

 private:
  void push(std::coroutine_handle<> h) noexcept {
    assert(tail_ - head_ < ring_.size());
    ring_[tail_++ & mask_] = h;
  }

  std::vector<std::coroutine_handle<>> ring_;  // the ready jobs, from head_ to tail_
  std::size_t mask_;                           // ring_.size() - 1 (a power of two)
  std::size_t head_ = 0, tail_ = 0;            // free-running; tail_ - head_ jobs are queued
  std::uint32_t max_jobs_;
  std::uint32_t spawned_ = 0;
  std::uint32_t completed_ = 0;  // checked against the graph's size after each run
};

// `co_await` on a completion: suspends the job until the completion is done
// (not at all when it already is).
class await_completion {
 public:
  explicit await_completion(completion& c) noexcept : completion_(c) {}
  bool await_ready() const noexcept { return completion_.done; }
  void await_suspend(std::coroutine_handle<> job) noexcept {
    node_.job = job;
    node_.next = completion_.waiters;
    completion_.waiters = &node_;
  }
  void await_resume() const noexcept {}

 private:
  completion& completion_;
  waiter node_;
};

// Job i of the graph: waits for its dependencies, does the job's work, then
// completes (which queues the jobs waiting for it) and frees its frame.
floor_job graph_job(floor_scheduler& sched, completion* done, shape s, std::uint32_t width, std::uint32_t i,
                    std::uint64_t* val) {
  std::uint32_t d[4];
  const int n = deps_of(s, width, i, d);
  for (int k = 0; k < n; ++k) co_await await_completion(done[d[k]]);
  for (int k = 0; k < n; ++k) assert(done[d[k]].done);
  job_work(s, width, i, val);
  sched.complete(done[i]);
}

}  // namespace

timing run_floor(shape s, graph_size size, std::vector<std::uint64_t>& val) {
  floor_scheduler sched(size.jobs);
  std::vector<completion> done(size.jobs);
  std::uint64_t* v = val.data();

  const std::uint64_t f0 = minor_faults();
  const std::uint64_t t0 = now_ns();
  for (std::uint32_t i = 0; i < size.jobs; ++i)
    sched.spawn(graph_job(sched, done.data(), s, size.width, i, v));
  const std::uint64_t t1 = now_ns();
  sched.run();
  const std::uint64_t t2 = now_ns();
  const std::uint64_t f1 = minor_faults();

  // The figure must be that of every job run: the group also compares the
  // outputs' checksum with cosched's, which catches a job run too early.
  if (sched.completed() != size.jobs) die("dag: the coroutine floor did not run every job");
  for (const auto& c : done) {
    if (!c.done || c.waiters) die("dag: a job of the coroutine floor did not complete");
  }
  return {double(t1 - t0), double(t2 - t1), double(f1 - f0)};
}

}  // namespace cosched_bench::dag
