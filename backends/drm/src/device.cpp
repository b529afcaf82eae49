// Opening DRM devices and probing them for syncobj, timeline syncobj and EVENTFD;
// the ioctl and error helpers every other part of the backend uses.
#include "cosched/drm/device.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <optional>
#include <system_error>
#include <vector>

#include <spdlog/spdlog.h>

#include "cosched/detail/os_error.hpp"
#include "cosched/log.hpp"
#include "device_state.hpp"
#include "uapi.hpp"

namespace cosched::drm {

namespace detail {

device_state::~device_state() {
  if (owns_fd && fd >= 0) ::close(fd);
}

int device_state::ioctl(unsigned long request, void* arg) const noexcept {
  int rc;
  do {
    rc = ::ioctl(fd, request, arg);
  } while (rc == -1 && (errno == EINTR || errno == EAGAIN));
  return rc == -1 ? errno : 0;
}

void device_state::destroy_syncobj(std::uint32_t handle) const noexcept {
  if (handle == 0) return;
  drm_syncobj_destroy args{};
  args.handle = handle;
  if (const int err = ioctl(DRM_IOCTL_SYNCOBJ_DESTROY, &args))
    cosched::logger()->warn("cosched::drm: destroying syncobj {} on {}: {}", handle, path,
                            std::generic_category().message(err));
}

std::string fd_limit_note(int err) { return cosched::detail::fd_limit_note(err); }

std::string describe_error(int err, std::string_view operation) {
  std::string what = "cosched::drm::";
  what += operation;
  if (const auto note = fd_limit_note(err); !note.empty()) what += ": " + note;
  return what;
}

void throw_error(int err, std::string_view operation) {
  throw std::system_error(err, std::generic_category(), describe_error(err, operation));
}

std::uint32_t create_syncobj(const device_state& device, bool signalled, std::string_view operation) {
  drm_syncobj_create args{};
  args.flags = signalled ? DRM_SYNCOBJ_CREATE_SIGNALED : 0;
  if (const int err = device.ioctl(DRM_IOCTL_SYNCOBJ_CREATE, &args)) throw_error(err, operation);
  return args.handle;
}

bool names_no_syncobj(const device_state& device, std::uint32_t handle) noexcept {
  std::uint64_t point = 0;
  drm_syncobj_timeline_array args{};
  args.handles = reinterpret_cast<std::uintptr_t>(&handle);
  args.points = reinterpret_cast<std::uintptr_t>(&point);
  args.count_handles = 1;
  return device.ioctl(DRM_IOCTL_SYNCOBJ_QUERY, &args) == ENOENT;
}

int export_syncobj_fd(const device_state& device, std::uint32_t handle) noexcept {
  drm_syncobj_handle args{};
  args.handle = handle;
  args.fd = -1;
  int err = device.ioctl(DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, &args);
  // The kernel's HANDLE_TO_FD says EINVAL both for a malformed request and for
  // a handle that names no syncobj; the other syncobj ioctls say ENOENT for the
  // latter, and so does cosched.
  if (err == EINVAL && names_no_syncobj(device, handle)) err = ENOENT;
  return err ? -err : args.fd;
}

std::uint32_t duplicate_syncobj(const device_state& from, std::uint32_t handle, const device_state& into,
                                std::string_view operation) {
  const int exported = export_syncobj_fd(from, handle);
  if (exported < 0) throw_error(-exported, operation);
  drm_syncobj_handle imported{};
  imported.fd = exported;
  const int err = into.ioctl(DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, &imported);
  ::close(exported);
  if (err) throw_error(err, operation);
  return imported.handle;
}

int export_sync_file(const device_state& device, std::uint32_t handle) noexcept {
  drm_syncobj_handle args{};
  args.handle = handle;
  args.flags = DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE;
  args.fd = -1;
  if (const int err = device.ioctl(DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, &args)) return -err;
  return args.fd;
}

int transfer(const device_state& device, std::uint32_t src, std::uint64_t src_point, std::uint32_t dst,
             std::uint64_t dst_point) noexcept {
  drm_syncobj_transfer args{};
  args.src_handle = src;
  args.dst_handle = dst;
  args.src_point = src_point;
  args.dst_point = dst_point;
  return device.ioctl(DRM_IOCTL_SYNCOBJ_TRANSFER, &args);
}

}  // namespace detail

namespace {

struct probe_failure {
  int err;
  std::string why;  // what is missing, without the operation prefix
};

std::string kernel_release() {
  utsname name{};
  if (::uname(&name) != 0) return "?";
  return name.release;
}

std::string describe(const detail::device_state& s) {
  return s.driver.empty() ? s.path : s.path + " (" + s.driver + ")";
}

// Checks that `s` is a DRM device with everything the backend needs.
std::optional<probe_failure> probe(detail::device_state& s) {
  char name[64] = {};
  drm_version version{};
  version.name = name;
  version.name_len = sizeof name - 1;
  if (const int err = s.ioctl(DRM_IOCTL_VERSION, &version))
    return probe_failure{err, s.path + " is not a DRM device (DRM_IOCTL_VERSION failed)"};
  s.driver.assign(name, std::min<std::size_t>(version.name_len, sizeof name - 1));

  drm_get_cap cap{};
  cap.capability = DRM_CAP_SYNCOBJ;
  if (s.ioctl(DRM_IOCTL_GET_CAP, &cap) != 0 || cap.value == 0)
    return probe_failure{EOPNOTSUPP, describe(s) + ": no DRM syncobj support (DRM_CAP_SYNCOBJ = 0)"};
  cap = {};
  cap.capability = DRM_CAP_SYNCOBJ_TIMELINE;
  if (s.ioctl(DRM_IOCTL_GET_CAP, &cap) != 0 || cap.value == 0)
    return probe_failure{EOPNOTSUPP,
                         describe(s) + ": no timeline syncobj support (DRM_CAP_SYNCOBJ_TIMELINE = 0)"};

  // EVENTFD: a real registration on a scratch syncobj that is already
  // signalled, so the registration fires at once and nothing is left behind.
  drm_syncobj_create scratch{};
  scratch.flags = DRM_SYNCOBJ_CREATE_SIGNALED;
  if (const int err = s.ioctl(DRM_IOCTL_SYNCOBJ_CREATE, &scratch))
    return probe_failure{
        err, describe(s) + ": creating a syncobj failed: " + std::generic_category().message(err)};
  const int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) {
    const int err = errno;
    s.destroy_syncobj(scratch.handle);
    throw std::system_error(err, std::generic_category(),
                            detail::describe_error(err, "device: probing " + s.path + " (eventfd)"));
  }
  uapi::syncobj_eventfd registration{};
  registration.handle = scratch.handle;
  registration.fd = efd;
  const int err = s.ioctl(uapi::ioctl_syncobj_eventfd, &registration);
  ::close(efd);
  s.destroy_syncobj(scratch.handle);
  if (err == ENOTTY || err == EINVAL)
    return probe_failure{EOPNOTSUPP, describe(s) + ": DRM_IOCTL_SYNCOBJ_EVENTFD is not supported: kernel " +
                                         kernel_release() + " is older than 6.6"};
  if (err)
    return probe_failure{
        err, describe(s) + ": DRM_IOCTL_SYNCOBJ_EVENTFD failed: " + std::generic_category().message(err)};
  return std::nullopt;
}

std::shared_ptr<detail::device_state> try_open(const std::string& path,
                                               std::optional<probe_failure>& failure) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    const std::string note = detail::fd_limit_note(err);
    failure = probe_failure{err, err == ENOENT ? "no DRM device at " + path
                                 : note.empty()
                                     ? "cannot open " + path + ": " + std::generic_category().message(err)
                                     : "cannot open " + path + ": " + note};
    return nullptr;
  }
  auto state = std::make_shared<detail::device_state>(fd, true, path);
  failure = probe(*state);
  return failure ? nullptr : state;
}

}  // namespace

