// Tests of cosched-submit's `--trace`: every bundled and worked example, and generated
// graphs with faults, timeouts, kills and several rings, give traces that keep the
// trace-event rules (trace_check.hpp) in both clocks.
#include <algorithm>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "catch.hpp"
#include "submit/generate.hpp"
#include "submit/graph.hpp"
#include "submit/runner.hpp"
#include "trace_check.hpp"

namespace {

using namespace cosched::submit;
using cosched::submit::testing::check_chrome_trace;

const std::filesystem::path source_dir = COSCHED_SOURCE_DIR;

// The bundled examples and the worked examples of DESIGN.md, in name order.
std::vector<std::filesystem::path> example_graphs() {
  std::vector<std::filesystem::path> paths;
  for (const auto& dir : {source_dir / "examples" / "graphs", source_dir / "tests" / "sim" / "worked"})
    for (const auto& entry : std::filesystem::directory_iterator(dir))
      if (entry.path().extension() == ".json") paths.push_back(entry.path());
  std::sort(paths.begin(), paths.end());
  return paths;
}

std::string json_trace_of(const graph& g, const run_outcome& outcome) {
  std::ostringstream out;
  write_trace(out, g, outcome);
  return out.str();
}

// The problems of the JSON trace of `g` run on `clock`, with the run's name in front.
std::vector<std::string> json_problems(const std::string& name, const graph& g, clock_kind clock) {
  run_options options;
  options.clock = clock;
  const auto outcome = run_graph(g, options);
  auto problems = check_chrome_trace(nlohmann::json::parse(json_trace_of(g, outcome)), 5);
  for (auto& p : problems) p = name + ": " + p;
  return problems;
}

// Generated graphs that reach every kind of event: faults, hangs with a timeout
// (resets and bans), kills, several shared rings, ring per entity, credits > 1,
// pipelining.
std::vector<std::pair<std::string, graph>> generated_graphs() {
  std::vector<std::pair<std::string, graph>> graphs;
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    generate_spec spec;
    spec.jobs = 240;
    spec.entities = 5;
    spec.deps = 3;
    spec.faults = 0.05;
    spec.credit_limit = 4;
    graph g = generate_graph(spec, seed);
    g.scheduler.timeout_us = 60;
    for (std::size_t i = 7; i < g.jobs.size(); i += 41) g.jobs[i].fault = fault_spec{fault_kind::hang, 0, 0, "hang"};
    g.actions.push_back({400, action_kind::kill, seed % g.entities.size(), {}});
    if (seed == 1) g.scheduler.rings = 3;
    if (seed == 2) g.scheduler.mode = ring_mode::ring_per_entity;
    if (seed == 3) g.scheduler.pipeline = true;
    check_run_length(g, "generated");
    graphs.emplace_back("generated seed " + std::to_string(seed), std::move(g));
  }
  return graphs;
}

}  // namespace

TEST_CASE("trace: every example's JSON trace keeps the trace-event rules in virtual time", "[submit][trace][!shouldfail]") {
  CHECK(example_graphs().size() == 12);
  std::vector<std::string> problems, failed;
  for (const auto& path : example_graphs()) {
    const auto found = json_problems(path.filename().string(), load_graph(path), clock_kind::virtual_time);
    if (!found.empty()) failed.push_back(path.filename().string());
    problems.insert(problems.end(), found.begin(), found.end());
  }
  INFO(failed.size() << " examples failed");
  for (const auto& p : problems) UNSCOPED_INFO(p);
  CHECK(problems.empty());
}

TEST_CASE("trace: every example's JSON trace keeps the trace-event rules in real time", "[submit][trace][real][!shouldfail]") {
  std::vector<std::string> problems, failed;
  for (const auto& path : example_graphs()) {
    const auto found = json_problems(path.filename().string(), load_graph(path), clock_kind::real_time);
    if (!found.empty()) failed.push_back(path.filename().string());
    problems.insert(problems.end(), found.begin(), found.end());
  }
  INFO(failed.size() << " examples failed");
  for (const auto& p : problems) UNSCOPED_INFO(p);
  CHECK(problems.empty());
}

TEST_CASE("trace: generated graphs give JSON traces that keep the trace-event rules in both clocks",
          "[submit][trace][real][!shouldfail]") {
  std::vector<std::string> problems;
  for (const auto& [name, g] : generated_graphs()) {
    for (auto clock : {clock_kind::virtual_time, clock_kind::real_time}) {
      const auto found =
          json_problems(name + (clock == clock_kind::virtual_time ? " virtual" : " real"), g, clock);
      problems.insert(problems.end(), found.begin(), found.end());
    }
  }
  for (const auto& p : problems) UNSCOPED_INFO(p);
  CHECK(problems.empty());
}
