// DRM syncobjs as RAII objects: binary syncobjs (one fence) and timeline
// syncobjs (a 64-bit sequence of points), with every operation of the kernel's uAPI.
#pragma once

#include <cstdint>
#include <memory>

#include "cosched/drm/device.hpp"
#include "cosched/drm/unique_fd.hpp"

namespace cosched::drm {

namespace detail {
struct syncobj_identity;
}

class binary_syncobj;
class timeline_syncobj;

/// What binary and timeline syncobjs share: a handle on a device, and whether
/// destroying the object destroys the handle.
///
/// Errors of every operation are std::system_error with the kernel's errno and
/// a message naming the operation ("cosched::drm::timeline_syncobj::signal: ...").
/// A handle that names no syncobj is ENOENT for every operation, as the kernel
/// says for all but DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD (EINVAL there; export_fd()
/// and the fence source's duplication of a handle check and say ENOENT too).
///
/// @par Thread Safety
/// Distinct objects: Safe. Shared objects: Safe for const members and for the
/// operations (the kernel serialises them); move-assignment and destruction are Unsafe.
///
/// @par Ownership
/// Move-only. An owning object destroys its handle when destroyed (or assigned
/// to); a borrowing one (borrow()) never does: its caller owns the handle.
/// Destroying an owning syncobj fails the pending cosched waits on it
/// (drm::fence_source) with errc::broken, even if other handles or fds keep the
/// kernel object alive.
///
/// @par Lifetime
/// Nothing needs to outlive a syncobj: it keeps its device open. A borrowed
/// handle must stay valid while the borrowing object is used.
class syncobj {
 public:
  syncobj(const syncobj&) = delete;
  syncobj& operator=(const syncobj&) = delete;
  ~syncobj();

  bool valid() const noexcept { return handle_ != 0; }
  explicit operator bool() const noexcept { return valid(); }

  /// The handle on get_device()'s fd; 0 when not valid().
  std::uint32_t handle() const noexcept { return handle_; }
  const drm::device& get_device() const noexcept { return device_; }
  /// Whether destroying this object destroys the handle.
  bool owns_handle() const noexcept { return owns_; }

  /// Exports the syncobj as a syncobj fd (DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD): another
  /// process or device imports it with import_fd() and shares the same syncobj.
  unique_fd export_fd() const;

  /// Internal: identifies this object to the fence sources that wait on it.
  const std::shared_ptr<detail::syncobj_identity>& identity() const noexcept { return identity_; }

 protected:
  syncobj() noexcept;
  syncobj(drm::device dev, std::uint32_t handle, bool owns);
  syncobj(syncobj&& other) noexcept;
  syncobj& operator=(syncobj&& other) noexcept;

  /// Throws std::logic_error unless valid().
  void require_valid(const char* operation) const;
  /// Throws std::invalid_argument unless `other` is on the same device fd.
  void require_same_device(const syncobj& other, const char* operation) const;

  static std::uint32_t create_handle(const drm::device& dev, bool signalled, const char* operation);
  static std::uint32_t import_handle(const drm::device& dev, int syncobj_fd, const char* operation);

 private:
  void destroy() noexcept;

  drm::device device_;
  std::uint32_t handle_ = 0;
  bool owns_ = false;
  std::shared_ptr<detail::syncobj_identity> identity_;
};

/// A binary syncobj: holds at most one fence; signal() gives it a signalled
/// one, reset() removes it. A wait on it (drm::fence_source::wait) waits for the
/// fence it holds at the moment of the wait, or, when it holds none, for the
/// first one it gets after that moment.
///
/// Thread safety, ownership and lifetime: see syncobj.
class binary_syncobj : public syncobj {
 public:
  /// An empty object (not valid()).
  binary_syncobj() noexcept = default;

