// A virgl command stream and the textures it uses: what one GPU job submits.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <vector>

#include "cosched/virtgpu/device.hpp"
#include "cosched/virtgpu/texture.hpp"

namespace cosched::virtgpu {

/// A clear colour: red, green, blue, alpha as floats from 0 to 1 (the
/// B8G8R8A8_UNORM texel gets round(value * 255) in each byte).
struct color {
  float red = 0;
  float green = 0;
  float blue = 0;
  float alpha = 0;
};

/// A virgl surface object: a texture bound as a render target, named by a
/// handle of the device's virgl context (device::new_object_handle).
struct surface {
  std::uint32_t handle = 0;
};

/// One GPU job: a virgl command stream, built with typed calls that check their
/// arguments, and the textures it uses (each kept alive as long as the command).
///
/// Every submission of a device runs in the device's one virgl context, whose
/// state (the current sub context, the bound framebuffer, surface objects)
/// carries over from one command to the next. A command that clears therefore
/// binds its framebuffer itself: clear() before set_framebuffer() in the same
/// command is refused, since it would clear whatever an earlier job left bound.
/// Objects a command creates are the context's until a command destroys them.
///
/// Argument errors throw std::invalid_argument or std::logic_error naming the
/// call, before anything is written: the host's virgl refuses a malformed
/// command by poisoning the whole context, so none is ever built.
///
/// @par Thread Safety
/// Distinct objects: Safe. Shared objects: Unsafe.
///
/// @par Ownership
/// Movable; it owns its stream and a copy of each texture handle it uses.
///
/// @par Lifetime
/// Nothing needs to outlive it. Once submitted, the kernel has a copy of the
/// stream and holds the textures until the work is done.
class command {
 public:
  explicit command(const device& dev);

  /// CREATE_SUB_CTX, SET_SUB_CTX and DESTROY_SUB_CTX: a sub context is a set of
  /// pipeline state and objects within the device's context (0 always exists).
  command& create_sub_context(std::uint32_t id);
  command& set_sub_context(std::uint32_t id);
  command& destroy_sub_context(std::uint32_t id);

  /// CREATE_OBJECT of a surface for level 0 of `t`, with a fresh handle.
  surface create_surface(const texture& t);
  /// DESTROY_OBJECT of a surface this or an earlier command created.
  command& destroy_surface(surface s);
  /// SET_FRAMEBUFFER_STATE: `colors` (1 to 8 surfaces) as the colour buffers, no depth buffer.
  command& set_framebuffer(std::initializer_list<surface> colors);

  /// CLEAR of every colour buffer of the framebuffer (set by this command) to `c`.
  command& clear(color c);
  /// RESOURCE_COPY_REGION: `from` of `src` to (`dst_x`, `dst_y`) of `dst` (level 0).
  command& copy_region(const texture& dst, std::uint32_t dst_x, std::uint32_t dst_y, const texture& src,
                       region from);
  /// RESOURCE_INLINE_WRITE: `texels` (to.width * to.height, row by row) into
  /// `to` of `dst`, carried in the stream itself (split into several writes
  /// when larger than one virgl command can hold).
  command& write_region(const texture& dst, region to, std::span<const std::uint32_t> texels);

  /// The stream, as EXECBUFFER takes it.
  std::span<const std::uint32_t> dwords() const noexcept { return stream_; }
  /// Every texture the stream names, once each.
  std::span<const texture> resources() const noexcept { return resources_; }
  bool empty() const noexcept { return stream_.empty(); }
  const device& get_device() const noexcept { return device_; }

 private:
  void uses(const texture& t);
  void check_texture(const texture& t, const char* operation) const;

  device device_;
  std::vector<std::uint32_t> stream_;
  std::vector<texture> resources_;
  bool framebuffer_set_ = false;
};

}  // namespace cosched::virtgpu
