// sync_file fds (one kernel fence each): reading their status and error, and
// sending them a deadline hint.
#pragma once

#include <chrono>

namespace cosched::drm {

/// The status of the fence behind a sync_file (SYNC_IOC_FILE_INFO): 1 when it
/// signalled, 0 while it is pending, a negative errno when it signalled with
/// that error. Throws std::system_error when the fd is not a sync_file.
/// Thread-safe.
int sync_file_status(int sync_file_fd);

/// Sends `deadline` (steady clock, that is CLOCK_MONOTONIC) to the fence behind
/// a sync_file (SYNC_IOC_SET_DEADLINE, Linux 6.5). Returns false when the
/// kernel does not support it (ENOTTY/EINVAL); throws std::system_error for
/// any other error. Thread-safe.
bool set_sync_file_deadline(int sync_file_fd, std::chrono::steady_clock::time_point deadline);

}  // namespace cosched::drm
