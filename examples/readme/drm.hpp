// What the README's DRM examples use and do not show: a device, a reactor,
// syncobjs, a sync_file, a driver's submit ioctl (compiled by tests/docs).
#pragma once

#include <cerrno>
#include <span>
#include <system_error>

#include <cosched/cosched.hpp>
#include <cosched/drm.hpp>
#include <cosched/drm/driver_ring.hpp>

struct my_command {};
struct my_cs_chunk_syncobj {
  std::uint32_t handle;
  std::uint64_t point;
};
bool my_submit_ioctl(int fd, my_command& cmd, std::span<const my_cs_chunk_syncobj> out,
                     std::span<const cosched::drm::syncobj_point> in);
extern int fd;
extern cosched::drm::device dev;
extern cosched::drm::fence_source source;
extern cosched::reactor reactor;
extern cosched::uring_context ctx;
extern cosched::drm::timeline_syncobj timeline, other, out_timeline;
extern cosched::drm::binary_syncobj binary;
extern int sync_file_fd;
extern cosched::fence done;
extern cosched::fence::clock::time_point t;
