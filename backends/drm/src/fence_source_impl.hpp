// Internal to the DRM backend: the state of a fence source, shared by its waits
// (fence_source.cpp) and its host signals and deadlines (host_signal.cpp).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <asio/any_io_executor.hpp>

#include "cosched/drm/fence_source.hpp"
#include "device_state.hpp"
#include "syncobj_identity.hpp"

namespace cosched::drm::detail {

/// What makes two syncobj waits candidates for one registration (whether they
/// may share it is decided by registration::shareable()).
struct wait_key {
  const syncobj_identity* syncobj = nullptr;
  std::uint64_t point = 0;
  std::uint32_t flags = 0;
  friend bool operator==(const wait_key&, const wait_key&) = default;
};

struct wait_key_hash {
  std::size_t operator()(const wait_key& k) const noexcept {
    std::size_t h = std::hash<const void*>()(k.syncobj);
    for (const std::uint64_t v : {k.point, std::uint64_t{k.flags}})
      h ^= std::hash<std::uint64_t>()(v) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h;
  }
};

/// One kernel wait behind a fence of the source:
/// - `eventfd`: DRM_IOCTL_SYNCOBJ_EVENTFD entries on one eventfd, for a point
///   that had no fence when the wait was made (see fence_source.cpp for why a
///   signalled-mode wait registers two entries);
/// - `sync_file`: a polled sync_file fd: the fence a syncobj point held at the
///   moment of the wait (exported then), or a caller's sync_file;
/// - `immediate`: an outcome decided at the wait (`outcome`), signalled from a
///   handler posted to the reactor's executor;
/// - `timer`: a polled timerfd for a wait's timeout, failing errc::timed_out
///   once it has looked at `parts` (the kernel waits it times out) once more.
/// Owned by the source's maps while pending and by the reactor continuation
/// until the poll ends; the fd closes with the last owner.
///
/// State (guarded by the source's lock): pending (`done` holds the promise) ->
/// completed by whoever takes `done` first: the poll's continuation, the
/// destruction of the syncobj (broken), or the source's destruction (broken).
struct registration {
  enum class kind : std::uint8_t { eventfd, sync_file, immediate, timer };

  registration(kind k, int descriptor) noexcept : what(k), fd(descriptor) {}
  registration(const registration&) = delete;
  registration& operator=(const registration&) = delete;
  ~registration();

  /// Whether a new wait with the same key may share this registration: it is
  /// pending, an eventfd registration, and no fence has existed for its point
  /// since it was made (its WAIT_AVAILABLE entry has not fired). Requires the
  /// source's lock.
  bool shareable() const noexcept;

  const kind what;
  const int fd;                           // the eventfd, the sync_file, or -1 (immediate)
  wait_key key;                           // waits on syncobjs (eventfd, and sync_file pinned from a point)
  std::shared_ptr<owned_handle> syncobj;  // eventfd only: the source's own handle
  unsigned entries = 0;                   // eventfd only: kernel entries registered on `fd`
  std::uint64_t fired = 0;                // eventfd only, guarded: the eventfd's count read so far
  bool attached = false;                  // eventfd only, guarded: a fence has existed since (see shareable)
  std::error_code outcome;                // immediate only
  std::vector<std::shared_ptr<registration>> parts;  // timer only, guarded: what it times out
  std::optional<promise> done;                       // guarded by the source's lock
  bool detached = false;                             // guarded: no longer in the source's maps
  fence result;                                      // what wait() returns
  fence poll;                                        // guarded: the reactor's current wait on `fd`
};

/// The syncobjs a source waits on: its duplicate handle and pending registrations.
struct watched_syncobj {
  // Held so that its address (part of wait keys) is not reused while waited on:
  // a borrowing syncobj object goes without telling anyone.
  std::shared_ptr<syncobj_identity> identity;
  std::shared_ptr<owned_handle> duplicate;
  std::unordered_set<registration*> pending;
};

/// A fence made of several kernel waits (a wait with a timeout, a wait on
/// several points): its parts, for deadline hints. Kept until it signals.
struct composite {
  std::vector<std::shared_ptr<registration>> parts;
};

struct fence_source_impl final : syncobj_listener, std::enable_shared_from_this<fence_source_impl> {
  fence_source_impl(const drm::device& dev, reactor& r, fence_source_options opts);
  ~fence_source_impl() override;

