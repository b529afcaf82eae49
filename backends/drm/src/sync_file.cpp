// sync_file status and deadline ioctls.
#include "cosched/drm/sync_file.hpp"

#include <sys/ioctl.h>

#include <cerrno>

#include "device_state.hpp"
#include "uapi.hpp"

namespace cosched::drm {

int sync_file_status(int sync_file_fd) {
  sync_file_info info{};  // num_fences 0: only the status and the name
  int rc;
  do {
    rc = ::ioctl(sync_file_fd, SYNC_IOC_FILE_INFO, &info);
  } while (rc == -1 && errno == EINTR);
  if (rc == -1) detail::throw_error(errno, "sync_file_status (SYNC_IOC_FILE_INFO)");
  return info.status;
}

bool set_sync_file_deadline(int sync_file_fd, std::chrono::steady_clock::time_point deadline) {
  uapi::sync_set_deadline args{};
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
  args.deadline_ns = ns < 0 ? 0 : static_cast<std::uint64_t>(ns);
  int rc;
  do {
    rc = ::ioctl(sync_file_fd, uapi::ioctl_sync_set_deadline, &args);
  } while (rc == -1 && errno == EINTR);
  if (rc == 0) return true;
  if (errno == ENOTTY || errno == EINVAL) return false;
  detail::throw_error(errno, "set_sync_file_deadline (SYNC_IOC_SET_DEADLINE)");
}

}  // namespace cosched::drm
