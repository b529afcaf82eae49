// Texture resources: creation, the guest backing's mapping, transfers.
#include "cosched/virtgpu/texture.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>

#include <spdlog/spdlog.h>

#include "cosched/log.hpp"
#include "device_state.hpp"
#include "uapi.hpp"

namespace cosched::virtgpu {

namespace detail {

struct texture_state {
  texture_state(virtgpu::device d, std::uint32_t w, std::uint32_t h) noexcept
      : dev(std::move(d)), width(w), height(h) {}
  texture_state(const texture_state&) = delete;
  texture_state& operator=(const texture_state&) = delete;
  ~texture_state() {
    if (mapping) ::munmap(mapping, bytes());
    drm_gem_close args{};
    args.handle = bo;
    if (const int err = dev.ioctl(DRM_IOCTL_GEM_CLOSE, &args))
      logger()->warn("cosched::virtgpu::texture: DRM_IOCTL_GEM_CLOSE of handle {}: {}", bo,
                     std::generic_category().message(err));
  }

  std::size_t bytes() const noexcept { return std::size_t{width} * height * 4; }

  // The guest backing, mapped on first use.
  std::uint32_t* mapped() {
    std::lock_guard guard(map_lock);
    if (mapping) return static_cast<std::uint32_t*>(mapping);
    uapi::map args{};
    args.handle = bo;
    if (const int err = dev.ioctl(uapi::ioctl_map, &args))
      throw_error(err, "texture (DRM_IOCTL_VIRTGPU_MAP)");
    void* p = ::mmap(nullptr, bytes(), PROT_READ | PROT_WRITE, MAP_SHARED, dev.fd(),
                     static_cast<off_t>(args.offset));
    if (p == MAP_FAILED) throw_error(errno, "texture (mmap of its guest backing)");
    mapping = p;
    return static_cast<std::uint32_t*>(p);
  }

  void wait_idle(const char* operation) const {
    uapi::wait args{};
    args.handle = bo;
    if (const int err = dev.ioctl(uapi::ioctl_wait, &args))
      throw_error(err, std::string("texture::") + operation + " (DRM_IOCTL_VIRTGPU_WAIT)");
  }

  void transfer(unsigned long request, const char* operation) const {
    uapi::transfer args{};
    args.bo_handle = bo;
    args.region = {0, 0, 0, width, height, 1};
    if (const int err = dev.ioctl(request, &args)) throw_error(err, std::string("texture::") + operation);
  }

  virtgpu::device dev;
  const std::uint32_t width;
  const std::uint32_t height;
  std::uint32_t bo = 0;
  std::uint32_t resource = 0;
  bool guest = false;
  std::mutex map_lock;
  void* mapping = nullptr;  // guarded by map_lock
};

}  // namespace detail

texture texture::create(const device& dev, std::uint32_t width, std::uint32_t height, backing b) {
  // llvmpipe's and most GPUs' 2D limit; the guest backing's size is a u32.
  constexpr std::uint32_t max_side = 16384;
  if (width == 0 || height == 0 || width > max_side || height > max_side)
    throw std::invalid_argument("cosched::virtgpu::texture::create: " + std::to_string(width) + "x" +
                                std::to_string(height) + " is not a texture size (1 to 16384 on each side)");
  if (b == backing::guest && std::uint64_t{width} * height * 4 > 0xffffffffULL)
    throw std::invalid_argument("cosched::virtgpu::texture::create: " + std::to_string(width) + "x" +
                                std::to_string(height) + " is too large for guest backing (4 GiB)");
  uapi::resource_create args{};
  args.target = uapi::target_texture_2d;
  args.format = uapi::format_b8g8r8a8_unorm;
  args.bind = uapi::bind_render_target | uapi::bind_sampler_view;
  args.width = width;
  args.height = height;
  args.depth = 1;
  args.array_size = 1;
  args.size = b == backing::guest ? width * height * 4 : 0;
  args.stride = width * 4;
  if (const int err = dev.ioctl(uapi::ioctl_resource_create, &args))
    detail::throw_error(err, "texture::create (DRM_IOCTL_VIRTGPU_RESOURCE_CREATE " + std::to_string(width) +
                                 "x" + std::to_string(height) + ")");
  // From here the state owns the handle (and closes it if anything throws).
  auto state = std::make_shared<detail::texture_state>(dev, width, height);
  state->bo = args.bo_handle;
  state->resource = args.res_handle;
  state->guest = b == backing::guest;
  return texture(std::move(state));
}

std::uint32_t texture::width() const noexcept { return state_->width; }
std::uint32_t texture::height() const noexcept { return state_->height; }
std::uint32_t texture::resource_handle() const noexcept { return state_->resource; }
std::uint32_t texture::bo_handle() const noexcept { return state_->bo; }
bool texture::has_guest_backing() const noexcept { return state_->guest; }
const virtgpu::device& texture::get_device() const noexcept { return state_->dev; }

void texture::upload(std::span<const std::uint32_t> texels) {
  auto& s = *state_;
  if (!s.guest)
    throw std::logic_error("cosched::virtgpu::texture::upload: a host_only texture has no guest backing");
  if (texels.size() != std::size_t{s.width} * s.height)
    throw std::invalid_argument("cosched::virtgpu::texture::upload: " + std::to_string(texels.size()) +
                                " texels for a " + std::to_string(s.width) + "x" + std::to_string(s.height) +
                                " texture");
  s.wait_idle("upload");
  std::memcpy(s.mapped(), texels.data(), s.bytes());
  s.transfer(uapi::ioctl_transfer_to_host, "upload (DRM_IOCTL_VIRTGPU_TRANSFER_TO_HOST)");
}

std::vector<std::uint32_t> texture::read() const {
  auto& s = *state_;
  if (!s.guest)
    throw std::logic_error("cosched::virtgpu::texture::read: a host_only texture has no guest backing");
  s.transfer(uapi::ioctl_transfer_from_host, "read (DRM_IOCTL_VIRTGPU_TRANSFER_FROM_HOST)");
  s.wait_idle("read");
  const std::uint32_t* p = s.mapped();
  return std::vector<std::uint32_t>(p, p + std::size_t{s.width} * s.height);
}

}  // namespace cosched::virtgpu
