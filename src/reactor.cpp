// cosched::reactor, the public face: each operation goes to the reactor's core
// (src/reactor/reactor_core.hpp), on the loop of the context it was made on.
#include "cosched/reactor.hpp"

#include <utility>

#include "reactor/reactor_core.hpp"
#include "reactor/reactor_loop.hpp"

namespace cosched {

reactor::reactor(asio::io_context& ctx, reactor_options options)
    : core_(std::make_shared<detail::reactor_core>(detail::make_io_context_loop(ctx, options))) {
  core_->start();
}

reactor::reactor(uring_context& ctx)
    : core_(std::make_shared<detail::reactor_core>(detail::make_uring_context_loop(ctx))) {
  core_->start();
}

reactor::~reactor() { core_->loop().detach(); }

fence reactor::wait_readable(int fd) {
  promise done;
  fence result = done.get_fence();
  core_->perform(detail::start_wait_request{fd, std::move(done)});
  return result;
}

bool reactor::cancel(const fence& f) {
  if (!f.valid() || f.signalled()) return false;
  if (core_->on_own_thread()) return core_->cancel_wait(f.state());
  // Whether it is still pending is known on the loop's thread only.
  core_->hand_off(detail::cancel_wait_request{f});
  return true;
}

reactor::watch_id reactor::watch(int fd, std::function<void()> on_ready) {
  const watch_id id = core_->next_watch_id();
  core_->perform(detail::start_watch_request{id, fd, std::move(on_ready)});
  return id;
}

void reactor::unwatch(watch_id id) { core_->perform(detail::stop_watch_request{id}); }

std::size_t reactor::pending() const noexcept { return core_->pending(); }

bool reactor::single_issuer() const noexcept { return core_->loop().single_issuer(); }

std::uint64_t reactor::submit_calls() const noexcept { return core_->loop().submit_calls(); }

asio::any_io_executor reactor::get_executor() const noexcept { return core_->loop().executor(); }

}  // namespace cosched