device device::open(const std::string& path) {
  std::optional<probe_failure> failure;
  auto state = try_open(path, failure);
  if (!state)
    throw std::system_error(failure->err, std::generic_category(), "cosched::drm::device: " + failure->why);
  return device(std::move(state));
}

std::vector<std::string> device::render_nodes() {
  std::vector<std::pair<unsigned long, std::string>> numbered;
  std::error_code ignored;  // no /dev/dri: no nodes
  for (const auto& entry : std::filesystem::directory_iterator("/dev/dri", ignored)) {
    const std::string name = entry.path().filename().string();
    constexpr std::string_view prefix = "renderD";
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.find_first_not_of("0123456789") != std::string::npos) continue;
    numbered.emplace_back(std::stoul(digits), entry.path().string());
  }
  std::sort(numbered.begin(), numbered.end());
  std::vector<std::string> nodes;
  nodes.reserve(numbered.size());
  for (auto& n : numbered) nodes.push_back(std::move(n.second));
  return nodes;
}

device device::open() {
  const auto nodes = render_nodes();
  if (nodes.empty())
    throw std::system_error(ENODEV, std::generic_category(),
                            "cosched::drm::device: no DRM device: no render node /dev/dri/renderD*");
  std::string tried;
  int first_error = 0;
  for (const auto& node : nodes) {
    std::optional<probe_failure> failure;
    if (auto state = try_open(node, failure)) return device(std::move(state));
    if (!first_error) first_error = failure->err;
    tried += tried.empty() ? "" : "; ";
    tried += failure->why;
  }
  throw std::system_error(first_error, std::generic_category(),
                          "cosched::drm::device: no usable DRM render node: " + tried);
}

device device::from_fd(int fd, fd_ownership ownership) {
  auto state = std::make_shared<detail::device_state>(fd, ownership == fd_ownership::adopt,
                                                      "fd " + std::to_string(fd));
  if (auto failure = probe(*state))
    throw std::system_error(failure->err, std::generic_category(), "cosched::drm::device: " + failure->why);
  return device(std::move(state));
}

int device::fd() const noexcept { return state_->fd; }
const std::string& device::path() const noexcept { return state_->path; }
const std::string& device::driver() const noexcept { return state_->driver; }

}  // namespace cosched::drm
