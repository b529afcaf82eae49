// The io_uring reactor: POLL_ADD requests batched per handler, completions
// reaped when the ring's registered eventfd becomes readable in the io_context.
#include "cosched/reactor.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <unordered_map>
#include <vector>

#include <liburing.h>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>

#include "cosched/detail/os_error.hpp"
#include "cosched/error.hpp"
#include "logging.hpp"
#include "uring_loop.hpp"

namespace cosched {

namespace {
constexpr std::uint64_t cancel_marker = ~std::uint64_t{0};
// user_data: reactor tag (8 bits) | generation (24 bits) | entry index (32 bits).
constexpr std::uint64_t tag_mask = std::uint64_t{0xff} << 56;
constexpr std::uint32_t generation_mask = 0x00ffffff;

// liburing 2.3 declares io_uring_enable_rings but its shared library does not
// export it; the register call it wraps is simple.
int enable_rings(io_uring& ring) {
  const long rc = ::syscall(__NR_io_uring_register, ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
  return rc < 0 ? -errno : 0;
}
}  // namespace

struct reactor::impl final : std::enable_shared_from_this<reactor::impl>, detail::uring_completion_sink {
  struct entry {
    enum class kind : std::uint8_t { free, oneshot, multishot };
    kind what = kind::free;
    std::uint32_t generation = 0;
    int fd = -1;
    std::optional<promise> done;     // oneshot
    std::function<void()> on_ready;  // multishot
    const detail::fence_state* key = nullptr;
    bool unwatched = false;
    bool failed = false;  // multishot: the kernel refused the poll; waits for unwatch(), not re-armed
  };

  // On a uring_context: its ring and its loop, which reaps and submits.
  explicit impl(uring_context& context)
      : loop(&context.loop()), ex(context.get_executor()), ring(loop->ring) {}

  // Requests of this reactor carry `tag` in the top byte of their user_data:
  // on a uring_context, completions of an earlier reactor's requests may still
  // arrive, and must not be taken for this one's.
  std::uint64_t tag = 0;

  // On an io_context: a ring of its own, whose registered eventfd the io_context waits for.
  impl(asio::io_context& context, reactor_options options)
      : io(&context), ex(context.get_executor()), ring(own_ring), event_stream(std::in_place, context) {
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
      rc = io_uring_queue_init_params(options.entries, &own_ring, &wanted);
      if (rc == 0) single_issuer = true;
    }
    if (rc != 0) rc = io_uring_queue_init_params(options.entries, &own_ring, &params);
    if (rc != 0) throw detail::os_error(-rc, "cosched::reactor: io_uring_queue_init");
    const int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) {
      const int err = errno;
      io_uring_queue_exit(&ring);
      throw detail::os_error(err, "cosched::reactor: eventfd");
    }
    rc = io_uring_register_eventfd(&ring, efd);
    if (rc != 0) {
      ::close(efd);
      io_uring_queue_exit(&ring);
      throw std::system_error(-rc, std::generic_category(), "cosched::reactor: io_uring_register_eventfd");
    }
    event_stream->assign(efd);
  }

  ~impl() {
    if (loop) {
      loop->detach(this);
      // The ring outlives this reactor: stop polling the fds it was asked to watch.
      try {
        for (std::uint32_t index = 0; index < entries.size(); ++index)
          if (entries[index].what != entry::kind::free) prepare_cancel(index);
        if (io_uring_sq_ready(&ring)) loop->submit_now();
      } catch (const std::exception&) {
        // A full queue or a failed submit: the polls end with the ring.
      }
    }
    // Oneshot promises signal `broken` as the entries go.
    entries.clear();
    if (io) {
      asio::error_code ignored;
      event_stream->close(ignored);
      io_uring_queue_exit(&own_ring);
    }
  }

  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  void on_completion(std::uint64_t user_data, std::int32_t res, std::uint32_t flags) override {
    dispatch(user_data, res, flags);
  }
  bool has_pending() const noexcept override {
    // relaxed: read on the loop thread, which alone changes it there.
    return pending_count.load(std::memory_order_relaxed) != 0;
  }

  template <class F>
  void post(F&& f) {
    if (io)
      asio::post(*io, std::forward<F>(f));
    else
      asio::post(ex, std::forward<F>(f));
  }

