// An owned file descriptor: what the DRM backend hands out when it exports a
// syncobj fd or a sync_file.
#pragma once

#include <utility>

namespace cosched::drm {

/// Owns one file descriptor and closes it when destroyed.
///
/// @par Thread Safety
/// Distinct objects: Safe. Shared objects: Unsafe.
///
/// @par Ownership
/// Move-only. release() hands the descriptor back to the caller, who then closes it.
///
/// @par Lifetime
/// Nothing needs to outlive it.
class unique_fd {
 public:
  unique_fd() noexcept = default;
  /// Takes ownership of `fd` (-1: empty).
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }

  /// Gives up ownership: the caller closes the returned descriptor.
  int release() noexcept { return std::exchange(fd_, -1); }
  /// Closes the current descriptor (if any) and owns `fd` instead.
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

}  // namespace cosched::drm
