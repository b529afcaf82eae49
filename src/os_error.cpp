// System call errors with the file descriptor limit named.
#include "cosched/detail/os_error.hpp"

#include <sys/resource.h>

#include <cerrno>

namespace cosched::detail {

std::string fd_limit_note(int err) {
  if (err != EMFILE && err != ENFILE) return {};
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  const std::string soft = limit.rlim_cur == RLIM_INFINITY ? "unlimited" : std::to_string(limit.rlim_cur);
  if (err == EMFILE)
    return "out of file descriptors: the process's fd limit (RLIMIT_NOFILE soft limit " + soft +
           ") is reached; raise it with setrlimit() or ulimit -n";
  return "out of file descriptors: the system-wide limit (fs.file-max) is reached (RLIMIT_NOFILE soft "
         "limit " +
         soft + ")";
}

std::system_error os_error(int err, std::string_view what) {
  std::string message(what);
  if (const auto note = fd_limit_note(err); !note.empty()) message += ": " + note;
  return std::system_error(err, std::generic_category(), message);
}

}  // namespace cosched::detail
