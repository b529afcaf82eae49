// cosched's version: the one place it is written (CMakeLists.txt reads it for
// the package's version).
#pragma once

#define COSCHED_VERSION_MAJOR 0
#define COSCHED_VERSION_MINOR 1
#define COSCHED_VERSION_PATCH 0

#define COSCHED_VERSION_STRINGIFY_(x) #x
#define COSCHED_VERSION_STRINGIFY(x) COSCHED_VERSION_STRINGIFY_(x)
/// "MAJOR.MINOR.PATCH"
#define COSCHED_VERSION_STRING                     \
  COSCHED_VERSION_STRINGIFY(COSCHED_VERSION_MAJOR) \
  "." COSCHED_VERSION_STRINGIFY(COSCHED_VERSION_MINOR) "." COSCHED_VERSION_STRINGIFY(COSCHED_VERSION_PATCH)

namespace cosched {
/// The version of the headers in use, "MAJOR.MINOR.PATCH".
inline constexpr const char* version = COSCHED_VERSION_STRING;
}  // namespace cosched
