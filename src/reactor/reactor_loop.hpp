// The loop a reactor runs on, as the reactor's common core sees it: one
// interface, one implementation per execution context (io_context_loop.cpp,
// uring_context_loop.cpp). Private to the library.
#pragma once

#include <cstdint>
#include <memory>

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>

#include "cosched/reactor.hpp"
#include "cosched/uring_context.hpp"

struct io_uring;

namespace cosched::detail {

class reactor_core;
struct handoff_handler;

/// What reactor_core put in the submission queue (reactor_loop::prepared).
enum class request_kind : std::uint8_t {
  poll,    // a POLL_ADD, oneshot or multishot: a completion is now awaited
  cancel,  // a POLL_REMOVE
  nop,     // a no-op in a refused watch's name, that releases it
};

/// The part of a reactor that depends on the context it runs on: where its ring
/// comes from, how handlers reach the context's thread, when the requests
/// prepared in the ring are submitted and how their completions are reaped.
/// reactor_core holds the rest (the requests, their completions, the public
/// operations); it calls this interface once per prepared request or batch,
/// never once per completion.
///
/// Implementations: make_io_context_loop() (a ring of the reactor's own, whose
/// eventfd the io_context waits for; one io_uring_enter per handler batch) and
/// make_uring_context_loop() (the uring_context's ring, which its loop reaps and
/// submits as it goes idle).
///
/// @par Thread Safety
/// post(), on_own_thread(), executor(), single_issuer() and submit_calls() from
/// any thread; everything else on the context's thread (or, for detach() and
/// teardown(), while the context is not running).
///
/// @par Ownership and Lifetime
/// Owned by its reactor_core, which calls start() once the core is owned by a
/// shared_ptr, and teardown() from its destructor. The loop's own posted
/// handlers hold a weak_ptr to the core: they find the loop alive exactly when
/// the core is.
class reactor_loop {
 public:
  reactor_loop() = default;
  reactor_loop(const reactor_loop&) = delete;
  reactor_loop& operator=(const reactor_loop&) = delete;
  virtual ~reactor_loop() = default;

  /// Binds the loop to `core` (which must be owned by a shared_ptr) and starts
  /// it. Returns the tag the core's requests carry in the top byte of their
  /// user_data (0 on a ring of the reactor's own).
  virtual std::uint8_t start(reactor_core& core) = 0;

  /// Runs `handler` on the context's thread later (never inline): a public
  /// operation called from another thread.
  virtual void post(handoff_handler handler) = 0;
  /// Whether the calling thread runs the context (requests are made directly).
  virtual bool on_own_thread() const noexcept = 0;

  /// The ring the core prepares its requests in; the same for the loop's life.
  virtual io_uring& ring() noexcept = 0;
  /// Whether submit() may be called now (the ring is enabled).
  virtual bool can_submit() const noexcept = 0;
  /// Submits what is queued now: the submission queue is full.
  virtual void submit() = 0;
  /// The core put a request of `kind` in the submission queue; the loop sees
  /// that it is submitted before it next waits.
  virtual void prepared(request_kind kind) = 0;

  /// The reactor object is gone (its core may live on while a handler holding
  /// it runs): no completion is handed to the core any more.
  virtual void detach() noexcept = 0;
  /// The core is being destroyed, its requests still in the table: ends what
  /// must end before the ring does. Pending waits fail `broken` after it.
  virtual void teardown() noexcept = 0;

  /// Whether the ring runs with IORING_SETUP_SINGLE_ISSUER.
  virtual bool single_issuer() const noexcept = 0;
  /// io_uring_enter calls the reactor made to submit (0 when the context's loop
  /// submits: it counts them itself).
  virtual std::uint64_t submit_calls() const noexcept = 0;
  /// The executor of the context.
  virtual const asio::any_io_executor& executor() const noexcept = 0;
};

/// A loop on `context` with a ring of its own, made with `options`. Throws
/// std::system_error when the ring or its eventfd cannot be made.
std::unique_ptr<reactor_loop> make_io_context_loop(asio::io_context& context, const reactor_options& options);

/// A loop on `context`'s own ring and loop.
std::unique_ptr<reactor_loop> make_uring_context_loop(uring_context& context);

}  // namespace cosched::detail
