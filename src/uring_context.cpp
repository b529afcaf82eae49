// uring_context: handlers, timers and reactor completions on one io_uring ring;
// going idle is one io_uring_enter that submits and waits.
#include "cosched/uring_context.hpp"

#include "cosched/detail/os_error.hpp"

#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <system_error>
#include <vector>

#include "uring_loop.hpp"

namespace cosched {
namespace detail {
namespace {

// The loops the calling thread is running, innermost first.
struct loop_frame {
  const uring_loop* loop;
  loop_frame* outer;
};
thread_local loop_frame* running_loops = nullptr;

struct loop_frame_guard {
  explicit loop_frame_guard(const uring_loop* loop) noexcept : frame{loop, running_loops} {
    running_loops = &frame;
  }
  ~loop_frame_guard() { running_loops = frame.outer; }
  loop_frame_guard(const loop_frame_guard&) = delete;
  loop_frame_guard& operator=(const loop_frame_guard&) = delete;
  loop_frame frame;
};

int enable_rings(io_uring& ring) {
  // liburing 2.3 declares io_uring_enable_rings but its shared library does not export it.
  const long rc = ::syscall(__NR_io_uring_register, ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
  return rc < 0 ? -errno : 0;
}

}  // namespace

uring_loop::uring_loop(const uring_context_options& options) {
  io_uring_params params{};
  params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_TASKRUN_FLAG;
  params.cq_entries =
      options.completion_entries ? options.completion_entries : std::max(options.entries * 4, 16384u);
  // Completions are only reaped by the thread that runs the loop, which also
  // waits in io_uring_enter: DEFER_TASKRUN runs their work there, in batches.
  // The ring is enabled by the first thread that runs the loop (its issuer).
  io_uring_params wanted = params;
  wanted.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED;
  int rc = io_uring_queue_init_params(options.entries, &ring, &wanted);
  if (rc == 0) {
    defer_taskrun_ = true;
  } else {
    params.flags |= IORING_SETUP_COOP_TASKRUN;
    rc = io_uring_queue_init_params(options.entries, &ring, &params);
    if (rc == 0) enabled_ = true;
  }
  if (rc != 0)
    throw std::system_error(-rc, std::generic_category(), "cosched::uring_context: io_uring_queue_init");
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    const int err = errno;
    io_uring_queue_exit(&ring);
    throw detail::os_error(err, "cosched::uring_context: eventfd");
  }
}

uring_loop::~uring_loop() {
  take_remote();
  while (uring_op* op = local_.pop_front()) op->complete(op, false);
  io_uring_queue_exit(&ring);
  ::close(wake_fd_);
}

bool uring_loop::on_loop_thread() const noexcept {
  for (const loop_frame* f = running_loops; f; f = f->outer)
    if (f->loop == this) return true;
  return false;
}

void uring_loop::post(uring_op* op) noexcept {
  if (on_loop_thread()) {
    local_.push_back(*op);
    return;
  }
  // seq_cst (both): with the loop's store of sleeping_ and its load of remote_,
  // either the loop sees this op before it sleeps or this thread sees it asleep.
  uring_op* head = remote_.load(std::memory_order_relaxed);
  do {
    uring_op_list::set_next(*op, head);
  } while (!remote_.compare_exchange_weak(head, op, std::memory_order_seq_cst, std::memory_order_relaxed));
  if (sleeping_.load(std::memory_order_seq_cst) && !wake_pending_.exchange(true, std::memory_order_acq_rel)) {
    const std::uint64_t one = 1;
    // The loop's armed read consumes it; a failed write leaves wake_pending_ set
    // and the eventfd cannot fail here (no overflow at one write per sleep).
    [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
  }
}

void uring_loop::take_remote() noexcept {
  // acquire: the ops' contents were written before they were published.
  uring_op* newest = remote_.exchange(nullptr, std::memory_order_acquire);
  if (!newest) return;
  // The stack is newest first: reverse it into FIFO order.
  uring_op_list arrived;
  while (newest) {
    uring_op* older = uring_op_list::next(*newest);
    uring_op_list::set_next(*newest, nullptr);  // off the stack, not linked
    arrived.push_front(*newest);
    newest = older;
  }
  local_.splice_back(arrived);
}

std::size_t uring_loop::run_ready() {
  // Only what is queued now: handlers queued by these run in the next round,
  // after completions and timers had their turn.
  uring_op* batch_tail = local_.back();
  if (!batch_tail) return 0;
  std::size_t count = 0;
  for (;;) {
    uring_op* op = local_.pop_front();
    const bool last = op == batch_tail;
    op->complete(op, true);
    ++count;
    if (last || local_.empty() || stopped.load(std::memory_order_relaxed)) break;
  }
  return count;
}

void uring_loop::enable() {
  if (enabled_) return;
  const int rc = enable_rings(ring);
  if (rc != 0)
    throw std::system_error(-rc, std::generic_category(), "cosched::uring_context: enabling the ring");
  enabled_ = true;
}

int uring_loop::enter_submit() {
  enters.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
  return io_uring_submit(&ring);
}

void uring_loop::submit_now() {
  if (!enabled_) return;
  const int rc = enter_submit();
  if (rc < 0 && rc != -EBUSY && rc != -EAGAIN && rc != -EINTR)
    throw std::system_error(-rc, std::generic_category(), "cosched::uring_context: io_uring_submit");
}

bool uring_loop::reap() {
  // Deferred completion work, or completions that overflowed into the
  // kernel's list, need an io_uring_enter before they show in the queue.
  const unsigned flags = IO_URING_READ_ONCE(*ring.sq.kflags);
  if (flags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) {
    enters.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
    io_uring_get_events(&ring);
  }
  bool any = false;
  struct copy {
    std::uint64_t user_data;
    std::int32_t res;
    std::uint32_t flags;
  };
  copy batch[64];
  for (;;) {
    unsigned n = 0, head;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring, head, cqe) {
      batch[n++] = {cqe->user_data, cqe->res, cqe->flags};
      if (n == 64) break;
    }
    if (n == 0) return any;
    io_uring_cq_advance(&ring, n);
    any = true;
    // After advancing: dispatching may submit new requests.
    for (unsigned i = 0; i < n; ++i) {
      if (batch[i].user_data == wake_tag) {
        wake_armed_ = false;
        // release: pairs with the producers' acq_rel exchange.
        wake_pending_.store(false, std::memory_order_release);
      } else if (sink_) {
        sink_->on_completion(batch[i].user_data, batch[i].res, batch[i].flags);
      }
    }
  }
}

bool uring_loop::fire_timers() {
  if (deadlines_.empty()) return false;
  const auto now = clock::now();
  bool any = false;
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    const timer_id id = deadlines_.begin()->second;
    deadlines_.erase(deadlines_.begin());
    auto it = timers_.find(id);
    auto fn = std::move(it->second.second.fn);
    timers_.erase(it);
    any = true;
    fn();
  }
  return any;
}

timer_service::timer_id uring_loop::start(duration delay, std::function<void()> fn) {
  const timer_id id = next_timer_++;
  auto where = deadlines_.emplace(clock::now() + delay, id);
  timers_.emplace(id, std::make_pair(where, timer{std::move(fn)}));
  return id;
}

void uring_loop::cancel(timer_id id) noexcept {
  auto it = timers_.find(id);
  if (it == timers_.end()) return;
  deadlines_.erase(it->second.first);
  timers_.erase(it);
}

std::uint8_t uring_loop::attach(uring_completion_sink* sink) {
  if (sink_) throw std::logic_error("cosched::uring_context: it already has a reactor");
  sink_ = sink;
  // 0xff is the loop's own (wake-up read, cancellations).
  last_tag_ = static_cast<std::uint8_t>(last_tag_ % 254 + 1);
  return last_tag_;
}

void uring_loop::detach(uring_completion_sink* sink) noexcept {
  if (sink_ == sink) sink_ = nullptr;
}

bool uring_loop::has_work() const noexcept {
  // relaxed: only the loop thread acts on the answer, and remote posts wake it.
  return !local_.empty() || remote_.load(std::memory_order_relaxed) ||
         work.load(std::memory_order_relaxed) > 0 || !deadlines_.empty() || (sink_ && sink_->has_pending());
}

void uring_loop::arm_wake() {
  if (wake_armed_) return;
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  if (!sqe) {
    submit_now();
    sqe = io_uring_get_sqe(&ring);
    if (!sqe)
      throw std::system_error(EBUSY, std::generic_category(),
                              "cosched::uring_context: submission queue full");
  }
  io_uring_prep_read(sqe, wake_fd_, &wake_value_, sizeof wake_value_, 0);
  io_uring_sqe_set_data64(sqe, wake_tag);
  wake_armed_ = true;
}

void uring_loop::block() {
  arm_wake();
  // seq_cst: see post().
  sleeping_.store(true, std::memory_order_seq_cst);
  if (remote_.load(std::memory_order_seq_cst) == nullptr) {
    enters.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
    int rc;
    if (!deadlines_.empty()) {
      const auto wait = std::max(deadlines_.begin()->first - clock::now(), clock::duration::zero());
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
      __kernel_timespec ts{};
      ts.tv_sec = ns / 1000000000;
      ts.tv_nsec = ns % 1000000000;
      io_uring_cqe* cqe = nullptr;
      rc = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, nullptr);
    } else {
      rc = io_uring_submit_and_wait(&ring, 1);
    }
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN) {
      sleeping_.store(false, std::memory_order_relaxed);
      throw std::system_error(-rc, std::generic_category(), "cosched::uring_context: io_uring_enter");
    }
  }
  sleeping_.store(false, std::memory_order_relaxed);
}

