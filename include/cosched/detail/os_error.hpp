// Errors of system calls as std::system_error, with the limit named when a
// process or the system ran out of file descriptors. Internal.
#pragma once

#include <string>
#include <string_view>
#include <system_error>

namespace cosched::detail {

/// For EMFILE and ENFILE, which limit was reached and its value ("out of file
/// descriptors: the process's fd limit (RLIMIT_NOFILE soft limit 1024) is
/// reached; raise it with setrlimit() or ulimit -n"); "" for any other errno.
std::string fd_limit_note(int err);

/// std::system_error(err) whose message is `what`, followed by the fd limit
/// note when there is one. `what` names the library and the call
/// ("cosched::sim::real_ring: eventfd").
std::system_error os_error(int err, std::string_view what);

}  // namespace cosched::detail
