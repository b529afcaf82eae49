// A non-blocking eventfd for tests: a "device" signals it, often from another thread.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "catch.hpp"

namespace cosched::test {

struct event_fd {
  event_fd() : fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) { REQUIRE(fd >= 0); }
  ~event_fd() { ::close(fd); }
  event_fd(const event_fd&) = delete;
  event_fd& operator=(const event_fd&) = delete;
  // Called from other threads, where Catch's assertions must not be used.
  void signal() const {
    const std::uint64_t one = 1;
    if (::write(fd, &one, sizeof one) != sizeof one) {
      std::perror("eventfd write");
      std::abort();
    }
  }
  int fd;
};

}  // namespace cosched::test
