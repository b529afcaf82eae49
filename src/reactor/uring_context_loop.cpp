// The reactor on a cosched::uring_context: the context's ring, whose loop reaps
// the reactor's completions and submits its requests as it goes idle.
#include <exception>
#include <utility>

#include <liburing.h>
#include <asio/post.hpp>

#include "reactor/reactor_core.hpp"
#include "reactor/reactor_loop.hpp"
#include "uring_loop.hpp"

namespace cosched::detail {

namespace {

/// A reactor_loop on a uring_context. The context's loop hands the completions
/// that carry the reactor's tag to it (as its uring_completion_sink) and submits
/// what the core prepared before it next waits, so no request needs a handler
/// of its own; the loop keeps running while the core has requests pending.
///
/// @par Thread Safety
/// As reactor_loop; the context's thread is the one that runs its loop.
///
/// @par Ownership and Lifetime
/// The context (and its ring) outlive the reactor: at the core's destruction the
/// loop detaches and cancels the polls still in the kernel, and a later
/// reactor's different tag tells their completions apart.
class uring_context_loop final : public reactor_loop, uring_completion_sink {
 public:
  explicit uring_context_loop(uring_context& context)
      : context_(context), executor_(context.get_executor()), loop_(context.loop()) {}

  // reactor_loop (each member documented there). The loop submits and reaps for
  // the reactor, so most of them hand the call to it.
  std::uint8_t start(reactor_core& core) override {
    core_ = &core;
    return loop_.attach(this);
  }
  void post(handoff_handler handler) override { asio::post(context_.get_executor(), std::move(handler)); }
  bool on_own_thread() const noexcept override { return loop_.on_loop_thread(); }
  io_uring& ring() noexcept override { return loop_.ring; }
  bool can_submit() const noexcept override { return loop_.enabled(); }
  void submit() override { loop_.submit_now(); }
  void prepared(request_kind) override {}  // the loop submits before it next waits
  void detach() noexcept override { loop_.detach(this); }
  void teardown() noexcept override;
  bool single_issuer() const noexcept override {
    return (loop_.ring.flags & IORING_SETUP_SINGLE_ISSUER) != 0;
  }
  std::uint64_t submit_calls() const noexcept override { return 0; }  // the context counts its enters
  const asio::any_io_executor& executor() const noexcept override { return executor_; }

  // uring_completion_sink (the loop's thread).
  void on_completion(std::uint64_t user_data, std::int32_t res, std::uint32_t flags) override {
    core_->dispatch(user_data, res, flags);
  }
  bool has_pending() const noexcept override { return core_->pending() != 0; }

 private:
  /// The context; it outlives the reactor.
  uring_context& context_;
  asio::any_io_executor executor_;
  /// The context's loop: its ring, its submissions, the sink it reaps for.
  uring_loop& loop_;
  /// The core that owns this loop (set by start()).
  reactor_core* core_ = nullptr;
};

void uring_context_loop::teardown() noexcept {
  loop_.detach(this);
  // The ring outlives this reactor: stop polling the fds it was asked to watch.
  try {
    core_->cancel_all();
    if (io_uring_sq_ready(&loop_.ring)) loop_.submit_now();
  } catch (const std::exception&) {
    // A full queue or a failed submit: the polls end with the ring.
  }
}

}  // namespace

std::unique_ptr<reactor_loop> make_uring_context_loop(uring_context& context) {
  return std::make_unique<uring_context_loop>(context);
}

}  // namespace cosched::detail
