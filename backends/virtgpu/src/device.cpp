// Opening and probing a virtio_gpu render node for virgl work.
#include "cosched/virtgpu/device.hpp"

#include <sys/ioctl.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "cosched/drm/syncobj.hpp"
#include "device_state.hpp"
#include "uapi.hpp"

namespace cosched::virtgpu {

namespace detail {

void throw_error(int err, const std::string& operation) {
  throw std::system_error(err, std::generic_category(), "cosched::virtgpu::" + operation);
}

int wait_point(int fd, std::uint32_t handle, std::uint64_t point, std::chrono::nanoseconds timeout) noexcept {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  drm_syncobj_timeline_wait wait{};
  wait.handles = reinterpret_cast<std::uintptr_t>(&handle);
  wait.points = reinterpret_cast<std::uintptr_t>(&point);
  wait.count_handles = 1;
  wait.timeout_nsec = now.tv_sec * 1'000'000'000LL + now.tv_nsec + timeout.count();
  wait.flags = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT;
  int r;
  do {
    r = ::ioctl(fd, DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &wait);
  } while (r < 0 && (errno == EINTR || errno == EAGAIN));
  return r < 0 ? errno : 0;
}

}  // namespace detail

namespace {

int retried_ioctl(int fd, unsigned long request, void* arg) noexcept {
  int r;
  do {
    r = ::ioctl(fd, request, arg);
  } while (r < 0 && (errno == EINTR || errno == EAGAIN));
  return r < 0 ? errno : 0;
}

struct probe_failure {
  int err;
  std::string why;
};

std::optional<std::uint64_t> get_param(int fd, std::uint64_t param) {
  std::uint64_t value = 0;
  uapi::getparam args{};
  args.param = param;
  args.value = reinterpret_cast<std::uintptr_t>(&value);
  if (retried_ioctl(fd, uapi::ioctl_getparam, &args)) return std::nullopt;
  return value;
}

// The longest printable run in the VIRGL2 capset: the host renderer's name.
std::string renderer_name(int fd) {
  std::vector<char> caps(4096);
  uapi::get_caps args{};
  args.cap_set_id = uapi::capset_virgl2;
  args.cap_set_ver = 2;
  args.addr = reinterpret_cast<std::uintptr_t>(caps.data());
  args.size = static_cast<std::uint32_t>(caps.size());
  if (retried_ioctl(fd, uapi::ioctl_get_caps, &args)) return {};
  std::string best;
  for (std::size_t i = 0; i < caps.size();) {
    std::size_t j = i;
    while (j < caps.size() && caps[j] >= 32 && caps[j] < 127) ++j;
    if (j - i > best.size()) best.assign(caps.data() + i, j - i);
    i = j + 1;
  }
  return best.size() >= 6 ? best : std::string{};
}

// One empty submission with an out-syncobj point, waited for.
std::optional<probe_failure> probe_submission(const drm::device& dev) {
  const std::string& where = dev.path();
  auto timeline = drm::timeline_syncobj::create(dev);
  uapi::execbuffer_syncobj out{timeline.handle(), 0, 1};
  uapi::execbuffer args{};
  args.fence_fd = -1;
  args.syncobj_stride = sizeof out;
  args.num_out_syncobjs = 1;
  args.out_syncobjs = reinterpret_cast<std::uintptr_t>(&out);
  if (const int err = retried_ioctl(dev.fd(), uapi::ioctl_execbuffer, &args)) {
    if (err == EINVAL)
      return probe_failure{EOPNOTSUPP, where +
                                           ": DRM_IOCTL_VIRTGPU_EXECBUFFER takes no syncobjs "
                                           "(the kernel is older than Linux 6.4)"};
    if (err == ENOSYS)
      return probe_failure{EOPNOTSUPP, where + ": DRM_IOCTL_VIRTGPU_EXECBUFFER is not available (no 3D)"};
    return probe_failure{err, where + ": the probe submission (DRM_IOCTL_VIRTGPU_EXECBUFFER) failed: " +
                                  std::generic_category().message(err)};
  }
  if (const int err = detail::wait_point(dev.fd(), timeline.handle(), 1, std::chrono::seconds(10)))
    return probe_failure{err, where + ": the probe submission's out-syncobj point did not signal (" +
                                  std::generic_category().message(err) + ")"};
  return std::nullopt;
}

std::optional<probe_failure> probe(detail::device_state& s) {
  const int fd = s.dev.fd();
  const std::string where = s.dev.path();
  if (s.dev.driver() != "virtio_gpu")
    return probe_failure{ENODEV, where + " is driver " + s.dev.driver() + ", not virtio_gpu"};
  const auto features = get_param(fd, uapi::param_3d_features);
  if (!features || *features == 0)
    return probe_failure{EOPNOTSUPP, where +
                                         ": virtio_gpu without 3D features (no virgl: a 2D device such as "
                                         "QEMU's virtio-gpu-pci; virtio-gpu-gl-pci has them)"};
  s.info.capset_ids = get_param(fd, uapi::param_supported_capset_ids).value_or(0);
  if ((s.info.capset_ids & ((1u << uapi::capset_virgl) | (1u << uapi::capset_virgl2))) == 0)
    return probe_failure{EOPNOTSUPP, where + ": no virgl capset (DRM_VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs = " +
                                         std::to_string(s.info.capset_ids) + ")"};
  s.info.context_init = get_param(fd, uapi::param_context_init).value_or(0) != 0;
  s.info.renderer = renderer_name(fd);
  return probe_submission(s.dev);
}

std::shared_ptr<detail::device_state> try_open(const std::string& path,
                                               std::optional<probe_failure>& failure) {
  drm::device dev;
  try {
    dev = drm::device::open(path);
  } catch (const std::system_error& e) {
    constexpr std::string_view prefix = "cosched::drm::device: ";
    std::string why = e.what();
    if (why.compare(0, prefix.size(), prefix) == 0) why.erase(0, prefix.size());
    // std::system_error added ": <strerror>"; ours adds it again.
    const std::string suffix = ": " + e.code().message();
    if (why.size() > suffix.size() && why.compare(why.size() - suffix.size(), suffix.size(), suffix) == 0)
      why.erase(why.size() - suffix.size());
    failure = probe_failure{e.code().value(), why};
    return nullptr;
  }
  auto state = std::make_shared<detail::device_state>(std::move(dev));
  failure = probe(*state);
  return failure ? nullptr : state;
}

}  // namespace

device device::open(const std::string& path) {
  std::optional<probe_failure> failure;
  if (!path.empty()) {
    if (auto state = try_open(path, failure)) return device(std::move(state));
    throw std::system_error(failure->err, std::generic_category(),
                            "cosched::virtgpu::device: " + failure->why);
  }
  const auto nodes = drm::device::render_nodes();
  if (nodes.empty())
    throw std::system_error(ENODEV, std::generic_category(),
                            "cosched::virtgpu::device: no DRM device: no render node /dev/dri/renderD*");
  std::string tried;
  int first_error = 0;
  for (const auto& node : nodes) {
    if (auto state = try_open(node, failure)) return device(std::move(state));
    if (!first_error) first_error = failure->err;
    tried += tried.empty() ? "" : "; ";
    tried += failure->why;
  }
  throw std::system_error(first_error, std::generic_category(),
                          "cosched::virtgpu::device: no virtio_gpu render node with virgl: " + tried);
}

device device::from(drm::device dev) {
  if (!dev) throw std::invalid_argument("cosched::virtgpu::device::from: empty drm::device");
  auto state = std::make_shared<detail::device_state>(std::move(dev));
  if (auto failure = probe(*state))
    throw std::system_error(failure->err, std::generic_category(),
                            "cosched::virtgpu::device: " + failure->why);
  return device(std::move(state));
}

const drm::device& device::drm() const noexcept { return state_->dev; }
int device::fd() const noexcept { return state_->dev.fd(); }
const device_info& device::info() const noexcept { return state_->info; }

std::uint32_t device::new_object_handle() const noexcept {
  // relaxed: only uniqueness matters.
  return state_->next_object.fetch_add(1, std::memory_order_relaxed);
}

int device::ioctl(unsigned long request, void* arg) const noexcept {
  return retried_ioctl(fd(), request, arg);
}

}  // namespace cosched::virtgpu