std::size_t uring_loop::run_loop(bool may_block) {
  if (stopped.load(std::memory_order_acquire)) return 0;
  enable();
  loop_frame_guard guard(this);
  std::size_t count = 0;
  for (;;) {
    take_remote();
    count += run_ready();
    if (stopped.load(std::memory_order_acquire)) break;
    const bool completed = reap();
    const bool fired = fire_timers();
    if (stopped.load(std::memory_order_acquire)) break;
    // relaxed: the loop thread reads its own queue; remote posts are seen next round.
    if (!local_.empty() || remote_.load(std::memory_order_relaxed) || completed || fired) {
      // Requests made by the handlers go to the kernel before the next round's
      // handlers run, so that completions are not delayed by a busy loop.
      if (io_uring_sq_ready(&ring)) submit_now();
      continue;
    }
    if (!may_block) {
      if (io_uring_sq_ready(&ring)) submit_now();
      break;
    }
    if (!has_work()) {
      if (io_uring_sq_ready(&ring)) submit_now();
      break;
    }
    block();
  }
  return count;
}

}  // namespace detail

uring_context::uring_context(uring_context_options options)
    : loop_(std::make_unique<detail::uring_loop>(options)) {}

uring_context::~uring_context() {
  // Services (Asio's, if any were added) go first, while the loop still exists.
  shutdown();
  destroy();
}