  /// A wait on one point, by the rule in fence_source.cpp, with the options.
  fence wait(const syncobj& s, std::uint64_t point, std::uint32_t flags, const wait_options& options,
             const char* operation);
  /// The registration behind a wait without timeout (made, or shared). Requires the lock.
  std::shared_ptr<registration> wait_registration(const syncobj& s, std::uint64_t point, std::uint32_t flags,
                                                  bool for_submit, const char* operation);
  /// An already decided registration with `outcome`. Requires the lock.
  std::shared_ptr<registration> immediate(std::error_code outcome);
  /// DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT with timeout 0 on the source's handles:
  /// 0 (reached; `first` the first reached one), ETIME, or the errno.
  int wait_now(std::span<const std::uint32_t> handles, std::span<const std::uint64_t> points,
               std::uint32_t flags, std::uint32_t* first = nullptr) noexcept;
  /// A wait on several points (wait_all / wait_any): the any_fence of the
  /// first, or for `all` an any_fence whose fence is the when_all's.
  any_fence wait_many(std::span<const wait_point> points, std::uint32_t flags, const wait_options& options,
                      bool all, const char* operation);
  /// A timer registration failing errc::timed_out at `when`, after looking at
  /// `parts` once more. Requires the lock.
  std::shared_ptr<registration> make_timer(std::vector<std::shared_ptr<registration>> parts,
                                           fence::clock::time_point when, const char* operation);
  /// `result` (made of `parts`), failing errc::timed_out at `when` unless it
  /// has signalled by then. Requires the lock.
  fence with_timeout(fence result, std::vector<std::shared_ptr<registration>> parts,
                     fence::clock::time_point when, const char* operation);
  /// Records `result` as made of `parts` until it signals. Requires the lock.
  void add_composite(const fence& result, std::vector<std::shared_ptr<registration>> parts,
                     std::shared_ptr<registration> timer);
  /// Looks at the kernel once more for `r` and completes it now if its fence
  /// has been reached. Reactor's thread.
  void refresh(const std::shared_ptr<registration>& r) noexcept;
  /// Signals `done` with `r`'s outcome (the sync_file status for a signalled-mode wait).
  void finish(registration& r, promise& done, std::error_code ec) noexcept;
  /// Forwards a deadline hint to `r`'s kernel fence. Returns whether the kernel took it.
  bool forward_deadline(const registration& r, fence::clock::time_point earliest) noexcept;
  fence wait_sync_file(int sync_file_fd);
  void host_signal(const fence& f, const syncobj& s, std::uint64_t point, bool binary);
  bool set_deadline(const fence& f, fence::clock::time_point when);

  /// The poll of `r` ended (with `ec`): completes its fence, or, for an eventfd
  /// registration whose entries have not all fired, polls again. Reactor's thread.
  void complete(const std::shared_ptr<registration>& r, std::error_code ec) noexcept;
  /// The sync_file status of a completed signalled-mode wait, as an error.
  std::error_code fence_error(const registration& r) noexcept;
  /// The fence `point` of syncobj `handle` holds now (0: a binary syncobj's
  /// fence) as a new sync_file fd; -EINVAL when it holds none; -errno.
  int export_point(std::uint32_t handle, std::uint64_t point) noexcept;
  /// The status of the fence at `point` of syncobj `handle` (0: a binary
  /// syncobj's fence), read through a sync_file export, as an error.
  std::error_code point_error(std::uint32_t handle, std::uint64_t point) noexcept;
  /// A sync_file's status (options.sync_file_status) as an error.
  std::error_code status_error(int sync_file_fd) noexcept;
  void on_syncobj_destroyed(const syncobj_identity& which) noexcept override;
  /// From ~fence_source: fails every pending wait `broken` and ends the polls.
  void abandon_all() noexcept;

  /// Unlinks `r` from the maps. Requires the lock.
  void detach(registration& r) noexcept;
  /// Ends `r`'s poll early (its waiters are gone): an eventfd is made readable,
  /// a sync_file poll is cancelled. Requires the lock.
  void end_poll(registration& r) noexcept;
  /// Starts polling `r`'s fd (or, immediate, posts its completion) and hands
  /// the completion to complete(). Requires the lock.
  void start_poll(const std::shared_ptr<registration>& r);
  /// Makes `r`'s result fence and links `r` into the maps. Requires the lock.
  void publish(const std::shared_ptr<registration>& r, watched_syncobj* target);
  /// The source's duplicate of `s`, made on first use. Requires the lock.
  watched_syncobj& watch(const syncobj& s, const char* operation);

  drm::device device;
  reactor& events;
  asio::any_io_executor executor;  // the reactor's: where completions and host signals run
  fence_source_options options;
  const std::uint64_t timeline_context;

  mutable std::mutex lock;
  std::unordered_map<wait_key, std::shared_ptr<registration>, wait_key_hash> by_key;                // guarded
  std::unordered_map<const cosched::detail::fence_state*, std::shared_ptr<registration>> by_fence;  // guarded
  std::unordered_map<const syncobj_identity*, watched_syncobj> watched;                             // guarded
  std::unordered_map<const cosched::detail::fence_state*, composite> composites;                    // guarded
  std::uint64_t next_seqno = 0;                                                                     // guarded
  // Written under the lock; read without it. relaxed: statistics.
  std::atomic<std::size_t> live{0};
  std::atomic<std::uint64_t> made{0};

  // A binary syncobj to export a timeline point's fence as a sync_file.
  std::mutex scratch_lock;
  std::uint32_t scratch = 0;  // guarded by scratch_lock; created on first use
};

}  // namespace cosched::drm::detail
