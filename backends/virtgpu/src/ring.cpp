// The virtio-gpu driver part: a command's stream as one EXECBUFFER.
#include "cosched/virtgpu/ring.hpp"

#include <stdexcept>

#include "uapi.hpp"

namespace cosched::virtgpu {

driver::driver(device dev) : device_(std::move(dev)) {
  if (!device_) throw std::invalid_argument("cosched::virtgpu::driver: empty device");
}

std::error_code driver::submit(command& cmd, const drm::submission& s) {
  if (!(cmd.get_device() == device_))
    throw std::invalid_argument("cosched::virtgpu::driver::submit: the command was built for another device");
  bo_handles_.clear();
  for (const texture& t : cmd.resources()) bo_handles_.push_back(t.bo_handle());
  const uapi::execbuffer_syncobj out{s.out.handle, 0, s.out.point};
  std::vector<uapi::execbuffer_syncobj> in;
  in.reserve(s.in.size());
  for (const drm::syncobj_point& p : s.in) in.push_back({p.handle, 0, p.point});
  const auto dwords = cmd.dwords();
  uapi::execbuffer args{};
  args.size = static_cast<std::uint32_t>(dwords.size_bytes());
  args.command = reinterpret_cast<std::uintptr_t>(dwords.data());
  args.bo_handles = reinterpret_cast<std::uintptr_t>(bo_handles_.data());
  args.num_bo_handles = static_cast<std::uint32_t>(bo_handles_.size());
  args.fence_fd = -1;
  args.syncobj_stride = sizeof(uapi::execbuffer_syncobj);
  args.num_in_syncobjs = static_cast<std::uint32_t>(in.size());
  args.in_syncobjs = reinterpret_cast<std::uintptr_t>(in.data());
  args.num_out_syncobjs = 1;
  args.out_syncobjs = reinterpret_cast<std::uintptr_t>(&out);
  if (const int err = device_.ioctl(uapi::ioctl_execbuffer, &args)) return {err, std::generic_category()};
  ++submissions_;
  return {};
}

}  // namespace cosched::virtgpu
