// Errors of cosched: a std::error_category with stable names, and the naming of
// errno values ("EIO") that device errors keep.
#pragma once

#include <string>
#include <string_view>
#include <system_error>

namespace cosched {

/// Outcomes that cosched itself assigns to jobs and fences. The numeric values
/// are stable; so are the names returned by error_name().
enum class errc : int {
  timed_out = 1,   ///< the job's command ran longer than the ring's timeout
  cancelled = 2,   ///< the job was cancelled (entity closed or banned, scope stopped)
  killed = 3,      ///< the job's entity was killed before the job reached the ring
  shutdown = 4,    ///< the scheduler shut down before the job finished
  broken = 5,      ///< the promise behind the fence was destroyed unsignalled
  queue_full = 6,  ///< the entity's queue limit was reached
  exception = 7,   ///< the job body threw an exception that is not a std::system_error
};

/// The category of cosched::errc. Its name() is "cosched".
const std::error_category& category() noexcept;

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), category()}; }

/// A stable, short name for an error: "timed_out", "cancelled", ... for cosched
/// errors, the errno macro name ("EIO", "ENOMEM") for generic/system errors,
/// and "category:value" for anything else. An empty code yields "".
std::string error_name(std::error_code ec);

/// Parses a name produced by error_name() for cosched errors and errno values.
/// Returns an empty code when the name is unknown.
std::error_code error_from_name(std::string_view name);

/// The errno value whose macro name is `name` ("EIO" -> EIO), or 0.
int errno_from_name(std::string_view name) noexcept;

}  // namespace cosched

template <>
struct std::is_error_code_enum<cosched::errc> : std::true_type {};
