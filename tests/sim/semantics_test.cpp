// "Semantics, exactly" of DESIGN.md on graphs written here, with outcomes
// derived by hand: same-instant ordering, zero durations, nothing left to do,
// ring affinity.
#include "submit/graph.hpp"
#include "submit/runner.hpp"

#include <sstream>
#include <string>
#include <vector>

#include "catch.hpp"

using namespace cosched::submit;

namespace {

std::vector<std::string> job_lines(const std::string& graph_json) {
  auto g = parse_graph(graph_json, "inline.json");
  auto outcome = run_virtual(g);
  std::ostringstream out;
  write_results(out, g, outcome, "sim", "virtual");
  std::vector<std::string> lines;
  std::istringstream in(out.str());
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  lines.pop_back();  // the summary
  return lines;
}

}  // namespace

TEST_CASE("at one instant a completion takes effect before a kill", "[sim][instant]") {
  const auto lines = job_lines(R"({
    "scheduler": {"credit_limit": 1},
    "entities": [ {"name": "x"} ],
    "jobs": [ {"id": "x1", "entity": "x", "duration_us": 100},
              {"id": "x2", "entity": "x", "duration_us": 100},
              {"id": "x3", "entity": "x", "duration_us": 100, "submit_at_us": 100} ],
    "actions": [ {"at_us": 100, "kill": "x"} ] })");
  // x1 completes at 100; the kill at 100 finds x2 not run yet (selection comes
  // after all of the instant's events); x3, pushed after the kill, is killed too.
  CHECK(
      lines ==
      std::vector<std::string>{
          R"({"job": "x1", "entity": "x", "error": null, "cause": null, "attempts": 1, "queued_us": 0, "scheduled_us": 0, "finished_us": 100})",
          R"({"job": "x2", "entity": "x", "error": "killed", "cause": null, "attempts": 0, "queued_us": 0, "scheduled_us": null, "finished_us": 100})",
          R"({"job": "x3", "entity": "x", "error": "killed", "cause": null, "attempts": 0, "queued_us": 100, "scheduled_us": null, "finished_us": 100})"});
}

TEST_CASE("zero-duration commands complete at the instant they run", "[sim][instant]") {
  const auto lines = job_lines(R"({
    "scheduler": {"credit_limit": 1},
    "entities": [ {"name": "z"} ],
    "jobs": [ {"id": "z1", "entity": "z", "duration_us": 0},
              {"id": "z2", "entity": "z", "duration_us": 0},
              {"id": "z3", "entity": "z", "duration_us": 10} ] })");
  CHECK(
      lines ==
      std::vector<std::string>{
          R"({"job": "z1", "entity": "z", "error": null, "cause": null, "attempts": 1, "queued_us": 0, "scheduled_us": 0, "finished_us": 0})",
          R"({"job": "z2", "entity": "z", "error": null, "cause": null, "attempts": 1, "queued_us": 0, "scheduled_us": 0, "finished_us": 0})",
          R"({"job": "z3", "entity": "z", "error": null, "cause": null, "attempts": 1, "queued_us": 0, "scheduled_us": 0, "finished_us": 10})"});
}

TEST_CASE("a dependency on the same entity waits for completion (no shortcut by default)",
          "[sim][dependency]") {
  const auto lines = job_lines(R"({
    "scheduler": {"credit_limit": 2},
    "entities": [ {"name": "e"} ],
    "jobs": [ {"id": "e1", "entity": "e", "duration_us": 100},
              {"id": "e2", "entity": "e", "duration_us": 100, "deps": ["e1"]} ] })");
  CHECK(
      lines ==
      std::vector<std::string>{
          R"({"job": "e1", "entity": "e", "error": null, "cause": null, "attempts": 1, "queued_us": 0, "scheduled_us": 0, "finished_us": 100})",
          R"({"job": "e2", "entity": "e", "error": null, "cause": null, "attempts": 1, "queued_us": 0, "scheduled_us": 100, "finished_us": 200})"});
}

