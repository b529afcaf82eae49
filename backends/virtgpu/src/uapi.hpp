// The virtio-gpu uAPI (Linux 6.12 include/uapi/drm/virtgpu_drm.h) and the virgl
// command-stream protocol (virglrenderer src/virgl_protocol.h) this backend uses.
// Carried here because the build machine's headers may predate them (the in/out
// syncobj fields of EXECBUFFER arrived in Linux 6.4; Debian bookworm ships 6.1).
#pragma once

#include <sys/ioctl.h>

#include <cstdint>

#if __has_include(<drm/drm.h>)
#include <drm/drm.h>
#elif __has_include(<libdrm/drm.h>)
#include <libdrm/drm.h>
#else
#error "cosched::virtgpu needs drm.h (libdrm-dev, or the kernel's uapi headers)"
#endif

namespace cosched::virtgpu::uapi {

// ------------------------------------------------------------------ virtgpu_drm.h

struct execbuffer_syncobj {
  std::uint32_t handle;
  std::uint32_t flags;
  std::uint64_t point;
};

struct execbuffer {
  std::uint32_t flags;
  std::uint32_t size;
  std::uint64_t command;
  std::uint64_t bo_handles;
  std::uint32_t num_bo_handles;
  std::int32_t fence_fd;
  std::uint32_t ring_idx;
  std::uint32_t syncobj_stride;
  std::uint32_t num_in_syncobjs;
  std::uint32_t num_out_syncobjs;
  std::uint64_t in_syncobjs;
  std::uint64_t out_syncobjs;
};

struct getparam {
  std::uint64_t param;
  std::uint64_t value;  // a user pointer to a u64 (the kernel writes an int there)
};

struct resource_create {
  std::uint32_t target;
  std::uint32_t format;
  std::uint32_t bind;
  std::uint32_t width;
  std::uint32_t height;
  std::uint32_t depth;
  std::uint32_t array_size;
  std::uint32_t last_level;
  std::uint32_t nr_samples;
  std::uint32_t flags;
  std::uint32_t bo_handle;   // out
  std::uint32_t res_handle;  // out
  std::uint32_t size;        // guest backing in bytes (0: host-side only)
  std::uint32_t stride;
};

struct box {
  std::uint32_t x, y, z, w, h, d;
};

struct transfer {  // drm_virtgpu_3d_transfer_to_host and _from_host
  std::uint32_t bo_handle;
  box region;
  std::uint32_t level;
  std::uint32_t offset;
  std::uint32_t stride;  // 0 for resources without blob backing
  std::uint32_t layer_stride;
};

struct wait {
  std::uint32_t handle;
  std::uint32_t flags;
};

struct map {
  std::uint64_t offset;  // out: the mmap offset on the device fd
  std::uint32_t handle;
  std::uint32_t pad;
};

struct get_caps {
  std::uint32_t cap_set_id;
  std::uint32_t cap_set_ver;
  std::uint64_t addr;
  std::uint32_t size;
  std::uint32_t pad;
};

inline constexpr unsigned long ioctl_map = DRM_IOWR(DRM_COMMAND_BASE + 0x01, map);
inline constexpr unsigned long ioctl_execbuffer = DRM_IOWR(DRM_COMMAND_BASE + 0x02, execbuffer);
inline constexpr unsigned long ioctl_getparam = DRM_IOWR(DRM_COMMAND_BASE + 0x03, getparam);
inline constexpr unsigned long ioctl_resource_create = DRM_IOWR(DRM_COMMAND_BASE + 0x04, resource_create);
inline constexpr unsigned long ioctl_transfer_from_host = DRM_IOWR(DRM_COMMAND_BASE + 0x06, transfer);
inline constexpr unsigned long ioctl_transfer_to_host = DRM_IOWR(DRM_COMMAND_BASE + 0x07, transfer);
inline constexpr unsigned long ioctl_wait = DRM_IOWR(DRM_COMMAND_BASE + 0x08, wait);
inline constexpr unsigned long ioctl_get_caps = DRM_IOWR(DRM_COMMAND_BASE + 0x09, get_caps);

inline constexpr std::uint64_t param_3d_features = 1;
inline constexpr std::uint64_t param_context_init = 6;
inline constexpr std::uint64_t param_supported_capset_ids = 7;

inline constexpr std::uint32_t capset_virgl = 1;
inline constexpr std::uint32_t capset_virgl2 = 2;

static_assert(sizeof(execbuffer) == 64);
static_assert(sizeof(execbuffer_syncobj) == 16);
static_assert(sizeof(resource_create) == 56);
static_assert(sizeof(transfer) == 44);

// ------------------------------------------------------------------ virgl_protocol.h

/// The header dword of every command: command, object type, length in dwords
/// (not counting the header).
constexpr std::uint32_t header(std::uint32_t command, std::uint32_t object, std::uint32_t length) noexcept {
  return command | (object << 8) | (length << 16);
}
inline constexpr std::uint32_t max_length = 0xffff;

inline constexpr std::uint32_t ccmd_create_object = 1;
inline constexpr std::uint32_t ccmd_destroy_object = 3;
inline constexpr std::uint32_t ccmd_set_framebuffer_state = 5;
inline constexpr std::uint32_t ccmd_clear = 7;
inline constexpr std::uint32_t ccmd_resource_inline_write = 9;
inline constexpr std::uint32_t ccmd_resource_copy_region = 17;
inline constexpr std::uint32_t ccmd_set_sub_ctx = 28;
inline constexpr std::uint32_t ccmd_create_sub_ctx = 29;
inline constexpr std::uint32_t ccmd_destroy_sub_ctx = 30;

inline constexpr std::uint32_t object_surface = 8;

inline constexpr std::uint32_t format_b8g8r8a8_unorm = 1;
inline constexpr std::uint32_t bind_render_target = 1u << 1;
inline constexpr std::uint32_t bind_sampler_view = 1u << 3;
inline constexpr std::uint32_t target_texture_2d = 2;
inline constexpr std::uint32_t clear_color0 = 1u << 2;
inline constexpr std::uint32_t transfer_write = 1u << 1;  // PIPE_MAP_WRITE: inline write's usage

}  // namespace cosched::virtgpu::uapi
