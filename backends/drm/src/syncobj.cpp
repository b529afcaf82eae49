// Syncobj operations: each one ioctl (or a few, through a temporary binary
// syncobj), its errno turned into a std::system_error naming the operation.
#include "cosched/drm/syncobj.hpp"

#include <cerrno>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "device_state.hpp"
#include "syncobj_identity.hpp"
#include "uapi.hpp"

namespace cosched::drm {

namespace {

std::uint64_t as_user_pointer(const void* p) noexcept { return reinterpret_cast<std::uintptr_t>(p); }

// A binary syncobj that lives for one operation (to move a point's fence).
class temporary_syncobj {
 public:
  temporary_syncobj(const detail::device_state& device, const char* operation)
      : device_(device), handle_(detail::create_syncobj(device, false, operation)) {}
  temporary_syncobj(const temporary_syncobj&) = delete;
  temporary_syncobj& operator=(const temporary_syncobj&) = delete;
  ~temporary_syncobj() { device_.destroy_syncobj(handle_); }
  std::uint32_t handle() const noexcept { return handle_; }

 private:
  const detail::device_state& device_;
  std::uint32_t handle_;
};

// A wait with timeout 0: whether `point` (0: the binary fence) has signalled.
bool signalled_now(const detail::device_state& device, std::uint32_t handle, std::uint64_t point,
                   const char* operation) {
  uapi::syncobj_timeline_wait args{};
  args.handles = as_user_pointer(&handle);
  args.points = as_user_pointer(&point);
  args.count_handles = 1;
  args.timeout_nsec = 0;  // absolute: already past
  // WAIT_FOR_SUBMIT: a point without a fence is "not yet" (ETIME), not EINVAL.
  args.flags = uapi::wait_flag_for_submit;
  const int err = device.ioctl(uapi::ioctl_syncobj_timeline_wait, &args);
  if (err == 0) return true;
  if (err == ETIME) return false;
  detail::throw_error(err, operation);
}

}  // namespace

// ------------------------------------------------------------------ syncobj

syncobj::syncobj() noexcept = default;

syncobj::syncobj(drm::device dev, std::uint32_t handle, bool owns)
    : device_(std::move(dev)),
      handle_(handle),
      owns_(owns),
      identity_(std::make_shared<detail::syncobj_identity>()) {}

syncobj::syncobj(syncobj&& other) noexcept
    : device_(std::move(other.device_)),
      handle_(std::exchange(other.handle_, 0)),
      owns_(std::exchange(other.owns_, false)),
      identity_(std::move(other.identity_)) {}

syncobj& syncobj::operator=(syncobj&& other) noexcept {
  if (this != &other) {
    destroy();
    device_ = std::move(other.device_);
    handle_ = std::exchange(other.handle_, 0);
    owns_ = std::exchange(other.owns_, false);
    identity_ = std::move(other.identity_);
  }
  return *this;
}

syncobj::~syncobj() { destroy(); }

void syncobj::destroy() noexcept {
  if (handle_ == 0) return;
  // Waiters fail `broken` before the handle goes: a fence source never looks
  // at a syncobj its owner has destroyed.
  if (owns_ && identity_) identity_->notify_destroyed();
  if (owns_) device_.state()->destroy_syncobj(handle_);
  handle_ = 0;
  owns_ = false;
  identity_.reset();
}

unique_fd syncobj::export_fd() const {
  require_valid("syncobj::export_fd");
  const int fd = detail::export_syncobj_fd(*device_.state(), handle_);
  if (fd < 0) detail::throw_error(-fd, "syncobj::export_fd (DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD)");
  return unique_fd(fd);
}

void syncobj::require_valid(const char* operation) const {
  if (!valid()) throw std::logic_error(std::string("cosched::drm::") + operation + ": empty syncobj");
}

void syncobj::require_same_device(const syncobj& other, const char* operation) const {
  other.require_valid(operation);
  if (!(other.device_ == device_) && other.device_.fd() != device_.fd())
    throw std::invalid_argument(
        std::string("cosched::drm::") + operation +
        ": the syncobjs are on different DRM fds (export_fd/import_fd one of them first)");
}

std::uint32_t syncobj::create_handle(const drm::device& dev, bool signalled, const char* operation) {
  if (!dev) throw std::invalid_argument(std::string("cosched::drm::") + operation + ": empty device");
  return detail::create_syncobj(*dev.state(), signalled, operation);
}

std::uint32_t syncobj::import_handle(const drm::device& dev, int syncobj_fd, const char* operation) {
  if (!dev) throw std::invalid_argument(std::string("cosched::drm::") + operation + ": empty device");
  drm_syncobj_handle args{};
  args.fd = syncobj_fd;
  if (const int err = dev.state()->ioctl(DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, &args))
    detail::throw_error(err, operation);
  return args.handle;
}

// ------------------------------------------------------------------ binary

binary_syncobj binary_syncobj::create(const drm::device& dev, bool signalled) {
  return binary_syncobj(
      dev, create_handle(dev, signalled, "binary_syncobj::create (DRM_IOCTL_SYNCOBJ_CREATE)"), true);
}

binary_syncobj binary_syncobj::import_fd(const drm::device& dev, int syncobj_fd) {
  return binary_syncobj(
      dev, import_handle(dev, syncobj_fd, "binary_syncobj::import_fd (DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE)"),
      true);
}

binary_syncobj binary_syncobj::from_sync_file(const drm::device& dev, int sync_file_fd) {
  auto result = create(dev);
  result.import_sync_file(sync_file_fd);
  return result;
}

binary_syncobj binary_syncobj::adopt(const drm::device& dev, std::uint32_t handle) {
  return binary_syncobj(dev, handle, true);
}

binary_syncobj binary_syncobj::borrow(const drm::device& dev, std::uint32_t handle) {
  return binary_syncobj(dev, handle, false);
}

void binary_syncobj::signal() {
  require_valid("binary_syncobj::signal");
  std::uint32_t h = handle();
  drm_syncobj_array args{};
  args.handles = as_user_pointer(&h);
  args.count_handles = 1;
  if (const int err = get_device().state()->ioctl(DRM_IOCTL_SYNCOBJ_SIGNAL, &args))
    detail::throw_error(err, "binary_syncobj::signal (DRM_IOCTL_SYNCOBJ_SIGNAL)");
}

void binary_syncobj::reset() {
  require_valid("binary_syncobj::reset");
  std::uint32_t h = handle();
  drm_syncobj_array args{};
  args.handles = as_user_pointer(&h);
  args.count_handles = 1;
  if (const int err = get_device().state()->ioctl(DRM_IOCTL_SYNCOBJ_RESET, &args))
    detail::throw_error(err, "binary_syncobj::reset (DRM_IOCTL_SYNCOBJ_RESET)");
}

bool binary_syncobj::is_signalled() const {
  require_valid("binary_syncobj::is_signalled");
  return signalled_now(*get_device().state(), handle(), 0,
                       "binary_syncobj::is_signalled (DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT)");
}

unique_fd binary_syncobj::export_sync_file() const {
  require_valid("binary_syncobj::export_sync_file");
  const int fd = detail::export_sync_file(*get_device().state(), handle());
  if (fd < 0) detail::throw_error(-fd, "binary_syncobj::export_sync_file (DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD)");
  return unique_fd(fd);
}

void binary_syncobj::import_sync_file(int sync_file_fd) {
  require_valid("binary_syncobj::import_sync_file");
  drm_syncobj_handle args{};
  args.handle = handle();
  args.flags = DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE;
  args.fd = sync_file_fd;
  if (const int err = get_device().state()->ioctl(DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, &args))
    detail::throw_error(err, "binary_syncobj::import_sync_file (DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE)");
}

void binary_syncobj::transfer_from(const binary_syncobj& src) {
  require_valid("binary_syncobj::transfer_from");
  require_same_device(src, "binary_syncobj::transfer_from");
  if (const int err = detail::transfer(*get_device().state(), src.handle(), 0, handle(), 0))
    detail::throw_error(err, "binary_syncobj::transfer_from (DRM_IOCTL_SYNCOBJ_TRANSFER)");
}

void binary_syncobj::transfer_from(const timeline_syncobj& src, std::uint64_t src_point) {
  require_valid("binary_syncobj::transfer_from");
  require_same_device(src, "binary_syncobj::transfer_from");
  if (const int err = detail::transfer(*get_device().state(), src.handle(), src_point, handle(), 0))
    detail::throw_error(err, "binary_syncobj::transfer_from (DRM_IOCTL_SYNCOBJ_TRANSFER, point " +
                                 std::to_string(src_point) + ")");
}

// ------------------------------------------------------------------ timeline

timeline_syncobj timeline_syncobj::create(const drm::device& dev, bool signalled) {
  return timeline_syncobj(
      dev, create_handle(dev, signalled, "timeline_syncobj::create (DRM_IOCTL_SYNCOBJ_CREATE)"), true);
}

timeline_syncobj timeline_syncobj::import_fd(const drm::device& dev, int syncobj_fd) {
  return timeline_syncobj(
      dev, import_handle(dev, syncobj_fd, "timeline_syncobj::import_fd (DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE)"),
      true);
}

timeline_syncobj timeline_syncobj::adopt(const drm::device& dev, std::uint32_t handle) {
  return timeline_syncobj(dev, handle, true);
}

timeline_syncobj timeline_syncobj::borrow(const drm::device& dev, std::uint32_t handle) {
  return timeline_syncobj(dev, handle, false);
}

void timeline_syncobj::signal(std::uint64_t point) {
  require_valid("timeline_syncobj::signal");
  std::uint32_t h = handle();
  drm_syncobj_timeline_array args{};
  args.handles = as_user_pointer(&h);
  args.points = as_user_pointer(&point);
  args.count_handles = 1;
  if (const int err = get_device().state()->ioctl(DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL, &args))
    detail::throw_error(err, "timeline_syncobj::signal (DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL, point " +
                                 std::to_string(point) + ")");
}

namespace {
std::uint64_t query_point(const syncobj& s, std::uint32_t flags, const char* operation) {
  std::uint32_t h = s.handle();
  std::uint64_t point = 0;
  drm_syncobj_timeline_array args{};
  args.handles = as_user_pointer(&h);
  args.points = as_user_pointer(&point);
  args.count_handles = 1;
  args.flags = flags;
  if (const int err = s.get_device().state()->ioctl(DRM_IOCTL_SYNCOBJ_QUERY, &args))
    detail::throw_error(err, operation);
  return point;
}
}  // namespace

std::uint64_t timeline_syncobj::query() const {
  require_valid("timeline_syncobj::query");
  return query_point(*this, 0, "timeline_syncobj::query (DRM_IOCTL_SYNCOBJ_QUERY)");
}

std::uint64_t timeline_syncobj::query_submitted() const {
  require_valid("timeline_syncobj::query_submitted");
  return query_point(*this, DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED,
                     "timeline_syncobj::query_submitted (DRM_IOCTL_SYNCOBJ_QUERY)");
}

bool timeline_syncobj::is_signalled(std::uint64_t point) const {
  require_valid("timeline_syncobj::is_signalled");
  return signalled_now(*get_device().state(), handle(), point,
                       "timeline_syncobj::is_signalled (DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT)");
}

void timeline_syncobj::reset() {
  require_valid("timeline_syncobj::reset");
  std::uint32_t h = handle();
  drm_syncobj_array args{};
  args.handles = as_user_pointer(&h);
  args.count_handles = 1;
  if (const int err = get_device().state()->ioctl(DRM_IOCTL_SYNCOBJ_RESET, &args))
    detail::throw_error(err, "timeline_syncobj::reset (DRM_IOCTL_SYNCOBJ_RESET)");
}

unique_fd timeline_syncobj::export_sync_file(std::uint64_t point) const {
  require_valid("timeline_syncobj::export_sync_file");
  const auto& device = *get_device().state();
  const temporary_syncobj carrier(device, "timeline_syncobj::export_sync_file (DRM_IOCTL_SYNCOBJ_CREATE)");
  if (const int err = detail::transfer(device, handle(), point, carrier.handle(), 0))
    detail::throw_error(err, "timeline_syncobj::export_sync_file (DRM_IOCTL_SYNCOBJ_TRANSFER, point " +
                                 std::to_string(point) + ")");
  const int fd = detail::export_sync_file(device, carrier.handle());
  if (fd < 0) detail::throw_error(-fd, "timeline_syncobj::export_sync_file (DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD)");
  return unique_fd(fd);
}

void timeline_syncobj::import_sync_file(int sync_file_fd, std::uint64_t point) {
  require_valid("timeline_syncobj::import_sync_file");
  const auto& device = *get_device().state();
  const temporary_syncobj carrier(device, "timeline_syncobj::import_sync_file (DRM_IOCTL_SYNCOBJ_CREATE)");
  drm_syncobj_handle args{};
  args.handle = carrier.handle();
  args.flags = DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE;
  args.fd = sync_file_fd;
  if (const int err = device.ioctl(DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, &args))
    detail::throw_error(err, "timeline_syncobj::import_sync_file (DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE)");
  if (const int err = detail::transfer(device, carrier.handle(), 0, handle(), point))
    detail::throw_error(err, "timeline_syncobj::import_sync_file (DRM_IOCTL_SYNCOBJ_TRANSFER, point " +
                                 std::to_string(point) + ")");
}

void timeline_syncobj::transfer_from(const timeline_syncobj& src, std::uint64_t src_point,
                                     std::uint64_t dst_point) {
  require_valid("timeline_syncobj::transfer_from");
  require_same_device(src, "timeline_syncobj::transfer_from");
  if (const int err = detail::transfer(*get_device().state(), src.handle(), src_point, handle(), dst_point))
    detail::throw_error(err, "timeline_syncobj::transfer_from (DRM_IOCTL_SYNCOBJ_TRANSFER, point " +
                                 std::to_string(src_point) + " to " + std::to_string(dst_point) + ")");
}

void timeline_syncobj::transfer_from(const binary_syncobj& src, std::uint64_t dst_point) {
  require_valid("timeline_syncobj::transfer_from");
  require_same_device(src, "timeline_syncobj::transfer_from");
  if (const int err = detail::transfer(*get_device().state(), src.handle(), 0, handle(), dst_point))
    detail::throw_error(err, "timeline_syncobj::transfer_from (DRM_IOCTL_SYNCOBJ_TRANSFER, binary to point " +
                                 std::to_string(dst_point) + ")");
}

}  // namespace cosched::drm