  // Runs first on the io_context's thread: enables the ring there (the thread
  // that enables a SINGLE_ISSUER ring is its only submitter) and starts waiting.
  void start() {
    if (loop) {
      tag = std::uint64_t{loop->attach(this)} << 56;
      return;
    }
    asio::post(*io, [weak = weak_from_this()] {
      if (auto self = weak.lock()) {
        if (self->single_issuer) {
          const int rc = enable_rings(self->ring);
          if (rc != 0) throw std::system_error(-rc, std::generic_category(), "cosched::reactor: enable");
        }
        self->enabled = true;
        self->arm_if_waiting();
        if (self->dirty) self->flush();
      }
    });
  }

  // On an io_context, the reactor waits for its eventfd only while it has
  // requests pending: a pending wait is work that keeps io_context::run() from
  // returning, which must end once the schedulers are shut down and nothing
  // is waited for. Every request arms it (prepare); a wake-up re-arms it only
  // if requests are left.
  void arm_if_waiting() {
    // relaxed: changed only on this thread.
    if (!io || !enabled || armed || pending_count.load(std::memory_order_relaxed) == 0) return;
    armed = true;
    event_stream->async_wait(asio::posix::stream_descriptor::wait_read,
                             [weak = weak_from_this()](const asio::error_code& ec) {
                               if (ec) return;  // closed: the reactor is going away
                               if (auto self = weak.lock()) {
                                 self->armed = false;
                                 self->on_eventfd();
                                 self->arm_if_waiting();
                               }
                             });
  }

  void on_eventfd() {
    std::uint64_t count;
    while (::read(event_stream->native_handle(), &count, sizeof count) == sizeof count) {
    }
    reap();
  }

  void reap() {
    for (;;) {
      reaped.clear();
      unsigned head;
      io_uring_cqe* cqe;
      io_uring_for_each_cqe(&ring, head, cqe) { reaped.push_back({cqe->user_data, cqe->res, cqe->flags}); }
      if (reaped.empty()) {
        // Completions that did not fit the completion queue wait in the
        // kernel's overflow list until an io_uring_enter with GETEVENTS
        // flushes them; without it they would never arrive.
        if (!io_uring_cq_has_overflow(&ring)) return;
        io_uring_get_events(&ring);
        if (!io_uring_cq_ready(&ring)) return;
        continue;
      }
      io_uring_cq_advance(&ring, static_cast<unsigned>(reaped.size()));
      // Dispatch after advancing: callbacks may submit new requests.
      auto batch = std::move(reaped);
      for (const auto& c : batch) dispatch(c.user_data, c.res, c.flags);
      reaped = std::move(batch);
    }
  }

  static std::error_code poll_error(int revents) {
    if (revents & POLLIN) return {};
    if (revents & POLLNVAL) return std::error_code(EBADF, std::generic_category());
    return std::error_code(EIO, std::generic_category());
  }

  void dispatch(std::uint64_t user_data, std::int32_t res, std::uint32_t flags) {
    if (user_data == cancel_marker) return;
    if ((user_data & tag_mask) != tag) return;  // another reactor's (stale)
    const auto index = static_cast<std::uint32_t>(user_data);
    const auto generation = static_cast<std::uint32_t>(user_data >> 32) & generation_mask;
    if (index >= entries.size() || (entries[index].generation & generation_mask) != generation)
      return;  // stale
    auto& e = entries[index];
    if (e.what == entry::kind::oneshot) {
      promise done = std::move(*e.done);
      std::error_code ec;
      if (res == -ECANCELED)
        ec = make_error_code(errc::cancelled);
      else if (res < 0)
        ec = std::error_code(-res, std::generic_category());
      else
        ec = poll_error(res);
      if (ec && ec != make_error_code(errc::cancelled))
        detail::log_line(
            spdlog::level::err,
            "cosched::reactor: could not wait for fd {} to be readable: {} (errno {}); its fence fails", e.fd,
            ec.message(), ec.value());
      release(index);
      done.signal(ec);
      return;
    }
    if (e.what != entry::kind::multishot) return;
    const bool more = flags & IORING_CQE_F_MORE;
    if (res == -ECANCELED || e.unwatched) {
      if (!more) release(index);
      return;
    }
    if (res < 0) {
      // Re-arming would fail the same way, forever: the watch stays, silent,
      // until unwatch() releases it.
      detail::log_line(
          spdlog::level::err,
          "cosched::reactor: could not watch fd {}: {} (errno {}); it is not watched until unwatch()", e.fd,
          std::generic_category().message(-res), -res);
      e.failed = true;
      return;
    }
    // The callback may watch or unwatch (and so reallocate `entries`).
    auto callback = std::move(e.on_ready);
    if (res >= 0) callback();
    auto& again = entries[index];
    if (again.generation != generation || again.what != entry::kind::multishot) return;
    again.on_ready = std::move(callback);
    if (again.unwatched) {
      if (!more) release(index);
      return;
    }
    if (!more) prepare(index);  // the kernel ended the multishot: re-arm
  }

