// The reactor's common core: the request table, the user_data of its requests,
// the dispatch of their completions and the public operations' hand-off.
#include "reactor/reactor_core.hpp"

#include <poll.h>

#include <cerrno>
#include <exception>
#include <system_error>
#include <utility>

#include <liburing.h>

#include "cosched/error.hpp"
#include "logging.hpp"

namespace cosched::detail {

namespace {
// The user_data of POLL_REMOVE requests: their completions are not dispatched.
constexpr std::uint64_t cancel_marker = ~std::uint64_t{0};
// user_data: reactor tag (8 bits) | generation (24 bits) | entry index (32 bits).
constexpr std::uint64_t tag_mask = std::uint64_t{0xff} << 56;
constexpr std::uint32_t generation_mask = 0x00ffffff;

std::error_code poll_error(int revents) {
  if (revents & POLLIN) return {};
  if (revents & POLLNVAL) return std::error_code(EBADF, std::generic_category());
  return std::error_code(EIO, std::generic_category());
}
}  // namespace

void handoff_handler::operator()() {
  if (auto self = core.lock()) self->apply(request);
}

reactor_core::reactor_core(std::unique_ptr<reactor_loop> loop) noexcept
    : loop_(std::move(loop)), ring_(loop_->ring()) {}

reactor_core::~reactor_core() {
  loop_->teardown();
  // Oneshot promises signal `broken` as the entries go.
  entries_.clear();
}

void reactor_core::start() { tag_ = std::uint64_t{loop_->start(*this)} << 56; }

// ---- the public operations ----

void reactor_core::perform(handoff request) {
  if (loop_->on_own_thread())
    apply(request);
  else
    hand_off(std::move(request));
}

void reactor_core::hand_off(handoff request) {
  loop_->post(handoff_handler{weak_from_this(), std::move(request)});
}

void reactor_core::apply(handoff& request) {
  std::visit([this](auto& operation) { run(operation); }, request);
}

void reactor_core::run(start_wait_request& request) {
  const std::uint32_t index = allocate(entry::kind::oneshot, request.fd);
  auto& e = entries_[index];
  e.key = request.done.get_fence().state();
  by_fence_.emplace(e.key, index);
  e.done.emplace(std::move(request.done));
  prepare(index);
}

void reactor_core::run(cancel_wait_request& request) { cancel_wait(request.waited.state()); }

bool reactor_core::cancel_wait(const fence_state* key) {
  auto it = by_fence_.find(key);
  if (it == by_fence_.end()) return false;
  prepare_cancel(it->second);
  return true;
}

void reactor_core::run(start_watch_request& request) {
  const std::uint32_t index = allocate(entry::kind::multishot, request.fd);
  entries_[index].on_ready = std::move(request.on_ready);
  watches_.emplace(request.id, index);
  prepare(index);
}

void reactor_core::run(stop_watch_request& request) {
  auto it = watches_.find(request.id);
  if (it == watches_.end()) return;
  const std::uint32_t index = it->second;
  watches_.erase(it);
  entries_[index].unwatched = true;
  // A refused watch has no poll to cancel: a no-op request in its name
  // completes and releases it, as the cancellation's completion would.
  if (entries_[index].failed)
    prepare_nop(index);
  else
    prepare_cancel(index);
}

// ---- completions ----

void reactor_core::dispatch(std::uint64_t user_data, std::int32_t res, std::uint32_t flags) {
  if (user_data == cancel_marker) return;
  if ((user_data & tag_mask) != tag_) return;  // another reactor's (stale)
  const auto index = static_cast<std::uint32_t>(user_data);
  const auto generation = static_cast<std::uint32_t>(user_data >> 32) & generation_mask;
  if (index >= entries_.size() || (entries_[index].generation & generation_mask) != generation)
    return;  // stale
  auto& e = entries_[index];
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
      log_line(spdlog::level::err,
               "cosched::reactor: could not wait for fd {} to be readable: {} (errno {}); its fence fails",
               e.fd, ec.message(), ec.value());
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
    log_line(spdlog::level::err,
             "cosched::reactor: could not watch fd {}: {} (errno {}); it is not watched until unwatch()",
             e.fd, std::generic_category().message(-res), -res);
    e.failed = true;
    return;
  }
  // The callback may watch or unwatch (and so reallocate `entries_`).
  auto callback = std::move(e.on_ready);
  if (res >= 0) callback();
  auto& again = entries_[index];
  if (again.generation != generation || again.what != entry::kind::multishot) return;
  again.on_ready = std::move(callback);
  if (again.unwatched) {
    if (!more) release(index);
    return;
  }
  if (!more) prepare(index);  // the kernel ended the multishot: re-arm
}

void reactor_core::cancel_all() {
  for (std::uint32_t index = 0; index < entries_.size(); ++index)
    if (entries_[index].what != entry::kind::free) prepare_cancel(index);
}

// ---- the table ----

std::uint32_t reactor_core::allocate(entry::kind what, int fd) {
  std::uint32_t index;
  if (!free_slots_.empty()) {
    index = free_slots_.back();
    free_slots_.pop_back();
  } else {
    index = static_cast<std::uint32_t>(entries_.size());
    entries_.emplace_back();
  }
  auto& e = entries_[index];
  e.what = what;
  e.fd = fd;
  e.unwatched = false;
  e.failed = false;
  // relaxed: a statistic, written on this thread only.
  pending_count_.fetch_add(1, std::memory_order_relaxed);
  return index;
}

void reactor_core::release(std::uint32_t index) {
  auto& e = entries_[index];
  if (e.key) by_fence_.erase(e.key);
  e.key = nullptr;
  e.done.reset();
  e.on_ready = nullptr;
  e.what = entry::kind::free;
  ++e.generation;
  free_slots_.push_back(index);
  // relaxed: a statistic, written on this thread only.
  pending_count_.fetch_sub(1, std::memory_order_relaxed);
}

std::uint64_t reactor_core::user_data_of(std::uint32_t index) const noexcept {
  return tag_ | (std::uint64_t{entries_[index].generation & generation_mask} << 32) | index;
}

// ---- requests ----

io_uring_sqe* reactor_core::next_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (!sqe && loop_->can_submit()) {
    loop_->submit();  // the submission queue is full: flush it now
    sqe = io_uring_get_sqe(&ring_);
  }
  if (!sqe)
    throw std::system_error(EBUSY, std::generic_category(), "cosched::reactor: submission queue full");
  return sqe;
}

void reactor_core::prepare(std::uint32_t index) {
  auto& e = entries_[index];
  io_uring_sqe* sqe = next_sqe();
  if (e.what == entry::kind::multishot)
    io_uring_prep_poll_multishot(sqe, e.fd, POLLIN);
  else
    io_uring_prep_poll_add(sqe, e.fd, POLLIN);
  io_uring_sqe_set_data64(sqe, user_data_of(index));
  loop_->prepared(request_kind::poll);
}

void reactor_core::prepare_cancel(std::uint32_t index) {
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_poll_remove(sqe, user_data_of(index));
  io_uring_sqe_set_data64(sqe, cancel_marker);
  loop_->prepared(request_kind::cancel);
}

void reactor_core::prepare_nop(std::uint32_t index) {
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_nop(sqe);
  io_uring_sqe_set_data64(sqe, user_data_of(index));
  loop_->prepared(request_kind::nop);
}

}  // namespace cosched::detail
