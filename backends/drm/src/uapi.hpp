// The Linux DRM syncobj and sync_file uAPI this backend uses, including the parts
// newer than the headers Debian ships (libdrm 2.4.114's drm.h, Linux 6.1's uapi).
#pragma once

#include <linux/sync_file.h>
#include <sys/ioctl.h>

#include <cstdint>

#if __has_include(<drm/drm.h>)
#include <drm/drm.h>
#elif __has_include(<libdrm/drm.h>)
#include <libdrm/drm.h>
#else
#error "cosched::drm needs drm.h (libdrm-dev, or the kernel's uapi headers)"
#endif

// Layouts that old headers lack or declare in an older, shorter form get their own
// names here, so they never clash with a newer drm.h. The kernel copies the size
// encoded in the ioctl number and zero-fills the rest, so the longer layouts work
// on old and new kernels alike; every struct must be zeroed before use.
namespace cosched::drm::uapi {

/// DRM_IOCTL_SYNCOBJ_EVENTFD (Linux 6.6): one-shot, adds 1 to `fd` when `point`
/// signalled (flags 0) or has a fence (WAIT_AVAILABLE).
struct syncobj_eventfd {
  std::uint32_t handle;
  std::uint32_t flags;
  std::uint64_t point;
  std::int32_t fd;
  std::uint32_t pad;
};

/// drm_syncobj_timeline_wait with `deadline_nsec` (Linux 6.5; 40 bytes before).
struct syncobj_timeline_wait {
  std::uint64_t handles;
  std::uint64_t points;
  std::int64_t timeout_nsec;  // absolute CLOCK_MONOTONIC
  std::uint32_t count_handles;
  std::uint32_t flags;
  std::uint32_t first_signaled;
  std::uint32_t pad;
  std::uint64_t deadline_nsec;  // absolute CLOCK_MONOTONIC, with WAIT_DEADLINE
};

/// SYNC_IOC_SET_DEADLINE's argument (Linux 6.5).
struct sync_set_deadline {
  std::uint64_t deadline_ns;  // absolute CLOCK_MONOTONIC
  std::uint64_t pad;
};

inline constexpr unsigned long ioctl_syncobj_eventfd = DRM_IOWR(0xCF, syncobj_eventfd);
inline constexpr unsigned long ioctl_syncobj_timeline_wait = DRM_IOWR(0xCA, syncobj_timeline_wait);
inline constexpr unsigned long ioctl_sync_set_deadline = _IOW(SYNC_IOC_MAGIC, 5, sync_set_deadline);

inline constexpr std::uint32_t wait_flag_all = 1u << 0;         // DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL
inline constexpr std::uint32_t wait_flag_for_submit = 1u << 1;  // DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT
inline constexpr std::uint32_t wait_flag_available = 1u << 2;   // DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE
inline constexpr std::uint32_t wait_flag_deadline = 1u << 3;    // DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE

static_assert(sizeof(syncobj_eventfd) == 24);
static_assert(sizeof(syncobj_timeline_wait) == 48);
static_assert(sizeof(sync_set_deadline) == 16);
#if defined(__x86_64__)
// The numbers of the kernel's x86-64 uAPI.
static_assert(ioctl_syncobj_eventfd == 0xc01864cfUL);
static_assert(ioctl_syncobj_timeline_wait == 0xc03064caUL);
static_assert(ioctl_sync_set_deadline == 0x40103e05UL);
static_assert(SYNC_IOC_FILE_INFO == 0xc0383e04UL);
#endif

// With newer headers, they must agree with what they declare.
#ifdef DRM_IOCTL_SYNCOBJ_EVENTFD
static_assert(DRM_IOCTL_SYNCOBJ_EVENTFD == ioctl_syncobj_eventfd);
#endif
#ifdef DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE
static_assert(DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE == wait_flag_deadline);
#endif
#ifdef SYNC_IOC_SET_DEADLINE
static_assert(SYNC_IOC_SET_DEADLINE == ioctl_sync_set_deadline);
#endif
static_assert(DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL == wait_flag_all);
static_assert(DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT == wait_flag_for_submit);
static_assert(DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE == wait_flag_available);

}  // namespace cosched::drm::uapi