  std::uint32_t allocate(entry::kind what, int fd) {
    std::uint32_t index;
    if (!free_slots.empty()) {
      index = free_slots.back();
      free_slots.pop_back();
    } else {
      index = static_cast<std::uint32_t>(entries.size());
      entries.emplace_back();
    }
    auto& e = entries[index];
    e.what = what;
    e.fd = fd;
    e.unwatched = false;
    e.failed = false;
    // relaxed: a statistic.
    pending_count.fetch_add(1, std::memory_order_relaxed);
    return index;
  }

  void release(std::uint32_t index) {
    auto& e = entries[index];
    if (e.key) by_fence.erase(e.key);
    e.key = nullptr;
    e.done.reset();
    e.on_ready = nullptr;
    e.what = entry::kind::free;
    ++e.generation;
    free_slots.push_back(index);
    pending_count.fetch_sub(1, std::memory_order_relaxed);
  }

  std::uint64_t user_data_of(std::uint32_t index) const {
    return tag | (std::uint64_t{entries[index].generation & generation_mask} << 32) | index;
  }

  io_uring_sqe* next_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (!sqe && can_submit()) {
      submit();  // the submission queue is full: flush it now
      sqe = io_uring_get_sqe(&ring);
    }
    if (!sqe)
      throw std::system_error(EBUSY, std::generic_category(), "cosched::reactor: submission queue full");
    return sqe;
  }

  void prepare(std::uint32_t index) {
    auto& e = entries[index];
    io_uring_sqe* sqe = next_sqe();
    if (e.what == entry::kind::multishot)
      io_uring_prep_poll_multishot(sqe, e.fd, POLLIN);
    else
      io_uring_prep_poll_add(sqe, e.fd, POLLIN);
    io_uring_sqe_set_data64(sqe, user_data_of(index));
    mark_dirty();
    arm_if_waiting();
  }

  void prepare_cancel(std::uint32_t index) {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_poll_remove(sqe, user_data_of(index));
    io_uring_sqe_set_data64(sqe, cancel_marker);
    mark_dirty();
  }

  void prepare_nop(std::uint32_t index) {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, user_data_of(index));
    mark_dirty();
  }

  // One flush per batch: the first request of a handler posts it.
  bool can_submit() const noexcept { return loop ? loop->enabled() : enabled; }

  void mark_dirty() {
    if (loop) return;  // the loop submits before it next waits
    if (dirty) return;
    dirty = true;
    if (!enabled) return;  // start() flushes
    asio::post(*io, [weak = weak_from_this()] {
      if (auto self = weak.lock()) self->flush();
    });
  }

  void flush() {
    dirty = false;
    submit();
    if (io_uring_cq_ready(&ring)) reap();
  }

  void submit() {
    if (loop) {
      loop->submit_now();
      return;
    }
    const int rc = io_uring_submit(&ring);
    // relaxed: a statistic.
    submits.fetch_add(1, std::memory_order_relaxed);
    if (rc < 0 && rc != -EBUSY && rc != -EAGAIN)
      throw std::system_error(-rc, std::generic_category(), "cosched::reactor: io_uring_submit");
  }

  bool on_own_thread() const {
    return loop ? loop->on_loop_thread() : io->get_executor().running_in_this_thread();
  }

  void start_wait(int fd, promise done) {
    const std::uint32_t index = allocate(entry::kind::oneshot, fd);
    auto& e = entries[index];
    e.key = done.get_fence().state();
    by_fence.emplace(e.key, index);
    e.done.emplace(std::move(done));
    prepare(index);
  }

  void cancel_wait(const detail::fence_state* key) {
    auto it = by_fence.find(key);
    if (it == by_fence.end()) return;
    prepare_cancel(it->second);
  }

  void start_watch(watch_id id, int fd, std::function<void()> on_ready) {
    const std::uint32_t index = allocate(entry::kind::multishot, fd);
    entries[index].on_ready = std::move(on_ready);
    watches.emplace(id, index);
    prepare(index);
  }

  void stop_watch(watch_id id) {
    auto it = watches.find(id);
    if (it == watches.end()) return;
    const std::uint32_t index = it->second;
    watches.erase(it);
    entries[index].unwatched = true;
    // A refused watch has no poll to cancel: a no-op request in its name
    // completes and releases it, as the cancellation's completion would.
    if (entries[index].failed)
      prepare_nop(index);
    else
      prepare_cancel(index);
  }

  asio::io_context* io = nullptr;      // on an io_context
  detail::uring_loop* loop = nullptr;  // on a uring_context
  asio::any_io_executor ex;
  io_uring own_ring{};  // on an io_context
  io_uring& ring;
  std::optional<asio::posix::stream_descriptor> event_stream;  // on an io_context
  bool single_issuer = false;
  bool enabled = false;
  bool armed = false;  // io_context: the eventfd wait is outstanding
  bool dirty = false;
  std::atomic<std::size_t> pending_count{0};
  std::atomic<std::uint64_t> submits{0};
  std::vector<entry> entries;
  std::vector<std::uint32_t> free_slots;
  std::unordered_map<const detail::fence_state*, std::uint32_t> by_fence;
  std::unordered_map<watch_id, std::uint32_t> watches;
  std::atomic<watch_id> next_watch{1};
  struct completion_copy {
    std::uint64_t user_data;
    std::int32_t res;
    std::uint32_t flags;
  };
  std::vector<completion_copy> reaped;
};