std::size_t uring_context::run() { return loop_->run_loop(true); }
std::size_t uring_context::poll() { return loop_->run_loop(false); }

void uring_context::stop() noexcept {
  loop_->stopped.store(true, std::memory_order_release);
  // Wake the loop if it sleeps: an empty handler does it. Without it the loop
  // could sleep on, so running out of memory for it ends the process (noexcept).
  // NOLINTNEXTLINE(bugprone-unhandled-exception-at-new): std::terminate, see above
  if (!loop_->on_loop_thread()) loop_->post(new detail::uring_fn_op<void (*)()>(+[] {}));
}

bool uring_context::stopped() const noexcept { return loop_->stopped.load(std::memory_order_acquire); }
void uring_context::restart() noexcept { loop_->stopped.store(false, std::memory_order_release); }
timer_service& uring_context::timers() noexcept { return *loop_; }
std::uint64_t uring_context::enter_calls() const noexcept {
  return loop_->enters.load(std::memory_order_relaxed);
}

void uring_context::post_op(detail::uring_op* op) noexcept { loop_->post(op); }
void uring_context::work_started() noexcept { loop_->work.fetch_add(1, std::memory_order_relaxed); }
void uring_context::work_finished() noexcept {
  // release: a posted op before the guard's end is seen by the loop when it checks work.
  if (loop_->work.fetch_sub(1, std::memory_order_release) == 1 && !loop_->on_loop_thread()) {
    // The loop may be waiting only because of this work: let it look again.
    // Without the wake-up it could sleep on, so running out of memory for it
    // ends the process (noexcept: a tracked executor's destructor calls this).
    // NOLINTNEXTLINE(bugprone-unhandled-exception-at-new): std::terminate, see above
    loop_->post(new detail::uring_fn_op<void (*)()>(+[] {}));
  }
}
bool uring_context::running_in_this_thread() const noexcept { return loop_->on_loop_thread(); }

}  // namespace cosched