TEST_CASE("a job pushed when its dependency fails at that instant fails at once", "[sim][instant]") {
  const auto lines = job_lines(R"({
    "scheduler": {"credit_limit": 2},
    "entities": [ {"name": "a"}, {"name": "b"} ],
    "jobs": [ {"id": "d1", "entity": "a", "duration_us": 100, "fault": "error:ENODEV"},
              {"id": "j", "entity": "b", "duration_us": 100, "deps": ["d1"], "submit_at_us": 100},
              {"id": "k", "entity": "b", "duration_us": 50, "submit_at_us": 100} ] })");
  CHECK(
      lines ==
      std::vector<std::string>{
          R"({"job": "d1", "entity": "a", "error": "ENODEV", "cause": null, "attempts": 1, "queued_us": 0, "scheduled_us": 0, "finished_us": 100})",
          R"({"job": "j", "entity": "b", "error": "ENODEV", "cause": "d1", "attempts": 0, "queued_us": 100, "scheduled_us": null, "finished_us": 100})",
          R"({"job": "k", "entity": "b", "error": null, "cause": null, "attempts": 1, "queued_us": 100, "scheduled_us": 100, "finished_us": 150})"});
}

TEST_CASE("nothing left to do: undecided jobs fail shutdown, decided ones keep their outcome",
          "[sim][shutdown]") {
  const auto lines = job_lines(R"({
    "scheduler": {"credit_limit": 3},
    "entities": [ {"name": "x"}, {"name": "y"}, {"name": "z"} ],
    "jobs": [ {"id": "h", "entity": "x", "fault": "hang"},
              {"id": "a", "entity": "y", "duration_us": 100},
              {"id": "z1", "entity": "z", "duration_us": 100},
              {"id": "z2", "entity": "z", "duration_us": 100},
              {"id": "b", "entity": "y", "duration_us": 100, "deps": ["a"]},
              {"id": "late", "entity": "x", "duration_us": 100, "submit_at_us": 1000} ],
    "actions": [ {"at_us": 500, "kill": "z"} ] })");
  // h hangs at the ring's front, so a and z1 never start; z2 is killed at 500
  // but waits for z1; at 1000 nothing pending can make progress.
  CHECK(
      lines ==
      std::vector<std::string>{
          R"({"job": "h", "entity": "x", "error": "shutdown", "cause": null, "attempts": 1, "queued_us": 0, "scheduled_us": 0, "finished_us": 1000})",
          R"({"job": "a", "entity": "y", "error": "shutdown", "cause": null, "attempts": 1, "queued_us": 0, "scheduled_us": 0, "finished_us": 1000})",
          R"({"job": "z1", "entity": "z", "error": "shutdown", "cause": null, "attempts": 1, "queued_us": 0, "scheduled_us": 0, "finished_us": 1000})",
          R"({"job": "z2", "entity": "z", "error": "killed", "cause": null, "attempts": 0, "queued_us": 0, "scheduled_us": null, "finished_us": 1000})",
          R"({"job": "b", "entity": "y", "error": "shutdown", "cause": null, "attempts": 0, "queued_us": 0, "scheduled_us": null, "finished_us": 1000})",
          R"({"job": "late", "entity": "x", "error": "shutdown", "cause": null, "attempts": 0, "queued_us": 1000, "scheduled_us": null, "finished_us": 1000})"});
}

TEST_CASE("a slow command without a timeout just takes its slow duration", "[sim][fault]") {
  const auto lines = job_lines(R"({
    "entities": [ {"name": "s"} ],
    "jobs": [ {"id": "s1", "entity": "s", "duration_us": 100, "fault": "slow:2500"},
              {"id": "s2", "entity": "s", "duration_us": 100} ] })");
  CHECK(
      lines ==
      std::vector<std::string>{
          R"({"job": "s1", "entity": "s", "error": null, "cause": null, "attempts": 1, "queued_us": 0, "scheduled_us": 0, "finished_us": 2500})",
          R"({"job": "s2", "entity": "s", "error": null, "cause": null, "attempts": 1, "queued_us": 0, "scheduled_us": 2500, "finished_us": 2600})"});
}

