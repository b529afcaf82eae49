// The compact members of a graph's jobs: short_string (ids), rare_string (fault
// texts), optional_time (deadlines) and dependency_list.
#include "submit/compact.hpp"

#include <cstdint>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "catch.hpp"
#include "submit/graph.hpp"

using cosched::submit::dependency_list;
using cosched::submit::optional_time;
using cosched::submit::rare_string;
using cosched::submit::short_string;

TEST_CASE("short_string: up to 15 bytes inline, longer ones on the heap, read back whole",
          "[submit][compact]") {
  CHECK(sizeof(short_string) == 16);
  const short_string empty;
  CHECK(empty.empty());
  CHECK(empty == "");
  CHECK_FALSE(empty.on_heap());

  const short_string id("j999999");
  CHECK(id == "j999999");
  CHECK(id.size() == 7);
  CHECK_FALSE(id.on_heap());

  const std::string fifteen(15, 'x');
  const short_string at_limit(fifteen);
  CHECK(at_limit == fifteen);
  CHECK_FALSE(at_limit.on_heap());

  const std::string sixteen = fifteen + "y";
  const short_string beyond(sixteen);
  CHECK(beyond == sixteen);
  CHECK(beyond.size() == 16);
  CHECK(beyond.on_heap());

  // Any bytes, NUL included.
  const std::string with_nul("a\0b", 3);
  CHECK(short_string(with_nul).view() == with_nul);
  const std::string long_with_nul = std::string(20, 'z') + with_nul;
  CHECK(short_string(long_with_nul).view() == long_with_nul);
}

namespace {

// Copies, moves and assignments of a compact string type keep `text`.
template <class String>
void check_copies_and_moves(const std::string& text) {
  String a(text);
  String b = a;  // copy
  CHECK(b == text);
  CHECK(a == text);
  String c = std::move(a);
  CHECK(c == text);
  CHECK(a.empty());  // NOLINT: a moved-from string is empty
  String d("other");
  d = c;
  CHECK(d == text);
  d = std::move(c);
  CHECK(d == text);
  String& same = d;
  d = same;
  CHECK(d == text);
  d = d.view();  // from its own text
  CHECK(d == text);
  d = std::string("x");
  CHECK(d == "x");
  CHECK(d.str() == std::string("x"));
}

}  // namespace

TEST_CASE("short_string: copies and moves keep the text, assignment replaces it, from itself too",
          "[submit][compact]") {
  for (const std::string& text : {std::string("short"), std::string(40, 'L')})
    check_copies_and_moves<short_string>(text);
}

TEST_CASE("rare_string: the empty string costs nothing, any other is on the heap, read back whole",
          "[submit][compact]") {
  CHECK(sizeof(rare_string) == 8);
  const rare_string empty;
  CHECK(empty.empty());
  CHECK(empty.view().empty());
  CHECK(rare_string("").empty());
  CHECK(rare_string("hang") == "hang");
  CHECK(rare_string("hang").size() == 4);
  const std::string with_nul("throw:a\0b", 9);
  CHECK(rare_string(with_nul).view() == with_nul);
  std::ostringstream out;
  out << rare_string("slow:3000") << '|' << empty;
  CHECK(out.str() == "slow:3000|");
  CHECK(rare_string("error:") + "EIO" == "error:EIO");
}

TEST_CASE("rare_string: copies and moves keep the text, assignment replaces it, from itself too",
          "[submit][compact]") {
  for (const std::string& text : {std::string(), std::string("hang"), std::string(40, 'L')}) {
    check_copies_and_moves<rare_string>(text);
    rare_string d(text);
    d = "";
    CHECK(d.empty());
  }
}

