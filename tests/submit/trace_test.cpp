// Tests of cosched-submit's `--trace`: every bundled and worked example, and generated
// graphs with faults, timeouts, kills and several rings, give traces that keep the
// trace-event rules (trace_check.hpp) in both clocks.
#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "catch.hpp"
#include "submit/generate.hpp"
#include "submit/graph.hpp"
#include "submit/runner.hpp"
#include "submit/svg.hpp"
#include "submit/trace.hpp"
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
    for (std::size_t i = 7; i < g.jobs.size(); i += 41)
      g.jobs[i].fault = fault_spec{fault_kind::hang, 0, 0, rare_string("hang")};
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

TEST_CASE("trace: every example's JSON trace keeps the trace-event rules in virtual time",
          "[submit][trace]") {
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

TEST_CASE("trace: every example's JSON trace keeps the trace-event rules in real time",
          "[submit][trace][real]") {
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
          "[submit][trace][real]") {
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

namespace {

std::string proto_trace_of(const graph& g, const run_outcome& outcome) {
  std::ostringstream out;
  write_trace_proto(out, g, outcome);
  return out.str();
}

std::vector<std::string> proto_problems(const std::string& name, const graph& g, clock_kind clock) {
  run_options options;
  options.clock = clock;
  const auto outcome = run_graph(g, options);
  auto problems = cosched::submit::testing::check_proto_trace(proto_trace_of(g, outcome), 5);
  for (auto& p : problems) p = name + ": " + p;
  return problems;
}

struct run_result {
  graph g;
  run_outcome outcome;
  nlohmann::json events;  // the JSON trace's traceEvents
};

run_result run_example(const std::string& file) {
  run_result r{load_graph(source_dir / "examples" / "graphs" / file), {}, {}};
  r.outcome = run_virtual(r.g);
  r.events = nlohmann::json::parse(json_trace_of(r.g, r.outcome))["traceEvents"];
  return r;
}

std::vector<nlohmann::json> events_of(const nlohmann::json& events, std::string_view ph) {
  std::vector<nlohmann::json> found;
  for (const auto& e : events)
    if (e["ph"] == ph) found.push_back(e);
  return found;
}

// "frame1 (attempt 1): 0-500" for each ring bar of the SVG timeline, in drawing order.
std::vector<std::string> svg_ring_bars(const graph& g, const run_outcome& outcome) {
  std::ostringstream out;
  write_svg(out, g, outcome);
  const std::string svg = out.str();
  std::vector<std::string> bars;
  const std::string open = "<rect class=\"run ";
  for (auto at = svg.find(open); at != std::string::npos; at = svg.find(open, at + 1)) {
    const auto title = svg.find("<title>", at) + 7;
    auto text = svg.substr(title, svg.find(" us,", title) - title);
    text.replace(text.find("\xe2\x80\x93"), 3, "-");
    bars.push_back(text);
  }
  return bars;
}

}  // namespace

TEST_CASE("trace: every example's protobuf trace keeps the TrackEvent rules in both clocks",
          "[submit][trace][proto][real]") {
  std::vector<std::string> problems;
  for (const auto& path : example_graphs())
    for (auto clock : {clock_kind::virtual_time, clock_kind::real_time}) {
      const auto found = proto_problems(
          path.filename().string() + (clock == clock_kind::virtual_time ? " virtual" : " real"),
          load_graph(path), clock);
      problems.insert(problems.end(), found.begin(), found.end());
    }
  for (const auto& [name, g] : generated_graphs())
    for (auto clock : {clock_kind::virtual_time, clock_kind::real_time}) {
      const auto found =
          proto_problems(name + (clock == clock_kind::virtual_time ? " virtual" : " real"), g, clock);
      problems.insert(problems.end(), found.begin(), found.end());
    }
  for (const auto& p : problems) UNSCOPED_INFO(p);
  CHECK(problems.empty());
}

TEST_CASE("trace: the ring slices of a hang and its recovery are exactly the SVG's runs", "[submit][trace]") {
  const auto r = run_example("hang-recovery.json");
  std::vector<std::string> slices;
  for (const auto& e : events_of(r.events, "X"))
    slices.push_back(e["name"].get<std::string>() + " (attempt " +
                     std::to_string(e["args"]["attempt"].get<int>()) +
                     "): " + std::to_string(e["ts"].get<std::uint64_t>()) + "-" +
                     std::to_string(e["ts"].get<std::uint64_t>() + e["dur"].get<std::uint64_t>()));
  CHECK(slices == svg_ring_bars(r.g, r.outcome));
  CHECK(slices == std::vector<std::string>{"frame1 (attempt 1): 0-500", "frame2 (attempt 1): 500-2500",
                                           "page1 (attempt 2): 2500-3200", "decode1 (attempt 2): 3200-3500",
                                           "decode2 (attempt 1): 4000-6500"});
}

TEST_CASE("trace: a hang and its recovery gives its reset timeout and ban as instants", "[submit][trace]") {
  const auto r = run_example("hang-recovery.json");
  std::vector<std::tuple<std::string, std::int64_t, std::uint64_t, std::string>> instants;
  for (const auto& e : events_of(r.events, "i"))
    instants.emplace_back(e["name"].get<std::string>(), e["tid"].get<std::int64_t>(),
                          e["ts"].get<std::uint64_t>(),
                          e.contains("args") ? e["args"]["job"].get<std::string>() : "");
  // tid 1: ring 0; tid 2: the entity game.
  using instant = std::tuple<std::string, std::int64_t, std::uint64_t, std::string>;
  CHECK(instants == std::vector<instant>{{"reset", 1, 2500, ""},
                                         {"timeout", 1, 2500, "frame2"},
                                         {"timeout", 2, 2500, "frame2"},
                                         {"ban", 2, 2500, "frame2"}});
}

TEST_CASE("trace: a kill is an instant on its entity's track", "[submit][trace]") {
  const auto r = run_example("kill.json");
  const auto instants = events_of(r.events, "i");
  REQUIRE(instants.size() == 1);
  CHECK(instants[0]["name"] == "kill");
  CHECK(instants[0]["ts"] == 4000);
  CHECK(instants[0]["tid"] == 3);  // ring 0, game, miner
}

TEST_CASE("trace: a flow per declared dependency whose both jobs ran", "[submit][trace]") {
  for (const std::string file : {"error-propagation.json", "pipeline.json", "kill.json"}) {
    INFO(file);
    const auto r = run_example(file);
    std::size_t both_ran = 0;
    for (std::size_t j = 0; j < r.g.jobs.size(); ++j) {
      std::set<std::size_t> deps(r.g.jobs[j].deps.begin(), r.g.jobs[j].deps.end());
      for (std::size_t d : deps) both_ran += r.outcome.jobs[j].attempts > 0 && r.outcome.jobs[d].attempts > 0;
    }
    CHECK(events_of(r.events, "s").size() == both_ran);
    CHECK(events_of(r.events, "f").size() == both_ran);
    CHECK(model_trace(r.g, r.outcome).flows.size() == both_ran);
  }
  // error-propagation: draw waits for texture, which failed, so draw never ran, nor
  // did show, which waits for draw: no arrow at all.
  const auto r = run_example("error-propagation.json");
  CHECK(events_of(r.events, "s").empty());
}

TEST_CASE("trace: the protobuf trace has the JSON trace's slices instants and flows",
          "[submit][trace][proto]") {
  for (const std::string file : {"hang-recovery.json", "pipeline.json", "kill.json"}) {
    INFO(file);
    const auto r = run_example(file);
    const auto proto = cosched::submit::testing::decode_proto_trace(proto_trace_of(r.g, r.outcome));
    REQUIRE(proto.problems.empty());
    std::map<std::uint64_t, std::string> track_names;
    for (const auto& t : proto.tracks) track_names[t.uuid] = t.name;
    // Ring slices: (name, begin in us) on tracks named "ring N", in time order.
    std::vector<std::pair<std::string, std::uint64_t>> proto_slices, json_slices;
    std::size_t flows = 0, instants = 0, job_spans = 0;
    for (const auto& e : proto.events) {
      const auto& track = track_names[e.track_uuid];
      if (e.type == 1 && track.rfind("ring ", 0) == 0)
        proto_slices.emplace_back(e.name, e.timestamp_ns / 1000);
      if (e.type == 1 && track.rfind("jobs ", 0) == 0) ++job_spans;
      if (e.type == 3) ++instants;
      flows += e.flow_ids.size();
    }
    for (const auto& e : events_of(r.events, "X")) json_slices.emplace_back(e["name"], e["ts"]);
    std::sort(json_slices.begin(), json_slices.end(),
              [](const auto& a, const auto& b) { return a.second < b.second; });
    CHECK(proto_slices == json_slices);
    CHECK(job_spans == r.g.jobs.size());
    CHECK(instants == events_of(r.events, "i").size());
    CHECK(flows == events_of(r.events, "s").size());
  }
}