TEST_CASE("ring_per_entity: a hang closes that entity's ring only", "[sim][timeout]") {
  const auto lines = job_lines(R"({
    "scheduler": {"mode": "ring_per_entity", "credit_limit": 2, "timeout_us": 1000},
    "entities": [ {"name": "a"}, {"name": "b"} ],
    "jobs": [ {"id": "a1", "entity": "a", "fault": "hang"},
              {"id": "a2", "entity": "a", "duration_us": 100},
              {"id": "b1", "entity": "b", "duration_us": 500},
              {"id": "b2", "entity": "b", "duration_us": 500},
              {"id": "a3", "entity": "a", "duration_us": 100, "submit_at_us": 2000} ] })");
  // b2 ends exactly when b's timeout would fire: the completion comes first.
  CHECK(
      lines ==
      std::vector<std::string>{
          R"({"job": "a1", "entity": "a", "error": "timed_out", "cause": null, "attempts": 1, "queued_us": 0, "scheduled_us": 0, "finished_us": 1000})",
          R"({"job": "a2", "entity": "a", "error": "cancelled", "cause": "a1", "attempts": 1, "queued_us": 0, "scheduled_us": 0, "finished_us": 1000})",
          R"({"job": "b1", "entity": "b", "error": null, "cause": null, "attempts": 1, "queued_us": 0, "scheduled_us": 0, "finished_us": 500})",
          R"({"job": "b2", "entity": "b", "error": null, "cause": null, "attempts": 1, "queued_us": 0, "scheduled_us": 0, "finished_us": 1000})",
          R"({"job": "a3", "entity": "a", "error": "cancelled", "cause": "a1", "attempts": 0, "queued_us": 2000, "scheduled_us": null, "finished_us": 2000})"});
}

TEST_CASE("shared_ring: a command still running at the timeout is hung, others replay", "[sim][timeout]") {
  const auto lines = job_lines(R"({
    "scheduler": {"credit_limit": 2, "timeout_us": 300},
    "entities": [ {"name": "x"}, {"name": "y"} ],
    "jobs": [ {"id": "x1", "entity": "x", "duration_us": 500},
              {"id": "y1", "entity": "y", "duration_us": 100} ] })");
  CHECK(
      lines ==
      std::vector<std::string>{
          R"({"job": "x1", "entity": "x", "error": "timed_out", "cause": null, "attempts": 1, "queued_us": 0, "scheduled_us": 0, "finished_us": 300})",
          R"({"job": "y1", "entity": "y", "error": null, "cause": null, "attempts": 2, "queued_us": 0, "scheduled_us": 300, "finished_us": 400})"});
}

TEST_CASE("ring affinity: a head goes to the least loaded of its entity's rings, ties to the lowest of them",
          "[sim][affinity]") {
  const auto lines = job_lines(R"({
    "scheduler": {"credit_limit": 1, "rings": 3},
    "entities": [ {"name": "a", "rings": [2, 1]}, {"name": "b"}, {"name": "c", "rings": [2]} ],
    "jobs": [ {"id": "a1", "entity": "a", "duration_us": 100},
              {"id": "b1", "entity": "b", "duration_us": 100},
              {"id": "c1", "entity": "c", "duration_us": 100},
              {"id": "a2", "entity": "a", "duration_us": 100},
              {"id": "c2", "entity": "c", "duration_us": 100} ] })");
  // At 0 every ring is empty: a1 takes ring 1, the lowest of a's rings; b1 ring
  // 0; c1 ring 2. a2 and c2 wait for their entities' rings (one credit each)
  // while no ring is free; at 100 each is placed again, on the same rings.
  CHECK(
      lines ==
      std::vector<std::string>{
          R"({"job": "a1", "entity": "a", "error": null, "cause": null, "attempts": 1, "queued_us": 0, "scheduled_us": 0, "finished_us": 100, "ring": 1})",
          R"({"job": "b1", "entity": "b", "error": null, "cause": null, "attempts": 1, "queued_us": 0, "scheduled_us": 0, "finished_us": 100, "ring": 0})",
          R"({"job": "c1", "entity": "c", "error": null, "cause": null, "attempts": 1, "queued_us": 0, "scheduled_us": 0, "finished_us": 100, "ring": 2})",
          R"({"job": "a2", "entity": "a", "error": null, "cause": null, "attempts": 1, "queued_us": 0, "scheduled_us": 100, "finished_us": 200, "ring": 1})",
          R"({"job": "c2", "entity": "c", "error": null, "cause": null, "attempts": 1, "queued_us": 0, "scheduled_us": 100, "finished_us": 200, "ring": 2})"});
}