TEST_CASE("optional_time: std::optional's reading in 8 bytes, and 2^64 - 1 refused", "[submit][compact]") {
  CHECK(sizeof(optional_time) == 8);
  optional_time none;
  CHECK_FALSE(none.has_value());
  CHECK_FALSE(none);
  CHECK(none.value_or(7) == 7);
  CHECK(none == std::optional<std::uint64_t>());
  CHECK(std::optional<std::uint64_t>(none) == std::nullopt);
  optional_time zero = 0;
  CHECK(zero.has_value());
  CHECK(*zero == 0);
  CHECK(zero == std::optional<std::uint64_t>(0));
  CHECK_FALSE(zero == none);
  optional_time largest = UINT64_MAX - 1;
  CHECK(*largest == UINT64_MAX - 1);
  CHECK(largest.value_or(0) == UINT64_MAX - 1);
  CHECK(optional_time(std::optional<std::uint64_t>(5)) == optional_time(5));
  CHECK(optional_time(std::optional<std::uint64_t>()) == none);
  zero = std::nullopt;
  CHECK(zero == none);
  CHECK_THROWS_AS(optional_time(UINT64_MAX), std::out_of_range);
  CHECK_THROWS_AS(optional_time(std::optional<std::uint64_t>(UINT64_MAX)), std::out_of_range);
}

TEST_CASE("dependency_list: two inline, more on the heap, in order with repeats", "[submit][compact]") {
  CHECK(sizeof(dependency_list) == 16);
  dependency_list deps;
  CHECK(deps.empty());
  deps.push_back(7);
  deps.push_back(7);
  CHECK_FALSE(deps.on_heap());
  CHECK(deps == std::vector<std::size_t>{7, 7});
  deps.push_back(3);
  CHECK(deps.on_heap());
  CHECK(deps == std::vector<std::size_t>{7, 7, 3});
  CHECK(deps.size() == 3);
  CHECK(deps[2] == 3);

  dependency_list many;
  std::vector<std::size_t> expected;
  for (std::size_t i = 0; i < 64; ++i) {
    many.push_back(1000 - i);
    expected.push_back(1000 - i);
  }
  CHECK(many == expected);
  CHECK(std::vector<std::size_t>(many.begin(), many.end()) == expected);

  CHECK(dependency_list{4, 5} == std::vector<std::size_t>{4, 5});
  CHECK_FALSE(dependency_list{4, 5} == std::vector<std::size_t>{4});
  CHECK_FALSE(dependency_list{4, 5} == std::vector<std::size_t>{5, 4});
  CHECK(dependency_list(expected) == many);

  // Indices are 32 bits: a larger one is refused, the list unchanged.
  dependency_list small{1};
  CHECK_THROWS_AS(small.push_back(std::size_t{1} << 32), std::length_error);
  CHECK(small == std::vector<std::size_t>{1});
  small.push_back(0xFFFFFFFFu);
  CHECK(small == std::vector<std::size_t>{1, 0xFFFFFFFFu});
}

TEST_CASE("dependency_list: copies and moves, inline and on the heap", "[submit][compact]") {
  for (const std::vector<std::size_t>& values :
       {std::vector<std::size_t>{}, std::vector<std::size_t>{9}, std::vector<std::size_t>{1, 2},
        std::vector<std::size_t>{1, 2, 3, 4, 5}}) {
    dependency_list a(values);
    dependency_list b = a;
    CHECK(b == values);
    dependency_list c = std::move(a);
    CHECK(c == values);
    CHECK(a.empty());  // NOLINT: moved from
    dependency_list d{8, 8, 8, 8};
    d = c;
    CHECK(d == values);
    d = std::move(c);
    CHECK(d == values);
    dependency_list& same = d;
    d = same;
    CHECK(d == values);
    d = {6};
    CHECK(d == std::vector<std::size_t>{6});
    d.clear();
    CHECK(d.empty());
    CHECK_FALSE(d.on_heap());
  }
}

TEST_CASE("job_spec: 88 bytes, with its id and up to two dependencies inline, a fault's text apart",
          "[submit][compact]") {
  CHECK(sizeof(cosched::submit::job_spec) == 88);
}
