// The reactor on an asio::io_context: a ring of its own, submitted once per
// handler batch, whose registered eventfd the io_context waits for.
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <system_error>
#include <utility>
#include <vector>

#include <liburing.h>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>

#include "cosched/detail/os_error.hpp"
#include "reactor/reactor_core.hpp"
#include "reactor/reactor_loop.hpp"

namespace cosched::detail {

namespace {

// liburing 2.3 declares io_uring_enable_rings but its shared library does not
// export it; the register call it wraps is simple.
int enable_rings(io_uring& ring) {
  const long rc = ::syscall(__NR_io_uring_register, ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
  return rc < 0 ? -errno : 0;
}

/// A reactor_loop on an io_context. Requests prepared while a handler runs are
/// submitted together by one flush handler posted after it (one io_uring_enter
/// per batch); completions wake the io_context through the ring's registered
/// eventfd, which it waits for with an asio::posix::stream_descriptor, only
/// while the reactor has requests pending (so that io_context::run() returns
/// once nothing is waited for).
///
/// @par Thread Safety
/// As reactor_loop. With SINGLE_ISSUER, the ring is enabled on the io_context's
/// thread by the first handler (start()), which makes that thread its only
/// submitter.
///
/// @par Ownership and Lifetime
/// Owns the ring and the eventfd; closing them (the destructor) cancels the
/// eventfd's wait, whose handler then does nothing. Its handlers hold the core
/// weakly and reach the loop only while the core (its owner) is alive.
class io_context_loop final : public reactor_loop {
 public:
  io_context_loop(asio::io_context& context, const reactor_options& options);
  ~io_context_loop() override;

  // reactor_loop (each member documented there).
  std::uint8_t start(reactor_core& core) override;
  void post(handoff_handler handler) override { asio::post(context_, std::move(handler)); }
  bool on_own_thread() const noexcept override { return context_.get_executor().running_in_this_thread(); }
  io_uring& ring() noexcept override { return ring_; }
  // Until start()'s handler enabled the ring, requests wait for its flush.
  bool can_submit() const noexcept override { return enabled_; }
  void submit() override;
  void prepared(request_kind kind) override;
  void detach() noexcept override {}    // the handlers' weak_ptr to the core is enough
  void teardown() noexcept override {}  // the ring is closed with the loop, after the core's table
  bool single_issuer() const noexcept override { return single_issuer_; }
  std::uint64_t submit_calls() const noexcept override {
    // relaxed: a statistic.
    return submits_.load(std::memory_order_relaxed);
  }
  const asio::any_io_executor& executor() const noexcept override { return executor_; }

 private:
  /// Waits for the eventfd if requests are pending and no wait is outstanding.
  void arm_if_waiting();
  /// The eventfd is readable: empties it and reaps.
  void on_eventfd();
  /// Dispatches every completion in the queue, and those that overflowed.
  void reap();
  /// One flush per batch: the first request of a handler posts it.
  void mark_dirty();
  /// The batch's end: submits, and reaps what is ready already.
  void flush();

  /// The context; it outlives the reactor.
  asio::io_context& context_;
  asio::any_io_executor executor_;
  /// The core that owns this loop (set by start()).
  reactor_core* core_ = nullptr;
  io_uring ring_{};
  /// The ring's registered eventfd, as the io_context sees it.
  asio::posix::stream_descriptor event_stream_;
  bool single_issuer_ = false;
  /// The ring is enabled (start()'s handler ran): requests may be submitted.
  bool enabled_ = false;
  /// An eventfd wait is outstanding.
  bool armed_ = false;
  /// A flush handler is posted (or, before enabled_, owed by start()'s).
  bool dirty_ = false;
  /// io_uring_enter calls made to submit.
  std::atomic<std::uint64_t> submits_{0};
  /// The completions being dispatched, copied out of the queue (kept for its capacity).
  struct completion_copy {
    std::uint64_t user_data;
    std::int32_t res;
    std::uint32_t flags;
  };
  std::vector<completion_copy> reaped_;
};

io_context_loop::io_context_loop(asio::io_context& context, const reactor_options& options)
    : context_(context), executor_(context.get_executor()), event_stream_(context) {
  // Completions must wake the io_context through the registered eventfd.
  // DEFER_TASKRUN does not do that reliably (its completion work is only
  // signalled to the eventfd for the first of several wake-ups, measured on
  // Linux 6.18), so this ring uses COOP_TASKRUN, plus SINGLE_ISSUER when one
  // thread runs the io_context; the ring is enabled on that thread.
  io_uring_params params{};
  params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN;
  // Room for many completions at once (thousands of fences in flight).
  params.cq_entries =
      options.completion_entries ? options.completion_entries : std::max(options.entries * 4, 16384u);
  int rc = -EINVAL;
  if (options.single_issuer) {
    io_uring_params wanted = params;
    wanted.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_R_DISABLED;
    rc = io_uring_queue_init_params(options.entries, &ring_, &wanted);
    if (rc == 0) single_issuer_ = true;
  }
  if (rc != 0) rc = io_uring_queue_init_params(options.entries, &ring_, &params);
  if (rc != 0) throw os_error(-rc, "cosched::reactor: io_uring_queue_init");
  const int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) {
    const int err = errno;
    io_uring_queue_exit(&ring_);
    throw os_error(err, "cosched::reactor: eventfd");
  }
  rc = io_uring_register_eventfd(&ring_, efd);
  if (rc != 0) {
    ::close(efd);
    io_uring_queue_exit(&ring_);
    throw std::system_error(-rc, std::generic_category(), "cosched::reactor: io_uring_register_eventfd");
  }
  event_stream_.assign(efd);
}

io_context_loop::~io_context_loop() {
  asio::error_code ignored;
  event_stream_.close(ignored);
  io_uring_queue_exit(&ring_);
}

// Runs first on the io_context's thread: enables the ring there (the thread
// that enables a SINGLE_ISSUER ring is its only submitter) and starts waiting.
std::uint8_t io_context_loop::start(reactor_core& core) {
  core_ = &core;
  asio::post(context_, [this, weak = core.weak_from_this()] {
    if (auto alive = weak.lock()) {
      if (single_issuer_) {
        const int rc = enable_rings(ring_);
        if (rc != 0) throw std::system_error(-rc, std::generic_category(), "cosched::reactor: enable");
      }
      enabled_ = true;
      arm_if_waiting();
      if (dirty_) flush();
    }
  });
  return 0;  // the ring is the reactor's alone: no other requests to tell apart
}

void io_context_loop::prepared(request_kind kind) {
  mark_dirty();
  // A new poll is a completion to wait for; a cancellation or a no-op is made
  // for an entry that is pending already (and so waited for).
  if (kind == request_kind::poll) arm_if_waiting();
}

// The reactor waits for its eventfd only while it has requests pending: a
// pending wait is work that keeps io_context::run() from returning, which must
// end once the schedulers are shut down and nothing is waited for. Every new
// poll arms it (prepared()); a wake-up re-arms it only if requests are left.
void io_context_loop::arm_if_waiting() {
  if (!enabled_ || armed_ || core_->pending() == 0) return;
  armed_ = true;
  event_stream_.async_wait(asio::posix::stream_descriptor::wait_read,
                           [this, weak = core_->weak_from_this()](const asio::error_code& ec) {
                             if (ec) return;  // closed: the reactor is going away
                             if (auto alive = weak.lock()) {
                               armed_ = false;
                               on_eventfd();
                               arm_if_waiting();
                             }
                           });
}

void io_context_loop::on_eventfd() {
  std::uint64_t count;
  while (::read(event_stream_.native_handle(), &count, sizeof count) == sizeof count) {
  }
  reap();
}

void io_context_loop::reap() {
  for (;;) {
    reaped_.clear();
    unsigned head;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) { reaped_.push_back({cqe->user_data, cqe->res, cqe->flags}); }
    if (reaped_.empty()) {
      // Completions that did not fit the completion queue wait in the
      // kernel's overflow list until an io_uring_enter with GETEVENTS
      // flushes them; without it they would never arrive.
      if (!io_uring_cq_has_overflow(&ring_)) return;
      io_uring_get_events(&ring_);
      if (!io_uring_cq_ready(&ring_)) return;
      continue;
    }
    io_uring_cq_advance(&ring_, static_cast<unsigned>(reaped_.size()));
    // Dispatch after advancing: callbacks may submit new requests.
    auto batch = std::move(reaped_);
    for (const auto& c : batch) core_->dispatch(c.user_data, c.res, c.flags);
    reaped_ = std::move(batch);
  }
}

void io_context_loop::mark_dirty() {
  if (dirty_) return;
  dirty_ = true;
  if (!enabled_) return;  // start()'s handler flushes
  asio::post(context_, [this, weak = core_->weak_from_this()] {
    if (auto alive = weak.lock()) flush();
  });
}

void io_context_loop::flush() {
  dirty_ = false;
  submit();
  if (io_uring_cq_ready(&ring_)) reap();
}

void io_context_loop::submit() {
  const int rc = io_uring_submit(&ring_);
  // relaxed: a statistic.
  submits_.fetch_add(1, std::memory_order_relaxed);
  if (rc < 0 && rc != -EBUSY && rc != -EAGAIN)
    throw std::system_error(-rc, std::generic_category(), "cosched::reactor: io_uring_submit");
}

}  // namespace

std::unique_ptr<reactor_loop> make_io_context_loop(asio::io_context& context,
                                                   const reactor_options& options) {
  return std::make_unique<io_context_loop>(context, options);
}

}  // namespace cosched::detail