TEST_CASE("ring affinity: a head waits for its entity's rings while another ring is idle",
          "[sim][affinity]") {
  const auto lines = job_lines(R"({
    "scheduler": {"credit_limit": 1, "rings": 2},
    "entities": [ {"name": "copy", "rings": [1]}, {"name": "gfx", "priority": "high", "rings": [1]} ],
    "jobs": [ {"id": "c1", "entity": "copy", "duration_us": 500},
              {"id": "g1", "entity": "gfx", "duration_us": 100, "submit_at_us": 100} ] })");
  // Ring 0 stays idle: g1, high priority, waits for ring 1 until c1 leaves it.
  CHECK(
      lines ==
      std::vector<std::string>{
          R"({"job": "c1", "entity": "copy", "error": null, "cause": null, "attempts": 1, "queued_us": 0, "scheduled_us": 0, "finished_us": 500, "ring": 1})",
          R"({"job": "g1", "entity": "gfx", "error": null, "cause": null, "attempts": 1, "queued_us": 100, "scheduled_us": 500, "finished_us": 600, "ring": 1})"});
}

TEST_CASE("ring affinity: set_rings takes effect at the next placement, commands in flight keep their ring",
          "[sim][affinity]") {
  const auto lines = job_lines(R"({
    "scheduler": {"credit_limit": 2, "rings": 2},
    "entities": [ {"name": "a", "rings": [0]} ],
    "jobs": [ {"id": "a1", "entity": "a", "duration_us": 300},
              {"id": "a2", "entity": "a", "duration_us": 100, "submit_at_us": 100},
              {"id": "a3", "entity": "a", "duration_us": 100, "submit_at_us": 500} ],
    "actions": [ {"at_us": 50, "set_rings": "a", "rings": [1]} ] })");
  // a may use ring 1 only from 50 on, but a1 is on ring 0 until 300: a2 follows
  // it there (run at 100, executed 300-400). At 500 nothing of a is in flight:
  // a3 is placed on ring 1.
  CHECK(
      lines ==
      std::vector<std::string>{
          R"({"job": "a1", "entity": "a", "error": null, "cause": null, "attempts": 1, "queued_us": 0, "scheduled_us": 0, "finished_us": 300, "ring": 0})",
          R"({"job": "a2", "entity": "a", "error": null, "cause": null, "attempts": 1, "queued_us": 100, "scheduled_us": 100, "finished_us": 400, "ring": 0})",
          R"({"job": "a3", "entity": "a", "error": null, "cause": null, "attempts": 1, "queued_us": 500, "scheduled_us": 500, "finished_us": 600, "ring": 1})"});
}

TEST_CASE("ring affinity: set_rings actions of an instant come before its pushes, in file order",
          "[sim][affinity][instant]") {
  const std::string graph = R"({
    "scheduler": {"credit_limit": 1, "rings": 2},
    "entities": [ {"name": "a", "rings": [0]}, {"name": "b", "rings": [0]} ],
    "jobs": [ {"id": "b1", "entity": "b", "duration_us": 1000},
              {"id": "a1", "entity": "a", "duration_us": 100, "submit_at_us": 200} ],
    "actions": [ {"at_us": 200, "set_rings": "a", "rings": [1]} )";
  // a1, pushed at 200, is placed with the set of 200: ring 1, at once.
  CHECK(
      job_lines(graph + "] }") ==
      std::vector<std::string>{
          R"({"job": "b1", "entity": "b", "error": null, "cause": null, "attempts": 1, "queued_us": 0, "scheduled_us": 0, "finished_us": 1000, "ring": 0})",
          R"({"job": "a1", "entity": "a", "error": null, "cause": null, "attempts": 1, "queued_us": 200, "scheduled_us": 200, "finished_us": 300, "ring": 1})"});
  // Two sets at one instant: the later in the file holds, so a1 waits for ring 0.
  CHECK(
      job_lines(graph + R"(, {"at_us": 200, "set_rings": "a", "rings": [0]} ] })") ==
      std::vector<std::string>{
          R"({"job": "b1", "entity": "b", "error": null, "cause": null, "attempts": 1, "queued_us": 0, "scheduled_us": 0, "finished_us": 1000, "ring": 0})",
          R"({"job": "a1", "entity": "a", "error": null, "cause": null, "attempts": 1, "queued_us": 200, "scheduled_us": 1000, "finished_us": 1100, "ring": 0})"});
}
