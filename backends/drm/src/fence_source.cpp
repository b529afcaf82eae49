// Syncobj and sync_file waits: the fence a point holds now as a polled sync_file,
// EVENTFD registrations (shared where provably the same fence, bounded) for
// points that hold none, and their completion with the fence's error.
#include "cosched/drm/fence_source.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "cosched/combinators.hpp"
#include "cosched/drm/sync_file.hpp"
#include "cosched/drm/unique_fd.hpp"
#include "cosched/error.hpp"
#include "cosched/log.hpp"
#include "device_state.hpp"
#include "fence_source_impl.hpp"
#include "uapi.hpp"

namespace cosched::drm {

namespace detail {

namespace {
// Whether the fd is readable now (an eventfd with a non-zero count).
bool readable(int fd) noexcept {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

std::uint64_t as_user_pointer(const void* p) noexcept { return reinterpret_cast<std::uintptr_t>(p); }
}  // namespace

registration::~registration() {
  if (fd >= 0) ::close(fd);
}

bool registration::shareable() const noexcept {
  return what == kind::eventfd && done && !attached && !readable(fd);
}

fence_source_impl::fence_source_impl(const drm::device& dev, reactor& r, fence_source_options opts)
    : device(dev),
      events(r),
      executor(r.get_executor()),
      options(std::move(opts)),
      timeline_context(new_context()) {
  if (!device) throw std::invalid_argument("cosched::drm::fence_source: empty device");
  if (options.max_registrations == 0)
    throw std::invalid_argument("cosched::drm::fence_source: max_registrations must be at least 1");
  if (!options.sync_file_status) options.sync_file_status = [](int fd) { return drm::sync_file_status(fd); };
}

fence_source_impl::~fence_source_impl() {
  if (scratch) device.state()->destroy_syncobj(scratch);
}

watched_syncobj& fence_source_impl::watch(const syncobj& s, const char* operation) {
  const auto& identity = s.identity();
  auto& target = watched[identity.get()];
  if (!target.duplicate) {
    try {
      target.identity = identity;
      target.duplicate = std::make_shared<owned_handle>(
          device.state(), duplicate_syncobj(*s.get_device().state(), s.handle(), *device.state(),
                                            std::string(operation) + " (duplicating the syncobj)"));
      identity->add_listener(shared_from_this());
    } catch (...) {
      watched.erase(identity.get());
      throw;
    }
  }
  return target;
}

void fence_source_impl::publish(const std::shared_ptr<registration>& r, watched_syncobj* target) {
  promise done(fence_point{timeline_context, ++next_seqno});
  r->result = done.get_fence();
  r->done.emplace(std::move(done));
  start_poll(r);
  by_fence.emplace(r->result.state(), r);
  if (target) target->pending.insert(r.get());
}

std::shared_ptr<registration> fence_source_impl::immediate(std::error_code outcome) {
  auto r = std::make_shared<registration>(registration::kind::immediate, -1);
  r->outcome = outcome;
  publish(r, nullptr);
  return r;
}

// The wait rule: a wait waits for the fence the point holds at the moment of the
// wait, whoever put it there; when the point holds none, for the first fence
// the point gets after that moment. Facts from the kernel (drm_syncobj.c):
// - An EVENTFD entry finds the point's fence when it is registered, and again
//   at every later change of the syncobj's fence while it has found none; once
//   it has found one, it stays with that fence (dma_fence_add_callback), even if
//   the syncobj's fence is replaced or reset later. Nothing tells userspace which
//   fence an entry is on, nor that a fence was replaced.
// - A sync_file exported from the point holds exactly the fence there at the
//   export, and its poll can be cancelled.
// Hence:
// - The point holds a fence now: its sync_file is exported and polled. That is
//   the fence there now, exactly; its status is its own; no registration is
//   made. Two such waits never share: userspace cannot tell whether the fence
//   was replaced between them.
// - The point holds no fence: an EVENTFD registration, which will find the
//   first fence the point gets. A later wait may share it only if it is still
//   provably looking for one, i.e. the point has had no fence at any moment
//   since the registration; then the later wait's "first fence after now" is
//   the same fence. "No fence now and none when it was registered" is not
//   enough: a fence may have come and gone in between (a compositor resetting a
//   binary syncobj frame after frame), and the registration waits for it. So a
//   signalled-mode registration is two entries on one eventfd: first one with
//   WAIT_AVAILABLE, which fires the moment the point has a fence, then the wait
//   itself. The kernel looks at both in one pass under the syncobj's lock, in
//   that order, with the same fence: the wait finds a fence exactly when the
//   WAIT_AVAILABLE entry fires. An eventfd count still zero (read under the
//   source's lock, where completions read it too) thus proves that the wait has
//   found no fence yet, and only then is it shared. The registration completes
//   when both entries have fired (a count of two).
// A WAIT_AVAILABLE wait is one entry, shared while it has not fired; a point
// holding a fence now is available at once.
std::shared_ptr<registration> fence_source_impl::wait_registration(const syncobj& s, std::uint64_t point,
                                                                   std::uint32_t flags, bool for_submit,
                                                                   const char* operation) {
  if (!s.valid()) throw std::logic_error(std::string("cosched::drm::") + operation + ": empty syncobj");
  const bool available = (flags & uapi::wait_flag_available) != 0;
  const wait_key key{s.identity().get(), point, flags};
  const std::error_code no_fence(EINVAL, std::generic_category());

  if (auto it = by_key.find(key); it != by_key.end() && it->second->shareable()) {
    // Shareable proves that the point holds no fence now.
    return for_submit ? it->second : immediate(no_fence);
  }

  auto& target = watch(s, operation);
  const std::uint32_t handle = target.duplicate->handle;
  const auto& dev = *device.state();
  const auto drop_unused_target = [&] {
    if (target.pending.empty()) watched.erase(key.syncobj);
  };
  try {
    if (available) {
      const int err = wait_now(std::span(&handle, 1), std::span(&point, 1), uapi::wait_flag_available);
      if (err != 0 && err != ETIME)
        throw_error(err, std::string(operation) + " (DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, point " +
                             std::to_string(point) + ")");
      if (err == 0 || !for_submit) {
        drop_unused_target();
        return immediate(err == 0 ? std::error_code() : no_fence);
      }
    } else {
      const int pinned = export_point(handle, point);
      if (pinned >= 0) {
        auto r = std::make_shared<registration>(registration::kind::sync_file, pinned);
        r->key = key;
        publish(r, &target);
        return r;
      }
      if (pinned != -EINVAL)  // EINVAL: the point holds no fence
        throw_error(-pinned, std::string(operation) + " (exporting the fence of point " +
                                 std::to_string(point) + " as a sync_file)");
      if (!for_submit) {
        drop_unused_target();
        return immediate(no_fence);
      }
    }

    // relaxed: written only under the lock, which we hold.
    if (live.load(std::memory_order_relaxed) >= options.max_registrations)
      throw std::system_error(
          EBUSY, std::generic_category(),
          std::string("cosched::drm::") + operation + ": " + std::to_string(options.max_registrations) +
              " DRM_IOCTL_SYNCOBJ_EVENTFD registrations are live (fence_source_options::max_registrations); "
              "a registration cannot be cancelled, so a wait beyond the bound is refused rather than queued "
              "(a queued wait could deadlock a producer that waits for cosched work)");
    const int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0)
      throw_error(errno, std::string(operation) + " (eventfd for a DRM_IOCTL_SYNCOBJ_EVENTFD registration)");
    auto r = std::make_shared<registration>(registration::kind::eventfd, efd);
    r->key = key;
    r->syncobj = target.duplicate;
    // The WAIT_AVAILABLE entry first (see above), then, for a signalled-mode
    // wait, the wait itself.
    for (const std::uint32_t entry_flags : {uapi::wait_flag_available, 0u}) {
      if (entry_flags == 0 && available) break;
      uapi::syncobj_eventfd args{};
      args.handle = handle;
      args.flags = entry_flags;
      args.point = point;
      args.fd = efd;
      // A failure after the first entry leaves that entry in the kernel; it
      // fires into an eventfd nobody polls, harmlessly.
      if (const int err = dev.ioctl(uapi::ioctl_syncobj_eventfd, &args))
        throw_error(err, std::string(operation) + " (DRM_IOCTL_SYNCOBJ_EVENTFD, point " +
                             std::to_string(point) + ")");
      ++r->entries;
    }
    publish(r, &target);
    by_key.insert_or_assign(key, r);
    // relaxed: statistics; the lock orders the writes.
    live.fetch_add(1, std::memory_order_relaxed);
    made.fetch_add(1, std::memory_order_relaxed);
    return r;
  } catch (...) {
    drop_unused_target();
    throw;
  }
}

fence fence_source_impl::wait(const syncobj& s, std::uint64_t point, std::uint32_t flags,
                              const wait_options& opts, const char* operation) {
  std::lock_guard guard(lock);
  if (!opts.timeout) return wait_registration(s, point, flags, opts.for_submit, operation)->result;
  if (*opts.timeout <= fence::clock::now()) {
    // Past already: the kernel's wait with a timeout in the past, now.
    if (!s.valid()) throw std::logic_error(std::string("cosched::drm::") + operation + ": empty syncobj");
    auto& target = watch(s, operation);
    const std::uint32_t handle = target.duplicate->handle;
    const std::uint32_t wait_flags = flags | (opts.for_submit ? uapi::wait_flag_for_submit : 0u);
    const int err = wait_now(std::span(&handle, 1), std::span(&point, 1), wait_flags);
    std::error_code outcome;
    if (err == ETIME) {
      outcome = make_error_code(errc::timed_out);
    } else if (err == EINVAL) {
      outcome = {EINVAL, std::generic_category()};  // no fence, and not waiting for one
    } else if (err != 0) {
      if (target.pending.empty()) watched.erase(s.identity().get());
      throw_error(err, std::string(operation) + " (DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, point " +
                           std::to_string(point) + ")");
    } else if (!(flags & uapi::wait_flag_available)) {
      outcome = point_error(handle, point);
    }
    if (target.pending.empty()) watched.erase(s.identity().get());
    return immediate(outcome)->result;
  }
  auto r = wait_registration(s, point, flags, opts.for_submit, operation);
  if (r->what == registration::kind::immediate) return r->result;
  return with_timeout(r->result, {r}, *opts.timeout, operation);
}

int fence_source_impl::wait_now(std::span<const std::uint32_t> handles, std::span<const std::uint64_t> points,
                                std::uint32_t flags, std::uint32_t* first) noexcept {
  uapi::syncobj_timeline_wait args{};
  args.handles = as_user_pointer(handles.data());
  args.points = as_user_pointer(points.data());
  args.count_handles = static_cast<std::uint32_t>(handles.size());
  args.flags = flags;
  args.timeout_nsec = 0;  // the kernel looks once and does not sleep
  const int err = device.state()->ioctl(uapi::ioctl_syncobj_timeline_wait, &args);
  if (err == 0 && first) *first = args.first_signaled;
  return err;
}

std::shared_ptr<registration> fence_source_impl::make_timer(std::vector<std::shared_ptr<registration>> parts,
                                                            fence::clock::time_point when,
                                                            const char* operation) {
  const int tfd = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (tfd < 0) throw_error(errno, std::string(operation) + " (timerfd for the timeout)");
  auto timer = std::make_shared<registration>(registration::kind::timer, tfd);
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(when.time_since_epoch()).count();
  itimerspec at{};
  at.it_value.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
  at.it_value.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  if (at.it_value.tv_sec == 0 && at.it_value.tv_nsec == 0) at.it_value.tv_nsec = 1;  // 0 would disarm it
  if (::timerfd_settime(tfd, TFD_TIMER_ABSTIME, &at, nullptr) != 0)
    throw_error(errno, std::string(operation) + " (arming the timeout's timerfd)");
  timer->parts = std::move(parts);
  publish(timer, nullptr);
  return timer;
}

fence fence_source_impl::with_timeout(fence result, std::vector<std::shared_ptr<registration>> parts,
                                      fence::clock::time_point when, const char* operation) {
  auto timer = make_timer(parts, when, operation);
  // The result is the first of the wait and the timeout; the timeout's own
  // cause is none, and the wait's outcome passes through as it is.
  const fence inputs[] = {std::move(result), timer->result};
  const std::size_t indices[] = {0, 1};
  fence timed = cosched::detail::when_any(inputs, indices, cosched::detail::failure_cause::as_is).get_fence();
  add_composite(timed, std::move(parts), std::move(timer));
  return timed;
}

any_fence fence_source_impl::wait_many(std::span<const wait_point> points, std::uint32_t flags,
                                       const wait_options& opts, bool all, const char* operation) {
  using cosched::detail::failure_cause;
  if (!all && points.empty())
    throw std::invalid_argument(std::string("cosched::drm::") + operation + ": no points");
  for (const auto& p : points)
    if (!p.object().valid())
      throw std::logic_error(std::string("cosched::drm::") + operation + ": empty syncobj");
  const auto decided = [&](std::error_code outcome, std::size_t index) {
    const fence inputs[] = {immediate(outcome)->result};
    return cosched::detail::when_any(inputs, std::span(&index, 1), failure_cause::as_is);
  };

  std::lock_guard guard(lock);
  if (points.empty()) return decided({}, 0);
  std::vector<std::uint32_t> handles;
  std::vector<std::uint64_t> numbers;
  std::vector<const syncobj_identity*> touched;
  const auto drop_unused_targets = [&] {
    for (const auto* identity : touched)
      if (auto it = watched.find(identity); it != watched.end() && it->second.pending.empty())
        watched.erase(it);
  };
  try {
    for (const auto& p : points) {
      auto& target = watch(p.object(), operation);
      touched.push_back(p.object().identity().get());
      handles.push_back(target.duplicate->handle);
      numbers.push_back(p.point());
    }
    // The kernel's own wait, with timeout 0: what it can decide now needs no
    // registration and no poll.
    const bool past = opts.timeout && *opts.timeout <= fence::clock::now();
    std::uint32_t first = 0;
    const int now = wait_now(
        handles, numbers,
        flags | (opts.for_submit ? uapi::wait_flag_for_submit : 0u) | (all ? uapi::wait_flag_all : 0u),
        &first);
    std::optional<any_fence> result;
    const bool status = !(flags & uapi::wait_flag_available);
    if (now == 0 && all) {
      std::error_code outcome;
      for (std::size_t i = 0; status && i < points.size() && !outcome; ++i)
        outcome = point_error(handles[i], numbers[i]);
      result = decided(outcome, 0);
    } else if (now == 0) {
      const std::size_t winner = first < points.size() ? first : 0;
      result = decided(status ? point_error(handles[winner], numbers[winner]) : std::error_code(), winner);
    } else if (now == EINVAL && !opts.for_submit) {
      result = decided({EINVAL, std::generic_category()}, any_fence::none);  // a point holds no fence
    } else if (now != ETIME) {
      throw_error(now, std::string(operation) + " (DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT)");
    } else if (past) {
      result = decided(make_error_code(errc::timed_out), any_fence::none);
    }
    if (result) {
      drop_unused_targets();
      return *result;
    }

    // One wait per distinct point, combined.
    std::vector<std::shared_ptr<registration>> parts;
    std::vector<fence> inputs;
    for (std::size_t i = 0; i < points.size(); ++i) {
      std::shared_ptr<registration> r;
      for (std::size_t j = 0; j < i && !r; ++j)
        if (touched[j] == touched[i] && numbers[j] == numbers[i]) r = parts[j];
      if (!r) r = wait_registration(points[i].object(), numbers[i], flags, opts.for_submit, operation);
      parts.push_back(r);
      inputs.push_back(r->result);
    }
    std::vector<std::size_t> indices(points.size());
    for (std::size_t i = 0; i < indices.size(); ++i) indices[i] = i;
    std::shared_ptr<registration> timer;
    if (opts.timeout) timer = make_timer(parts, *opts.timeout, operation);
    if (all) {
      fence combined = cosched::detail::when_all(inputs, failure_cause::as_is);
      if (timer) {
        const fence timed[] = {combined, timer->result};
        const std::size_t order[] = {0, any_fence::none};
        result = cosched::detail::when_any(timed, order, failure_cause::as_is);
      } else {
        const std::size_t zero = 0;
        result =
            cosched::detail::when_any(std::span(&combined, 1), std::span(&zero, 1), failure_cause::as_is);
      }
    } else {
      if (timer) {
        inputs.push_back(timer->result);
        indices.push_back(any_fence::none);
      }
      result = cosched::detail::when_any(inputs, indices, failure_cause::as_is);
    }
    add_composite(result->get_fence(), std::move(parts), std::move(timer));
    return *result;
  } catch (...) {
    drop_unused_targets();
    throw;
  }
}

void fence_source_impl::add_composite(const fence& result, std::vector<std::shared_ptr<registration>> parts,
                                      std::shared_ptr<registration> timer) {
  composites[result.state()].parts = std::move(parts);
  // Until the result signals: then the timer (if any) and the parts' sync_file
  // polls still pending (made for this result alone; a timed-out wait, the
  // losers of a wait on any point) are cancelled, and the record dropped. The
  // handler's copy of the result keeps its state, and so the key, from being
  // reused before the record is gone.
  result.async_wait(executor, [weak = weak_from_this(), result, timer = std::move(timer)](std::error_code) {
    auto self = weak.lock();
    if (!self) return;
    std::vector<promise> cancelled;
    {
      std::lock_guard guard(self->lock);
      auto it = self->composites.find(result.state());
      if (it != self->composites.end()) {
        for (const auto& part : it->second.parts) {
          if (part->what != registration::kind::sync_file || !part->done) continue;
          cancelled.push_back(std::move(*std::exchange(part->done, std::nullopt)));
          self->detach(*part);
          self->end_poll(*part);
        }
        self->composites.erase(it);
      }
      if (timer && timer->done) self->end_poll(*timer);
    }
    for (auto& p : cancelled) p.set_error(make_error_code(errc::cancelled));
  });
}

fence fence_source_impl::wait_sync_file(int sync_file_fd) {
  // Refuse what is not a sync_file now rather than fail the fence later.
  drm::sync_file_status(sync_file_fd);
  const int own = ::fcntl(sync_file_fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) throw_error(errno, "fence_source::wait_sync_file (duplicating the fd)");
  auto r = std::make_shared<registration>(registration::kind::sync_file, own);
  std::lock_guard guard(lock);
  publish(r, nullptr);
  return r->result;
}

void fence_source_impl::start_poll(const std::shared_ptr<registration>& r) {
  if (r->what == registration::kind::immediate) {
    asio::post(executor, [weak = weak_from_this(), r] {
      if (auto self = weak.lock()) self->complete(r, {});
    });
    return;
  }
  r->poll = events.wait_readable(r->fd);
  // The continuation owns the registration (and so its fd) until the poll
  // ended, whatever happened to the source meanwhile.
  r->poll.async_wait(executor, [weak = weak_from_this(), r](std::error_code ec) {
    if (auto self = weak.lock()) self->complete(r, ec);
  });
}

void fence_source_impl::end_poll(registration& r) noexcept {
  if (r.what == registration::kind::eventfd) {
    // Makes the eventfd readable so that its poll ends now; the kernel may
    // still add to it later, harmlessly.
    const std::uint64_t one = 1;
    // Cannot fail for a valid eventfd short of an overflowing count.
    [[maybe_unused]] const auto written = ::write(r.fd, &one, sizeof one);
  } else if (r.what != registration::kind::immediate) {
    events.cancel(r.poll);
  }
}

void fence_source_impl::detach(registration& r) noexcept {
  if (r.detached) return;
  r.detached = true;
  by_fence.erase(r.result.state());
  if (auto it = by_key.find(r.key); it != by_key.end() && it->second.get() == &r) by_key.erase(it);
  if (!r.key.syncobj) return;
  if (auto it = watched.find(r.key.syncobj); it != watched.end()) {
    it->second.pending.erase(&r);
    if (it->second.pending.empty()) watched.erase(it);
  }
}

void fence_source_impl::complete(const std::shared_ptr<registration>& r, std::error_code ec) noexcept {
  std::optional<promise> done;
  std::vector<std::shared_ptr<registration>> timed_out;
  {
    std::lock_guard guard(lock);
    // A registration counts as live until its last poll has ended (so its
    // eventfd is closed soon after); it is never polled again once `done` is taken.
    // relaxed: statistics; the lock orders the writes.
    if (!r->done) {  // failed already (its syncobj or the source was destroyed)
      if (r->what == registration::kind::eventfd) live.fetch_sub(1, std::memory_order_relaxed);
      return;
    }
    if (!ec && r->what == registration::kind::eventfd) {
      std::uint64_t count = 0;
      // EAGAIN (a count of zero) cannot happen after a POLLIN, but costs nothing to allow.
      if (::read(r->fd, &count, sizeof count) == sizeof count) r->fired += count;
      // The first entry to fire is the WAIT_AVAILABLE one: a fence has existed.
      if (r->fired > 0) r->attached = true;
      if (r->fired < r->entries) {
        start_poll(r);  // the wait entry has not fired yet
        return;
      }
    }
    done.swap(r->done);
    detach(*r);
    if (r->what == registration::kind::eventfd) live.fetch_sub(1, std::memory_order_relaxed);
    timed_out.swap(r->parts);
  }
  // A timeout: the kernel is looked at once more, as its own wait does when
  // its timeout expires, so that a point reached by now wins over the timer.
  if (!ec && r->what == registration::kind::timer)
    for (const auto& part : timed_out) refresh(part);
  finish(*r, *done, ec);
}

void fence_source_impl::finish(registration& r, promise& done, std::error_code ec) noexcept {
  if (ec) {
    done.set_error(ec);
    return;
  }
  switch (r.what) {
    case registration::kind::immediate:
      done.signal(r.outcome);
      return;
    case registration::kind::timer:
      done.set_error(make_error_code(errc::timed_out));
      return;
    case registration::kind::eventfd:
      if (r.key.flags & uapi::wait_flag_available) {
        done.set_value();
        return;
      }
      break;
    case registration::kind::sync_file:
      break;
  }
  done.signal(fence_error(r));
}

void fence_source_impl::refresh(const std::shared_ptr<registration>& r) noexcept {
  std::optional<promise> done;
  {
    std::lock_guard guard(lock);
    if (!r->done) return;
    switch (r->what) {
      case registration::kind::eventfd: {
        std::uint64_t count = 0;
        if (::read(r->fd, &count, sizeof count) == sizeof count) r->fired += count;
        if (r->fired > 0) r->attached = true;
        if (r->fired < r->entries) return;  // its poll stays armed for the rest
        break;
      }
      case registration::kind::sync_file:
        if (!readable(r->fd)) return;
        break;
      case registration::kind::immediate:
      case registration::kind::timer:
        return;  // decided already, or nothing in the kernel to look at
    }
    done.swap(r->done);
    detach(*r);
    // The poll's own completion finds `done` taken; for an eventfd whose count
    // was just read it would never come, so the poll is ended.
    end_poll(*r);
  }
  finish(*r, *done, {});
}

std::error_code fence_source_impl::fence_error(const registration& r) noexcept {
  if (r.what == registration::kind::eventfd) return point_error(r.syncobj->handle, r.key.point);
  return status_error(r.fd);
}

int fence_source_impl::export_point(std::uint32_t handle, std::uint64_t point) noexcept {
  const auto& dev = *device.state();
  if (point == 0) return export_sync_file(dev, handle);
  std::lock_guard guard(scratch_lock);
  if (!scratch) {
    drm_syncobj_create args{};
    if (const int err = dev.ioctl(DRM_IOCTL_SYNCOBJ_CREATE, &args)) return -err;
    scratch = args.handle;
  }
  // The scratch syncobj is the source's alone: the transfer and the export
  // under its lock give the point's fence at the moment of the transfer.
  const int err = transfer(dev, handle, point, scratch, 0);
  return err ? -err : export_sync_file(dev, scratch);
}

std::error_code fence_source_impl::point_error(std::uint32_t handle, std::uint64_t point) noexcept {
  const int fd = export_point(handle, point);
  // No fence left to look at (a binary syncobj reset since): nothing failed
  // that could be reported.
  if (fd == -EINVAL || fd == -ENOENT) return {};
  if (fd < 0) {
    const std::string why = describe_error(-fd, "fence_source: exporting a reached point to read its status");
    logger()->warn("{}: {}", why, std::generic_category().message(-fd));
    return {-fd, std::generic_category()};
  }
  const unique_fd exported(fd);
  return status_error(exported.get());
}

std::error_code fence_source_impl::status_error(int sync_file_fd) noexcept {
  try {
    const int status = options.sync_file_status(sync_file_fd);
    if (status < 0) return {-status, std::generic_category()};
    return {};
  } catch (const std::system_error& e) {
    logger()->warn("cosched::drm::fence_source: reading a fence's status: {}", e.what());
    return e.code();
  } catch (...) {
    logger()->warn("cosched::drm::fence_source: reading a fence's status threw");
    return make_error_code(errc::exception);
  }
}

void fence_source_impl::on_syncobj_destroyed(const syncobj_identity& which) noexcept {
  std::vector<std::shared_ptr<registration>> ended;
  std::vector<promise> broken;
  {
    std::lock_guard guard(lock);
    auto it = watched.find(&which);
    if (it == watched.end()) return;
    for (registration* r : it->second.pending) {
      if (auto found = by_fence.find(r->result.state()); found != by_fence.end())
        ended.push_back(found->second);
    }
    for (auto& r : ended) {
      if (r->done) broken.push_back(std::move(*std::exchange(r->done, std::nullopt)));
      detach(*r);
      end_poll(*r);
    }
    watched.erase(&which);  // if detach left it (it should not have)
  }
  for (auto& p : broken) p.set_error(make_error_code(errc::broken));
}

void fence_source_impl::abandon_all() noexcept {
  std::vector<std::shared_ptr<registration>> all;
  std::vector<promise> broken;
  {
    std::lock_guard guard(lock);
    all.reserve(by_fence.size());
    for (auto& entry : by_fence) all.push_back(entry.second);
    for (auto& r : all) {
      if (r->done) broken.push_back(std::move(*std::exchange(r->done, std::nullopt)));
      r->detached = true;
      end_poll(*r);
    }
    by_key.clear();
    by_fence.clear();
    watched.clear();
    composites.clear();
  }
  for (auto& p : broken) p.set_error(make_error_code(errc::broken));
}

}  // namespace detail

// ------------------------------------------------------------------ fence_source

fence_source::fence_source(const drm::device& dev, reactor& events, fence_source_options options)
    : impl_(std::make_shared<detail::fence_source_impl>(dev, events, std::move(options))) {}

fence_source::~fence_source() { impl_->abandon_all(); }

namespace {
std::uint32_t flags_of(wait_mode mode) noexcept {
  return mode == wait_mode::available ? uapi::wait_flag_available : 0u;
}
}  // namespace

fence fence_source::wait(const timeline_syncobj& s, std::uint64_t point, wait_mode mode) {
  return impl_->wait(s, point, flags_of(mode), {}, "fence_source::wait");
}

fence fence_source::wait(const binary_syncobj& s, wait_mode mode) {
  return impl_->wait(s, 0, flags_of(mode), {}, "fence_source::wait");
}

fence fence_source::wait(const timeline_syncobj& s, std::uint64_t point, const wait_options& options) {
  return impl_->wait(s, point, flags_of(options.mode), options, "fence_source::wait");
}

fence fence_source::wait(const binary_syncobj& s, const wait_options& options) {
  return impl_->wait(s, 0, flags_of(options.mode), options, "fence_source::wait");
}

fence fence_source::wait_all(std::span<const wait_point> points, const wait_options& options) {
  return impl_->wait_many(points, flags_of(options.mode), options, true, "fence_source::wait_all")
      .get_fence();
}

any_fence fence_source::wait_any(std::span<const wait_point> points, const wait_options& options) {
  return impl_->wait_many(points, flags_of(options.mode), options, false, "fence_source::wait_any");
}

fence fence_source::wait_sync_file(int sync_file_fd) { return impl_->wait_sync_file(sync_file_fd); }

std::size_t fence_source::live_registrations() const noexcept {
  // relaxed: a snapshot.
  return impl_->live.load(std::memory_order_relaxed);
}

std::uint64_t fence_source::registrations_made() const noexcept {
  // relaxed: a snapshot.
  return impl_->made.load(std::memory_order_relaxed);
}

std::size_t fence_source::max_registrations() const noexcept { return impl_->options.max_registrations; }

const drm::device& fence_source::get_device() const noexcept { return impl_->device; }

reactor& fence_source::get_reactor() const noexcept { return impl_->events; }

}  // namespace cosched::drm
