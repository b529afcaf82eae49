// 2D texture resources of a virtio-gpu device: created on the host, listed by
// the commands that use them, uploaded and read back through their guest backing.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "cosched/virtgpu/device.hpp"

namespace cosched::virtgpu {

namespace detail {
struct texture_state;
}

/// A rectangle of texels.
struct region {
  std::uint32_t x = 0;
  std::uint32_t y = 0;
  std::uint32_t width = 0;
  std::uint32_t height = 0;
};

/// A 2D texture (B8G8R8A8_UNORM, bindable as a render target and a sampler
/// view; texels are 32-bit values whose bytes are B, G, R, A in memory).
///
/// `guest` textures have memory in the guest as well (width * height * 4
/// bytes): upload() and read() move the whole texture between it and the
/// host. `host_only` textures exist on the host only: GPU work uses them, the
/// CPU cannot see them.
///
/// @par Thread Safety
/// Distinct objects: Safe. Shared objects: Safe for const members; upload()
/// and read() of one texture must not run concurrently.
///
/// @par Ownership
/// A shared handle: every copy refers to the same resource, and the resource
/// (DRM_IOCTL_GEM_CLOSE) goes with the last copy. Commands keep a copy of each
/// texture they use, so a texture lives as long as any command that uses it;
/// the kernel keeps it for submitted work that has not finished.
///
/// @par Lifetime
/// Nothing needs to outlive a texture (it keeps its device).
class texture {
 public:
  enum class backing : std::uint8_t { guest, host_only };

  texture() noexcept = default;
  /// DRM_IOCTL_VIRTGPU_RESOURCE_CREATE; throws std::system_error with the errno,
  /// std::invalid_argument for a zero or too large size.
  static texture create(const device& dev, std::uint32_t width, std::uint32_t height,
                        backing b = backing::guest);

  bool valid() const noexcept { return state_ != nullptr; }
  explicit operator bool() const noexcept { return valid(); }

  std::uint32_t width() const noexcept;
  std::uint32_t height() const noexcept;
  /// The host resource handle virgl commands name.
  std::uint32_t resource_handle() const noexcept;
  /// The GEM handle a submission lists among its buffer objects.
  std::uint32_t bo_handle() const noexcept;
  bool has_guest_backing() const noexcept;
  const virtgpu::device& get_device() const noexcept;

  /// Replaces the whole texture's contents with `texels` (width * height
  /// values, row by row): waits until no submitted work uses the texture
  /// (DRM_IOCTL_VIRTGPU_WAIT), writes the guest backing and transfers it to
  /// the host (DRM_IOCTL_VIRTGPU_TRANSFER_TO_HOST), which the host does before
  /// any later submission. Blocks: not for a scheduler's thread.
  void upload(std::span<const std::uint32_t> texels);
  /// The whole texture's contents, row by row: transfers it from the host
  /// (after all earlier submissions), waits for that (DRM_IOCTL_VIRTGPU_WAIT)
  /// and copies it out of the mapped guest backing. Blocks: not for a
  /// scheduler's thread.
  std::vector<std::uint32_t> read() const;

  friend bool operator==(const texture& a, const texture& b) noexcept { return a.state_ == b.state_; }

 private:
  explicit texture(std::shared_ptr<detail::texture_state> s) noexcept : state_(std::move(s)) {}
  std::shared_ptr<detail::texture_state> state_;
};

}  // namespace cosched::virtgpu
