// Implementation of the cosched error category and errno naming.
#include "cosched/error.hpp"

#include <cerrno>
#include <cstring>
#include <string>

namespace cosched {
namespace {

class category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "cosched"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::timed_out:
        return "timed_out";
      case errc::cancelled:
        return "cancelled";
      case errc::killed:
        return "killed";
      case errc::shutdown:
        return "shutdown";
      case errc::broken:
        return "broken";
      case errc::queue_full:
        return "queue_full";
      case errc::exception:
        return "exception";
    }
    return "unknown cosched error " + std::to_string(value);
  }
};

constexpr int kMaxErrno = 4096;

// Macro names that share a value with another name, which strerrorname_np does not return.
struct errno_alias {
  const char* name;
  int value;
};
constexpr errno_alias kAliases[] = {
    {"EWOULDBLOCK", EWOULDBLOCK}, {"ENOTSUP", ENOTSUP}, {"EDEADLOCK", EDEADLOCK}};

bool known_cosched_value(int value) {
  return value >= static_cast<int>(errc::timed_out) && value <= static_cast<int>(errc::exception);
}

}  // namespace

const std::error_category& category() noexcept {
  static const category_impl instance;
  return instance;
}

std::string error_name(std::error_code ec) {
  if (!ec) return {};
  if (ec.category() == category() && known_cosched_value(ec.value())) return ec.message();
  if (ec.category() == std::generic_category() || ec.category() == std::system_category()) {
    if (const char* name = ::strerrorname_np(ec.value())) return name;
  }
  return std::string(ec.category().name()) + ":" + std::to_string(ec.value());
}

int errno_from_name(std::string_view name) noexcept {
  if (name.empty() || name.front() != 'E') return 0;
  for (const auto& alias : kAliases) {
    if (name == alias.name) return alias.value;
  }
  for (int value = 1; value < kMaxErrno; ++value) {
    const char* candidate = ::strerrorname_np(value);
    if (candidate && name == candidate) return value;
  }
  return 0;
}

std::error_code error_from_name(std::string_view name) {
  for (int value = 1; value <= static_cast<int>(errc::exception); ++value) {
    if (name == category().message(value)) return {value, category()};
  }
  if (int value = errno_from_name(name)) return {value, std::generic_category()};
  return {};
}

}  // namespace cosched
