// Syncobj and sync_file waits: EVENTFD registrations (deduplicated, bounded) and
// sync_file polls on the io_uring reactor, and their completion with the fence's error.
#include "cosched/drm/fence_source.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "cosched/drm/sync_file.hpp"
#include "cosched/error.hpp"
#include "cosched/log.hpp"
#include "device_state.hpp"
#include "fence_source_impl.hpp"
#include "uapi.hpp"

namespace cosched::drm {

namespace detail {

namespace {
// Whether the eventfd has fired already (its registration is spent).
bool fired(int eventfd) noexcept {
  pollfd p{eventfd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}
}  // namespace

registration::~registration() {
  if (fd >= 0) ::close(fd);
}

void registration::end_poll_early() const noexcept {
  if (what != kind::eventfd) return;
  const std::uint64_t one = 1;
  // Cannot fail for a valid eventfd short of an overflowing count.
  [[maybe_unused]] const auto written = ::write(fd, &one, sizeof one);
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

fence fence_source_impl::wait(const syncobj& s, std::uint64_t point, std::uint32_t flags,
                              const char* operation) {
  if (!s.valid()) throw std::logic_error(std::string("cosched::drm::") + operation + ": empty syncobj");
  const auto& identity = s.identity();
  // acquire: pairs with the fence replacement's acq_rel increment.
  const wait_key key{identity.get(), point, flags, identity->generation.load(std::memory_order_acquire)};

  std::lock_guard guard(lock);
  if (auto it = by_key.find(key); it != by_key.end()) {
    // A binary fence may have been replaced from outside cosched since this
    // registration fired: join only one that has not fired yet. Timeline
    // points, once reached, stay reached.
    if (point != 0 || !fired(it->second->fd)) return it->second->result;
  }
  // relaxed: written only under the lock, which we hold.
  if (live.load(std::memory_order_relaxed) >= options.max_registrations)
    throw std::system_error(
        EBUSY, std::generic_category(),
        std::string("cosched::drm::") + operation + ": " + std::to_string(options.max_registrations) +
            " DRM_IOCTL_SYNCOBJ_EVENTFD registrations are live (fence_source_options::max_registrations); "
            "a registration cannot be cancelled, so a wait beyond the bound is refused rather than queued "
            "(a queued wait could deadlock a producer that waits for cosched work)");

  auto [watched_it, inserted] = watched.try_emplace(identity.get());
  auto& target = watched_it->second;
  try {
    if (!target.duplicate) {
      target.identity = identity;
      target.duplicate = std::make_shared<owned_handle>(
          device.state(), duplicate_syncobj(*s.get_device().state(), s.handle(), *device.state(),
                                            std::string(operation) + " (duplicating the syncobj)"));
      identity->add_listener(shared_from_this());
    }
    const int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0)
      throw_error(errno, std::string(operation) + " (eventfd for a DRM_IOCTL_SYNCOBJ_EVENTFD registration)");
    auto r = std::make_shared<registration>(registration::kind::eventfd, efd);
    r->key = key;
    r->syncobj = target.duplicate;
    uapi::syncobj_eventfd args{};
    args.handle = target.duplicate->handle;
    args.flags = flags;
    args.point = point;
    args.fd = efd;
    if (const int err = device.state()->ioctl(uapi::ioctl_syncobj_eventfd, &args))
      throw_error(
          err, std::string(operation) + " (DRM_IOCTL_SYNCOBJ_EVENTFD, point " + std::to_string(point) + ")");
    promise done(fence_point{timeline_context, ++next_seqno});
    r->result = done.get_fence();
    r->done.emplace(std::move(done));
    start_poll(r);
    by_key.insert_or_assign(key, r);
    by_fence.emplace(r->result.state(), r);
    target.pending.insert(r.get());
    // relaxed: statistics; the lock orders the writes.
    live.fetch_add(1, std::memory_order_relaxed);
    made.fetch_add(1, std::memory_order_relaxed);
    return r->result;
  } catch (...) {
    if (target.pending.empty()) watched.erase(watched_it);
    throw;
  }
}

fence fence_source_impl::wait_sync_file(int sync_file_fd) {
  // Refuse what is not a sync_file now rather than fail the fence later.
  drm::sync_file_status(sync_file_fd);
  const int own = ::fcntl(sync_file_fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) throw_error(errno, "fence_source::wait_sync_file (duplicating the fd)");
  auto r = std::make_shared<registration>(registration::kind::sync_file, own);
  std::lock_guard guard(lock);
  promise done(fence_point{timeline_context, ++next_seqno});
  r->result = done.get_fence();
  r->done.emplace(std::move(done));
  start_poll(r);
  by_fence.emplace(r->result.state(), r);
  return r->result;
}

void fence_source_impl::start_poll(const std::shared_ptr<registration>& r) {
  r->poll = events.wait_readable(r->fd);
  // The continuation owns the registration (and so its fd) until the poll
  // ended, whatever happened to the source meanwhile.
  r->poll.async_wait(executor, [weak = weak_from_this(), r](std::error_code ec) {
    if (auto self = weak.lock()) self->complete(r, ec);
  });
}

void fence_source_impl::detach(registration& r) noexcept {
  if (r.detached) return;
  r.detached = true;
  by_fence.erase(r.result.state());
  if (r.what != registration::kind::eventfd) return;
  if (auto it = by_key.find(r.key); it != by_key.end() && it->second.get() == &r) by_key.erase(it);
  if (auto it = watched.find(r.key.syncobj); it != watched.end()) {
    it->second.pending.erase(&r);
    if (it->second.pending.empty()) watched.erase(it);
  }
}

void fence_source_impl::complete(const std::shared_ptr<registration>& r, std::error_code ec) noexcept {
  std::optional<promise> done;
  {
    std::lock_guard guard(lock);
    done.swap(r->done);
    detach(*r);
    // relaxed: statistics; the lock orders the writes.
    if (r->what == registration::kind::eventfd) live.fetch_sub(1, std::memory_order_relaxed);
  }
  if (!done) return;  // failed already (its syncobj or the source was destroyed)
  if (ec) {
    done->set_error(ec);
    return;
  }
  if (r->what == registration::kind::eventfd && (r->key.flags & uapi::wait_flag_available)) {
    done->set_value();
    return;
  }
  done->signal(fence_error(*r));
}

std::error_code fence_source_impl::fence_error(const registration& r) noexcept {
  if (r.what == registration::kind::eventfd) return point_error(r.syncobj->handle, r.key.point);
  return status_error(r.fd);
}

std::error_code fence_source_impl::point_error(std::uint32_t handle, std::uint64_t point) noexcept {
  const auto& dev = *device.state();
  int fd;
  if (point == 0) {
    fd = export_sync_file(dev, handle);
  } else {
    std::lock_guard guard(scratch_lock);
    if (!scratch) {
      drm_syncobj_create args{};
      if (const int err = dev.ioctl(DRM_IOCTL_SYNCOBJ_CREATE, &args)) {
        logger()->warn("cosched::drm::fence_source: cannot create a syncobj to read a fence's status: {}",
                       std::generic_category().message(err));
        return {err, std::generic_category()};
      }
      scratch = args.handle;
    }
    const int err = transfer(dev, handle, point, scratch, 0);
    fd = err ? -err : export_sync_file(dev, scratch);
  }
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
      r->end_poll_early();
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
      if (r->what == registration::kind::eventfd)
        r->end_poll_early();
      else
        events.cancel(r->poll);
    }
    by_key.clear();
    by_fence.clear();
    watched.clear();
  }
  for (auto& p : broken) p.set_error(make_error_code(errc::broken));
}

}  // namespace detail

// ------------------------------------------------------------------ fence_source

fence_source::fence_source(const drm::device& dev, reactor& events, fence_source_options options)
    : impl_(std::make_shared<detail::fence_source_impl>(dev, events, std::move(options))) {}

fence_source::~fence_source() { impl_->abandon_all(); }

fence fence_source::wait(const timeline_syncobj& s, std::uint64_t point, wait_mode mode) {
  return impl_->wait(s, point, mode == wait_mode::available ? uapi::wait_flag_available : 0u,
                     "fence_source::wait");
}

fence fence_source::wait(const binary_syncobj& s, wait_mode mode) {
  return impl_->wait(s, 0, mode == wait_mode::available ? uapi::wait_flag_available : 0u,
                     "fence_source::wait");
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
