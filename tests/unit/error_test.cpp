// Unit tests for cosched/error.hpp: the cosched error category, its stable names,
// and the naming and parsing of errno values that device errors keep.
#include "cosched/error.hpp"

#include <cerrno>
#include <future>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "catch.hpp"

using cosched::errc;

namespace {

// Every cosched::errc with its stable name and numeric value.
const std::vector<std::pair<errc, std::string>>& all_errc() {
  static const std::vector<std::pair<errc, std::string>> all = {
      {errc::timed_out, "timed_out"}, {errc::cancelled, "cancelled"}, {errc::killed, "killed"},
      {errc::shutdown, "shutdown"},   {errc::broken, "broken"},       {errc::queue_full, "queue_full"},
      {errc::exception, "exception"},
  };
  return all;
}

}  // namespace

TEST_CASE("the cosched category is named \"cosched\" and is a singleton", "[error]") {
  CHECK(std::string(cosched::category().name()) == "cosched");
  CHECK(&cosched::category() == &cosched::category());
  CHECK(cosched::category() != std::generic_category());
  CHECK(cosched::category() != std::system_category());
}

TEST_CASE("errc values are stable", "[error]") {
  CHECK(static_cast<int>(errc::timed_out) == 1);
  CHECK(static_cast<int>(errc::cancelled) == 2);
  CHECK(static_cast<int>(errc::killed) == 3);
  CHECK(static_cast<int>(errc::shutdown) == 4);
  CHECK(static_cast<int>(errc::broken) == 5);
  CHECK(static_cast<int>(errc::queue_full) == 6);
  CHECK(static_cast<int>(errc::exception) == 7);
}

TEST_CASE("make_error_code and the implicit conversion from errc", "[error]") {
  STATIC_REQUIRE(std::is_error_code_enum_v<errc>);
  STATIC_REQUIRE(std::is_convertible_v<errc, std::error_code>);

  for (const auto& [e, name] : all_errc()) {
    INFO(name);
    const std::error_code made = cosched::make_error_code(e);
    const std::error_code converted = e;  // implicit, through is_error_code_enum
    CHECK(made);
    CHECK(made.value() == static_cast<int>(e));
    CHECK(&made.category() == &cosched::category());
    CHECK(converted == made);
    CHECK(made == e);
    CHECK(made.message() == name);
  }
  // Distinct enumerators are distinct codes; none equals a generic errno of the same value.
  CHECK(std::error_code(errc::killed) != std::error_code(errc::cancelled));
  CHECK(std::error_code(errc::broken) != std::error_code(5, std::generic_category()));
}

TEST_CASE("error_name gives the stable name of every cosched error", "[error]") {
  for (const auto& [e, name] : all_errc()) {
    CHECK(cosched::error_name(e) == name);
  }
}

TEST_CASE("error_name of an empty code is empty", "[error]") {
  CHECK(cosched::error_name(std::error_code{}).empty());
}

TEST_CASE("error_name gives the errno macro name for generic and system errors", "[error]") {
  CHECK(cosched::error_name(std::error_code(EIO, std::generic_category())) == "EIO");
  CHECK(cosched::error_name(std::error_code(EIO, std::system_category())) == "EIO");
  CHECK(cosched::error_name(std::error_code(ENOMEM, std::generic_category())) == "ENOMEM");
  CHECK(cosched::error_name(std::error_code(ENOMEM, std::system_category())) == "ENOMEM");
  CHECK(cosched::error_name(std::error_code(ETIMEDOUT, std::generic_category())) == "ETIMEDOUT");
  CHECK(cosched::error_name(std::make_error_code(std::errc::device_or_resource_busy)) == "EBUSY");
  CHECK(cosched::error_name(std::error_code(EPERM, std::generic_category())) == "EPERM");
}