reactor::reactor(asio::io_context& ctx, reactor_options options)
    : impl_(std::make_shared<impl>(ctx, options)) {
  impl_->start();
}

reactor::reactor(uring_context& ctx) : impl_(std::make_shared<impl>(ctx)) { impl_->start(); }

reactor::~reactor() {
  if (impl_->loop) impl_->loop->detach(impl_.get());
}

fence reactor::wait_readable(int fd) {
  promise done;
  fence result = done.get_fence();
  if (impl_->on_own_thread()) {
    impl_->start_wait(fd, std::move(done));
  } else {
    impl_->post([weak = std::weak_ptr<impl>(impl_), fd, done = std::move(done)]() mutable {
      if (auto self = weak.lock()) self->start_wait(fd, std::move(done));
    });
  }
  return result;
}

bool reactor::cancel(const fence& f) {
  if (!f.valid() || f.signalled()) return false;
  const detail::fence_state* key = f.state();
  if (impl_->on_own_thread()) {
    if (!impl_->by_fence.count(key)) return false;
    impl_->cancel_wait(key);
    return true;
  }
  impl_->post([weak = std::weak_ptr<impl>(impl_), keep = f] {
    if (auto self = weak.lock()) self->cancel_wait(keep.state());
  });
  return true;
}

reactor::watch_id reactor::watch(int fd, std::function<void()> on_ready) {
  // relaxed: only uniqueness matters.
  const watch_id id = impl_->next_watch.fetch_add(1, std::memory_order_relaxed);
  if (impl_->on_own_thread()) {
    impl_->start_watch(id, fd, std::move(on_ready));
  } else {
    impl_->post([weak = std::weak_ptr<impl>(impl_), id, fd, fn = std::move(on_ready)]() mutable {
      if (auto self = weak.lock()) self->start_watch(id, fd, std::move(fn));
    });
  }
  return id;
}

void reactor::unwatch(watch_id id) {
  if (impl_->on_own_thread()) {
    impl_->stop_watch(id);
    return;
  }
  impl_->post([weak = std::weak_ptr<impl>(impl_), id] {
    if (auto self = weak.lock()) self->stop_watch(id);
  });
}

std::size_t reactor::pending() const noexcept {
  // relaxed: a snapshot.
  return impl_->pending_count.load(std::memory_order_relaxed);
}

bool reactor::single_issuer() const noexcept {
  return impl_->loop ? (impl_->ring.flags & IORING_SETUP_SINGLE_ISSUER) != 0 : impl_->single_issuer;
}

std::uint64_t reactor::submit_calls() const noexcept {
  // relaxed: a statistic.
  return impl_->submits.load(std::memory_order_relaxed);
}

asio::any_io_executor reactor::get_executor() const noexcept { return impl_->ex; }

}  // namespace cosched