  /// A new syncobj, without a fence or already signalled.
  static binary_syncobj create(const drm::device& dev, bool signalled = false);
  /// A new handle to the syncobj behind `syncobj_fd` (the fd stays the caller's).
  static binary_syncobj import_fd(const drm::device& dev, int syncobj_fd);
  /// A new syncobj holding the fence of `sync_file_fd` (the fd stays the caller's).
  static binary_syncobj from_sync_file(const drm::device& dev, int sync_file_fd);
  /// Takes ownership of `handle` (on dev's fd).
  static binary_syncobj adopt(const drm::device& dev, std::uint32_t handle);
  /// Uses `handle` (on dev's fd) without owning it.
  static binary_syncobj borrow(const drm::device& dev, std::uint32_t handle);

  /// Replaces the fence with a signalled one (DRM_IOCTL_SYNCOBJ_SIGNAL).
  void signal();
  /// Removes the fence (DRM_IOCTL_SYNCOBJ_RESET).
  void reset();
  /// Whether it has a fence and that fence signalled (a wait with timeout 0).
  bool is_signalled() const;

  /// The fence as a sync_file fd. EINVAL when there is no fence.
  unique_fd export_sync_file() const;
  /// Replaces the fence with the one of `sync_file_fd` (the fd stays the caller's).
  void import_sync_file(int sync_file_fd);

  /// Replaces the fence with `src`'s (DRM_IOCTL_SYNCOBJ_TRANSFER); same device.
  void transfer_from(const binary_syncobj& src);
  /// Replaces the fence with the one of `src`'s `src_point`; same device.
  /// EINVAL when that point has no fence yet.
  void transfer_from(const timeline_syncobj& src, std::uint64_t src_point);

 private:
  using syncobj::syncobj;
};

/// A timeline syncobj: a sequence of points (64-bit, increasing); signalling a
/// point signals every earlier one too. Point 0 is the initial state.
///
/// Thread safety, ownership and lifetime: see syncobj.
class timeline_syncobj : public syncobj {
 public:
  /// An empty object (not valid()).
  timeline_syncobj() noexcept = default;

  /// A new syncobj; `signalled`: its initial point 0 is signalled.
  static timeline_syncobj create(const drm::device& dev, bool signalled = false);
  /// A new handle to the syncobj behind `syncobj_fd` (the fd stays the caller's).
  static timeline_syncobj import_fd(const drm::device& dev, int syncobj_fd);
  /// Takes ownership of `handle` (on dev's fd).
  static timeline_syncobj adopt(const drm::device& dev, std::uint32_t handle);
  /// Uses `handle` (on dev's fd) without owning it.
  static timeline_syncobj borrow(const drm::device& dev, std::uint32_t handle);

  /// Signals `point` (DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL).
  void signal(std::uint64_t point);
  /// The last signalled point (DRM_IOCTL_SYNCOBJ_QUERY).
  std::uint64_t query() const;
  /// The last point that has a fence, signalled or not (QUERY_FLAGS_LAST_SUBMITTED).
  std::uint64_t query_submitted() const;
  /// Whether `point` has a fence and it signalled (a wait with timeout 0).
  bool is_signalled(std::uint64_t point) const;
  /// Removes every fence: the timeline starts again (DRM_IOCTL_SYNCOBJ_RESET).
  void reset();

  /// The fence of `point` as a sync_file fd (transferred through a temporary
  /// binary syncobj). EINVAL when the point has no fence yet.
  unique_fd export_sync_file(std::uint64_t point) const;
  /// Makes the fence of `sync_file_fd` the fence of `point` (the fd stays the caller's).
  void import_sync_file(int sync_file_fd, std::uint64_t point);

  /// Makes the fence of `src`'s `src_point` the fence of `dst_point`; same device.
  void transfer_from(const timeline_syncobj& src, std::uint64_t src_point, std::uint64_t dst_point);
  /// Makes `src`'s fence the fence of `dst_point`; same device. EINVAL when
  /// `src` has no fence.
  void transfer_from(const binary_syncobj& src, std::uint64_t dst_point);

 private:
  using syncobj::syncobj;
};

}  // namespace cosched::drm
