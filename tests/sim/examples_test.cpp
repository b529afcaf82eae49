// The bundled example graphs and the worked examples of DESIGN.md give exactly
// their expected results in virtual time, and the same bytes every run.
#include "submit/runner.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "catch.hpp"

using namespace cosched::submit;

namespace {

const std::filesystem::path source_dir = COSCHED_SOURCE_DIR;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string results_of(const std::filesystem::path& graph_path) {
  auto g = load_graph(graph_path);
  auto outcome = run_virtual(g);
  std::ostringstream out;
  write_results(out, g, outcome, "sim", "virtual");
  return out.str();
}

// Every job line equals the expected line; the last line is the summary.
void check_against(const std::filesystem::path& graph_path, const std::filesystem::path& expected_path) {
  INFO("graph " << graph_path.filename().string());
  const auto actual = lines_of(results_of(graph_path));
  const auto expected = lines_of(read_file(expected_path));
  REQUIRE(actual.size() == expected.size() + 1);
  for (std::size_t i = 0; i < expected.size(); ++i) CHECK(actual[i] == expected[i]);
  CHECK(actual.back().rfind("{\"summary\": {", 0) == 0);
}

}  // namespace

TEST_CASE("bundled examples give their hand-derived results", "[sim][examples]") {
  for (const char* name : {"priorities", "pipeline", "credits", "error-propagation", "kill", "hang-recovery",
                           "firmware-rings", "affinity"}) {
    check_against(source_dir / "examples/graphs" / (std::string(name) + ".json"),
                  source_dir / "tests/sim/expected" / (std::string(name) + ".jsonl"));
  }
}

TEST_CASE("worked examples of DESIGN.md", "[sim][worked]") {
  for (const char* name :
       {"01-design-example", "02-priority-credits", "03-errors-and-order", "04-reset-modes"}) {
    check_against(source_dir / "tests/sim/worked" / (std::string(name) + ".json"),
                  source_dir / "tests/sim/worked" / (std::string(name) + ".expected.jsonl"));
  }
}

TEST_CASE("the same graph gives byte-identical results", "[sim][determinism]") {
  for (const char* name : {"priorities", "pipeline", "credits", "error-propagation", "kill", "hang-recovery",
                           "firmware-rings", "affinity"}) {
    const auto path = source_dir / "examples/graphs" / (std::string(name) + ".json");
    const auto first = results_of(path);
    CHECK(results_of(path) == first);
    CHECK(results_of(path) == first);
  }
}