TEST_CASE("error_name falls back to category:value", "[error]") {
  // An errno value with no name.
  CHECK(cosched::error_name(std::error_code(5000, std::generic_category())) == "generic:5000");
  CHECK(cosched::error_name(std::error_code(5000, std::system_category())) == "system:5000");
  // A code of another category.
  const auto future_ec = std::make_error_code(std::future_errc::broken_promise);
  CHECK(cosched::error_name(future_ec) ==
        std::string(future_ec.category().name()) + ":" + std::to_string(future_ec.value()));
}

TEST_CASE("error_from_name round-trips every cosched error", "[error]") {
  for (const auto& [e, name] : all_errc()) {
    INFO(name);
    const std::error_code parsed = cosched::error_from_name(name);
    CHECK(parsed == std::error_code(e));
    CHECK(&parsed.category() == &cosched::category());
    CHECK(cosched::error_from_name(cosched::error_name(e)) == std::error_code(e));
  }
}

TEST_CASE("error_from_name round-trips every named errno, in the generic category", "[error]") {
  int named = 0;
  for (int value = 1; value < 200; ++value) {
    const std::error_code generic(value, std::generic_category());
    const std::string name = cosched::error_name(generic);
    if (name == "generic:" + std::to_string(value)) continue;  // no macro name
    INFO(name);
    ++named;
    CHECK(name.front() == 'E');
    CHECK(cosched::error_from_name(name) == generic);
    CHECK(cosched::errno_from_name(name) == value);
    // A system-category code names the same errno and parses back to the generic one.
    const std::error_code system(value, std::system_category());
    CHECK(cosched::error_name(system) == name);
    CHECK(cosched::error_from_name(name) == std::errc(value));
  }
  CHECK(named > 100);  // Linux names ~133 errno values
}

TEST_CASE("error_from_name of an unknown name is empty", "[error]") {
  CHECK_FALSE(cosched::error_from_name(""));
  CHECK_FALSE(cosched::error_from_name("nope"));
  CHECK_FALSE(cosched::error_from_name("EXYZZY"));
  CHECK_FALSE(cosched::error_from_name("E"));
  CHECK_FALSE(cosched::error_from_name("eio"));  // names are case-sensitive
  CHECK_FALSE(cosched::error_from_name("Killed"));
  CHECK_FALSE(cosched::error_from_name("killed "));
  CHECK_FALSE(cosched::error_from_name("generic:5"));  // the fallback form does not parse
  CHECK_FALSE(cosched::error_from_name("cosched:3"));
}

TEST_CASE("errno_from_name", "[error]") {
  CHECK(cosched::errno_from_name("EIO") == EIO);
  CHECK(cosched::errno_from_name("ENOMEM") == ENOMEM);
  CHECK(cosched::errno_from_name("EPERM") == EPERM);
  CHECK(cosched::errno_from_name("ETIMEDOUT") == ETIMEDOUT);
  CHECK(cosched::errno_from_name("EHWPOISON") == EHWPOISON);
  CHECK(cosched::errno_from_name("") == 0);
  CHECK(cosched::errno_from_name("E") == 0);
  CHECK(cosched::errno_from_name("EXYZZY") == 0);
  CHECK(cosched::errno_from_name("eio") == 0);
  CHECK(cosched::errno_from_name("EIO ") == 0);
  CHECK(cosched::errno_from_name("killed") == 0);
}

// errno_from_name is documented as "the errno value whose macro name is `name`".
// Linux has macros that alias another value; their names must parse too (a graph
// may say "error:EWOULDBLOCK" or "error:ENOTSUP").
TEST_CASE("errno_from_name knows the aliased errno macros", "[error]") {
  CHECK(cosched::errno_from_name("EWOULDBLOCK") == EWOULDBLOCK);
  CHECK(cosched::errno_from_name("ENOTSUP") == ENOTSUP);
  CHECK(cosched::errno_from_name("EDEADLOCK") == EDEADLOCK);
  CHECK(cosched::error_from_name("ENOTSUP") == std::error_code(ENOTSUP, std::generic_category()));
}
