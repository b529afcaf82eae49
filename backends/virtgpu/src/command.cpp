// The typed builder of virgl command streams.
#include "cosched/virtgpu/command.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "uapi.hpp"

namespace cosched::virtgpu {

namespace {

std::uint32_t bits_of(float f) noexcept {
  std::uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

std::string describe(region r) {
  return "(" + std::to_string(r.x) + ", " + std::to_string(r.y) + ") " + std::to_string(r.width) + "x" +
         std::to_string(r.height);
}

void check_inside(const texture& t, region r, const char* operation, const char* which) {
  const bool inside = r.width > 0 && r.height > 0 && r.x <= t.width() && r.width <= t.width() - r.x &&
                      r.y <= t.height() && r.height <= t.height() - r.y;
  if (!inside)
    throw std::invalid_argument(std::string("cosched::virtgpu::command::") + operation + ": " + which +
                                " region " + describe(r) + " is not inside the " + std::to_string(t.width()) +
                                "x" + std::to_string(t.height()) + " texture");
}

}  // namespace

command::command(const device& dev) : device_(dev) {
  if (!device_) throw std::invalid_argument("cosched::virtgpu::command: empty device");
}

void command::uses(const texture& t) {
  if (std::find(resources_.begin(), resources_.end(), t) == resources_.end()) resources_.push_back(t);
}

void command::check_texture(const texture& t, const char* operation) const {
  if (!t)
    throw std::invalid_argument(std::string("cosched::virtgpu::command::") + operation + ": empty texture");
  if (!(t.get_device() == device_))
    throw std::invalid_argument(std::string("cosched::virtgpu::command::") + operation +
                                ": the texture belongs to another device");
}

command& command::create_sub_context(std::uint32_t id) {
  stream_.insert(stream_.end(), {uapi::header(uapi::ccmd_create_sub_ctx, 0, 1), id});
  return *this;
}

command& command::set_sub_context(std::uint32_t id) {
  stream_.insert(stream_.end(), {uapi::header(uapi::ccmd_set_sub_ctx, 0, 1), id});
  // Another sub context has its own framebuffer state.
  framebuffer_set_ = false;
  return *this;
}

command& command::destroy_sub_context(std::uint32_t id) {
  if (id == 0)
    throw std::invalid_argument(
        "cosched::virtgpu::command::destroy_sub_context: sub context 0 is the context's own");
  stream_.insert(stream_.end(), {uapi::header(uapi::ccmd_destroy_sub_ctx, 0, 1), id});
  return *this;
}

surface command::create_surface(const texture& t) {
  check_texture(t, "create_surface");
  const surface s{device_.new_object_handle()};
  // handle, resource, format, level 0, layers 0..0
  stream_.insert(stream_.end(), {uapi::header(uapi::ccmd_create_object, uapi::object_surface, 5), s.handle,
                                 t.resource_handle(), uapi::format_b8g8r8a8_unorm, 0u, 0u});
  uses(t);
  return s;
}

command& command::destroy_surface(surface s) {
  if (s.handle == 0)
    throw std::invalid_argument("cosched::virtgpu::command::destroy_surface: surface handle 0");
  stream_.insert(stream_.end(), {uapi::header(uapi::ccmd_destroy_object, uapi::object_surface, 1), s.handle});
  return *this;
}

command& command::set_framebuffer(std::initializer_list<surface> colors) {
  if (colors.size() == 0 || colors.size() > 8)
    throw std::invalid_argument("cosched::virtgpu::command::set_framebuffer: " +
                                std::to_string(colors.size()) + " colour buffers (1 to 8)");
  for (const surface& s : colors)
    if (s.handle == 0)
      throw std::invalid_argument("cosched::virtgpu::command::set_framebuffer: surface handle 0");
  const auto n = static_cast<std::uint32_t>(colors.size());
  stream_.insert(stream_.end(), {uapi::header(uapi::ccmd_set_framebuffer_state, 0, n + 2), n, 0u});
  for (const surface& s : colors) stream_.push_back(s.handle);
  framebuffer_set_ = true;
  return *this;
}

command& command::clear(color c) {
  if (!framebuffer_set_)
    throw std::logic_error(
        "cosched::virtgpu::command::clear: no set_framebuffer earlier in this command (it would clear "
        "whatever "
        "framebuffer an earlier command left bound)");
  for (const float v : {c.red, c.green, c.blue, c.alpha})
    if (!(v >= 0.0f && v <= 1.0f))
      throw std::invalid_argument(
          "cosched::virtgpu::command::clear: colour components must be within 0 to 1");
  // buffers, colour (4 floats), depth (a double: 2 dwords), stencil
  stream_.insert(stream_.end(), {uapi::header(uapi::ccmd_clear, 0, 8), uapi::clear_color0, bits_of(c.red),
                                 bits_of(c.green), bits_of(c.blue), bits_of(c.alpha), 0u, 0u, 0u});
  return *this;
}

command& command::copy_region(const texture& dst, std::uint32_t dst_x, std::uint32_t dst_y,
                              const texture& src, region from) {
  check_texture(dst, "copy_region");
  check_texture(src, "copy_region");
  check_inside(src, from, "copy_region", "source");
  check_inside(dst, {dst_x, dst_y, from.width, from.height}, "copy_region", "destination");
  if (dst == src) {
    const bool apart = dst_x >= from.x + from.width || from.x >= dst_x + from.width ||
                       dst_y >= from.y + from.height || from.y >= dst_y + from.height;
    if (!apart)
      throw std::invalid_argument("cosched::virtgpu::command::copy_region: source " + describe(from) +
                                  " and destination overlap in one texture");
  }
  stream_.insert(stream_.end(),
                 {uapi::header(uapi::ccmd_resource_copy_region, 0, 13), dst.resource_handle(), 0u, dst_x,
                  dst_y, 0u, src.resource_handle(), 0u, from.x, from.y, 0u, from.width, from.height, 1u});
  uses(dst);
  uses(src);
  return *this;
}

command& command::write_region(const texture& dst, region to, std::span<const std::uint32_t> texels) {
  check_texture(dst, "write_region");
  check_inside(dst, to, "write_region", "destination");
  if (texels.size() != std::size_t{to.width} * to.height)
    throw std::invalid_argument("cosched::virtgpu::command::write_region: " + std::to_string(texels.size()) +
                                " texels for region " + describe(to));
  // The header's 16-bit length counts 11 dwords of arguments plus the data.
  const std::uint32_t rows_per_write = (uapi::max_length - 11) / to.width;
  if (rows_per_write == 0)
    throw std::invalid_argument("cosched::virtgpu::command::write_region: rows of " +
                                std::to_string(to.width) + " texels do not fit one virgl command");
  for (std::uint32_t row = 0; row < to.height; row += rows_per_write) {
    const std::uint32_t rows = std::min(rows_per_write, to.height - row);
    const std::uint32_t count = rows * to.width;
    // resource, level, usage, stride, layer stride, box (x, y, z, w, h, d), data
    stream_.insert(stream_.end(), {uapi::header(uapi::ccmd_resource_inline_write, 0, 11 + count),
                                   dst.resource_handle(), 0u, uapi::transfer_write, to.width * 4,
                                   to.width * 4 * rows, to.x, to.y + row, 0u, to.width, rows, 1u});
    const auto first = texels.begin() + static_cast<std::ptrdiff_t>(std::size_t{row} * to.width);
    stream_.insert(stream_.end(), first, first + count);
  }
  uses(dst);
  return *this;
}

}  // namespace cosched::virtgpu
