// Closing owned file descriptors.
#include "cosched/drm/unique_fd.hpp"

#include <unistd.h>

namespace cosched::drm {

void unique_fd::reset(int fd) noexcept {
  // close() releases the descriptor even when it reports EINTR: never retry it.
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

}  // namespace cosched::drm
