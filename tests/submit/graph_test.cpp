// Tests of cosched-submit's graph reader: the worked examples and every-field graphs read
// field by field, and every rejection rule with the exact one-line message it produces.
#include "submit/graph.hpp"

#include <cerrno>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "catch.hpp"

namespace {

using namespace cosched::submit;
using cosched::priority;

std::filesystem::path inputs_dir() {
  return std::filesystem::path(COSCHED_SOURCE_DIR) / "tests" / "submit" / "inputs";
}

// The worked examples of DESIGN.md, shared with the semantics tests.
std::filesystem::path worked_dir() {
  return std::filesystem::path(COSCHED_SOURCE_DIR) / "tests" / "sim" / "worked";
}

/// The message parse_graph throws for `text`, or "(accepted)" when it accepts it.
std::string error_of(std::string_view text) {
  try {
    parse_graph(text, "graph.json");
  } catch (const input_error& error) {
    return error.what();
  }
  return "(accepted)";
}

std::string load_error_of(const std::filesystem::path& path) {
  try {
    load_graph(path);
  } catch (const input_error& error) {
    return error.what();
  }
  return "(accepted)";
}

/// A graph with the entities "gfx" (high) and "bg" (normal), the given jobs, and `rest`
/// (more top-level fields, each starting with a comma).
std::string with_jobs(std::string_view jobs, std::string_view rest = "") {
  return R"({"entities": [{"name": "gfx", "priority": "high"}, {"name": "bg"}], "jobs": [)" +
         std::string(jobs) + "]" + std::string(rest) + "}";
}

/// The message for a graph whose only job is `{"id": "a", "entity": "gfx", <fields>}`.
std::string job_error_of(std::string_view fields) {
  return error_of(with_jobs(R"({"id": "a", "entity": "gfx", )" + std::string(fields) + "}"));
}

constexpr std::string_view known_job_fields =
    "known fields: id, entity, duration_us, deps, credits, submit_at_us, fault, deadline_us";

constexpr std::string_view cycle_legend =
    " (a -> b: a lists b in deps; a => b: b is pushed just before a on their entity)";

}  // namespace

// ---------------------------------------------------------------------------------------
// Graphs that are accepted

TEST_CASE("worked example 01 reads field by field", "[submit][graph]") {
  const graph g = load_graph(worked_dir() / "01-design-example.json");
  CHECK(g.scheduler.mode == ring_mode::shared_ring);
  CHECK(g.scheduler.credit_limit == 4);
  CHECK(g.scheduler.timeout_us == std::optional<std::uint64_t>(100000));
  CHECK(g.scheduler.policy == policy_kind::fifo);
  CHECK(g.scheduler.rings == 1);

  REQUIRE(g.entities.size() == 2);
  CHECK(g.entities[0].name == "gfx");
  CHECK(g.entities[0].prio == priority::high);
  CHECK(g.entities[1].name == "bg");
  CHECK(g.entities[1].prio == priority::low);

  REQUIRE(g.jobs.size() == 4);
  const job_spec& a = g.jobs[0];
  CHECK(a.id == "a");
  CHECK(a.entity == 0);
  CHECK(a.duration_us == 1000);
  CHECK(a.deps.empty());
  CHECK(a.credits == 1);
  CHECK(a.submit_at_us == 0);
  CHECK(a.fault.kind == fault_kind::none);
  CHECK(a.fault.text.empty());
  CHECK_FALSE(a.deadline_us.has_value());

  const job_spec& b = g.jobs[1];
  CHECK(b.id == "b");
  CHECK(b.entity == 1);
  CHECK(b.duration_us == 1000);
  CHECK(b.deps == std::vector<std::size_t>{0});
  CHECK(b.credits == 2);
  CHECK(b.submit_at_us == 50);

  const job_spec& c = g.jobs[2];
  CHECK(c.entity == 1);
  CHECK(c.fault.kind == fault_kind::hang);
  CHECK(c.fault.text == "hang");

  const job_spec& d = g.jobs[3];
  CHECK(d.entity == 0);
  CHECK(d.fault.kind == fault_kind::error);
  CHECK(d.fault.errno_value == EIO);
  CHECK(d.fault.text == "error:EIO");

  REQUIRE(g.actions.size() == 1);
  CHECK(g.actions[0].at_us == 20000);
  CHECK(g.actions[0].kind == action_kind::kill);
  CHECK(g.actions[0].entity == 1);

  CHECK(push_order(g) == std::vector<std::size_t>{0, 2, 3, 1});
}

TEST_CASE("worked example 02 applies the scheduler defaults", "[submit][graph]") {
  const graph g = load_graph(worked_dir() / "02-priority-credits.json");
  CHECK(g.scheduler.mode == ring_mode::shared_ring);
  CHECK(g.scheduler.credit_limit == 2);
  CHECK_FALSE(g.scheduler.timeout_us.has_value());
  CHECK(g.scheduler.policy == policy_kind::fifo);
  CHECK(g.scheduler.rings == 1);

  REQUIRE(g.entities.size() == 3);
  CHECK(g.entities[0].prio == priority::low);
  CHECK(g.entities[1].prio == priority::kernel);
  CHECK(g.entities[2].prio == priority::normal);

  REQUIRE(g.jobs.size() == 5);
  CHECK(g.jobs[1].credits == 2);
  CHECK(g.jobs[2].entity == 2);
  CHECK(g.jobs[3].deps == std::vector<std::size_t>{0});
  CHECK(g.jobs[4].entity == 1);
  CHECK(g.jobs[4].deps == std::vector<std::size_t>{2});
  CHECK(g.jobs[4].duration_us == 100);
  CHECK(g.jobs[4].submit_at_us == 200);
  CHECK(g.actions.empty());
  CHECK(push_order(g) == std::vector<std::size_t>{0, 1, 2, 3, 4});
}

TEST_CASE("worked example 03 keeps deps in deps order", "[submit][graph]") {
  const graph g = load_graph(worked_dir() / "03-errors-and-order.json");
  CHECK(g.scheduler.credit_limit == 3);
  REQUIRE(g.entities.size() == 2);
  CHECK(g.entities[0].prio == priority::normal);
  CHECK(g.entities[1].prio == priority::normal);
  REQUIRE(g.jobs.size() == 5);
  CHECK(g.jobs[0].fault.kind == fault_kind::error);
  CHECK(g.jobs[0].fault.errno_value == ENOMEM);
  CHECK(g.jobs[2].deps == std::vector<std::size_t>{1, 0});
  CHECK(g.jobs[4].deps == std::vector<std::size_t>{2});
  REQUIRE(g.actions.size() == 1);
  CHECK(g.actions[0].at_us == 1000);
  CHECK(g.actions[0].entity == 0);
  CHECK(push_order(g) == std::vector<std::size_t>{0, 1, 2, 3, 4});
}

TEST_CASE("worked example 04 reads hang, slow and the timeout", "[submit][graph]") {
  const graph g = load_graph(worked_dir() / "04-reset-modes.json");
  CHECK(g.scheduler.mode == ring_mode::shared_ring);
  CHECK(g.scheduler.timeout_us == std::optional<std::uint64_t>(2000));
  REQUIRE(g.jobs.size() == 6);
  CHECK(g.jobs[1].fault.kind == fault_kind::hang);
  CHECK(g.jobs[5].fault.kind == fault_kind::slow);
  CHECK(g.jobs[5].fault.slow_us == 3000);
  CHECK(g.jobs[5].fault.text == "slow:3000");
  CHECK(g.jobs[5].entity == 1);
  CHECK(push_order(g) == std::vector<std::size_t>{0, 1, 2, 3, 4, 5});
}

TEST_CASE("every field set away from its default, limits included", "[submit][graph]") {
  const graph g = load_graph(inputs_dir() / "every-field.json");
  CHECK(g.scheduler.mode == ring_mode::shared_ring);
  CHECK(g.scheduler.credit_limit == 8);
  CHECK(g.scheduler.timeout_us == std::optional<std::uint64_t>(1));
  CHECK(g.scheduler.policy == policy_kind::deadline);
  CHECK(g.scheduler.rings == 3);
  REQUIRE(g.entities.size() == 2);
  CHECK(g.entities[0].prio == priority::kernel);
  CHECK(g.entities[0].rings == std::vector<std::size_t>{2, 0});  // as written
  CHECK(g.entities[1].prio == priority::normal);
  CHECK(g.entities[1].rings.empty());  // every ring

  REQUIRE(g.jobs.size() == 3);
  const job_spec& late = g.jobs[0];
  CHECK(late.entity == 1);
  CHECK(late.duration_us == 0);
  // A dependency on a job later in the file is fine when that job is pushed earlier;
  // repeats are kept as written.
  CHECK(late.deps == std::vector<std::size_t>{1, 1});
  CHECK(late.credits == 8);
  CHECK(late.submit_at_us == 1'000'000'000'000'000);
  CHECK(late.fault.kind == fault_kind::slow);
  CHECK(late.fault.slow_us == 7);
  CHECK(late.deadline_us == std::optional<std::uint64_t>(0));

  const job_spec& early = g.jobs[1];
  CHECK(early.duration_us == 1'000'000'000'000'000);
  CHECK(early.deps.empty());
  CHECK(early.fault.kind == fault_kind::error);
  CHECK(early.fault.errno_value == ETIMEDOUT);
  CHECK(early.deadline_us == std::optional<std::uint64_t>(1'000'000'000'000'000));

  CHECK(g.jobs[2].submit_at_us == 0);  // written as -0

  REQUIRE(g.actions.size() == 3);
  CHECK(g.actions[0].at_us == 0);
  CHECK(g.actions[0].kind == action_kind::kill);
  CHECK(g.actions[0].entity == 1);
  CHECK(g.actions[1].at_us == 5);
  CHECK(g.actions[1].kind == action_kind::set_rings);
  CHECK(g.actions[1].entity == 0);
  CHECK(g.actions[1].rings == std::vector<std::size_t>{1});
  CHECK(g.actions[2].at_us == 1'000'000'000'000'000);
  CHECK(g.actions[2].kind == action_kind::kill);
  CHECK(g.actions[2].entity == 0);
  CHECK(g.actions[2].rings.empty());

  CHECK(push_order(g) == std::vector<std::size_t>{2, 1, 0});
}

TEST_CASE("an empty graph gets every default", "[submit][graph]") {
  const graph g = parse_graph(R"({"entities": [], "jobs": []})", "empty.json");
  CHECK(g.scheduler.mode == ring_mode::shared_ring);
  CHECK(g.scheduler.credit_limit == 1);
  CHECK_FALSE(g.scheduler.timeout_us.has_value());
  CHECK(g.scheduler.policy == policy_kind::fifo);
  CHECK(g.scheduler.rings == 1);
  CHECK(g.entities.empty());
  CHECK(g.jobs.empty());
  CHECK(g.actions.empty());
  CHECK(push_order(g).empty());
}

TEST_CASE("each mode, policy and errno name is read", "[submit][graph]") {
  const graph per_entity = parse_graph(
      R"({"scheduler": {"mode": "ring_per_entity", "rings": 1, "policy": "rr"},
          "entities": [], "jobs": []})",
      "g.json");
  CHECK(per_entity.scheduler.mode == ring_mode::ring_per_entity);
  CHECK(per_entity.scheduler.rings == 1);
  CHECK(per_entity.scheduler.policy == policy_kind::rr);
  CHECK(parse_graph(R"({"scheduler": {"policy": "fair"}, "entities": [], "jobs": []})", "g.json")
            .scheduler.policy == policy_kind::fair);

  const graph faults = parse_graph(with_jobs(R"({"id": "a", "entity": "bg", "fault": "slow:0"},
                                                {"id": "b", "entity": "bg", "fault": "error:ENOMEM"})"),
                                   "g.json");
  CHECK(faults.jobs[0].fault.kind == fault_kind::slow);
  CHECK(faults.jobs[0].fault.slow_us == 0);
  CHECK(faults.jobs[1].fault.errno_value == ENOMEM);
}

TEST_CASE("push order sorts by submit time, stable in file order", "[submit][graph]") {
  graph g;
  for (const std::uint64_t at : {30u, 10u, 30u, 0u, 10u}) {
    job_spec job;
    job.submit_at_us = at;
    g.jobs.push_back(job);
  }
  CHECK(push_order(g) == std::vector<std::size_t>{3, 1, 4, 0, 2});
}

// ---------------------------------------------------------------------------------------
// Files and syntax

TEST_CASE("a missing file is named with the OS reason", "[submit][graph][errors]") {
  const auto path = inputs_dir() / "does-not-exist.json";
  CHECK(load_error_of(path) == path.string() + ": cannot read file: No such file or directory");
}

TEST_CASE("a directory is not a readable graph", "[submit][graph][errors]") {
  CHECK(load_error_of(inputs_dir()) == inputs_dir().string() + ": cannot read file: Is a directory");
}

TEST_CASE("errors from load_graph name the file as given", "[submit][graph][errors]") {
  const auto path = inputs_dir() / "credits-over-limit.json";
  CHECK(load_error_of(path) ==
        path.string() + R"(: jobs[3] (id "d"): field "credits": 5 exceeds scheduler.credit_limit 4)");
}

TEST_CASE("malformed JSON reports line and column", "[submit][graph][errors]") {
  const auto path = inputs_dir() / "malformed.json";
  CHECK(load_error_of(path) ==
        path.string() +
            ": line 3, column 16: malformed JSON: syntax error while parsing object key - "
            "unexpected ','; expected string literal");
  CHECK(error_of("{\n \"entities\": tru}") ==
        "graph.json: line 2, column 17: malformed JSON: syntax error while parsing value - "
        "invalid literal; last read: '\"entities\": tru}'");
}

TEST_CASE("the column counts characters, not bytes", "[submit][graph][errors]") {
  // "é" is two bytes in UTF-8.
  CHECK(error_of("{\"\xC3\xA9\": x}") ==
        "graph.json: line 1, column 7: malformed JSON: syntax error while parsing value - "
        "invalid literal; last read: '\"\xC3\xA9\": x'");
}

TEST_CASE("an empty or truncated file is malformed at its end", "[submit][graph][errors]") {
  CHECK(error_of("") ==
        "graph.json: line 1, column 1: malformed JSON: syntax error while parsing value - "
        "unexpected end of input; expected '[', '{', or a literal");
  CHECK(error_of("{\"jobs\": [\n") ==
        "graph.json: line 2, column 1: malformed JSON: syntax error while parsing value - "
        "unexpected end of input; expected '[', '{', or a literal");
}

TEST_CASE("a number too big for a double is malformed with its position", "[submit][graph][errors]") {
  // The position is the number's last character, where nlohmann stopped.
  CHECK(error_of("{\"jobs\":\n  1e500}") ==
        "graph.json: line 2, column 7: malformed JSON: number overflow parsing '1e500'");
}

TEST_CASE("trailing content after the object is malformed", "[submit][graph][errors]") {
  CHECK(error_of(R"({"entities": [], "jobs": []} x)") ==
        "graph.json: line 1, column 30: malformed JSON: syntax error while parsing value - "
        "invalid literal; last read: '\"jobs\": []} x'; expected end of input");
}

TEST_CASE("the top level must be an object", "[submit][graph][errors]") {
  CHECK(error_of("[]") == "graph.json: top level: must be a JSON object, got an array");
  CHECK(error_of("42") == "graph.json: top level: must be a JSON object, got 42");
}

TEST_CASE("deep nesting is rejected at its position, not a crash", "[submit][graph][errors]") {
  // Inside an object: nlohmann copies a value recursively when an object grows, and a
  // million levels overflowed the stack (SIGSEGV).
  for (const std::size_t levels : {65u, 100000u, 1000000u}) {
    INFO(levels);
    const std::string deep = std::string(levels, '[') + std::string(levels, ']');
    CHECK(error_of(deep) ==
          "graph.json: line 1, column 65: arrays and objects nested deeper than 64 levels (a graph needs 4)");
    const std::string prefix = R"({"entities": )";
    CHECK(error_of(prefix + deep + R"(, "jobs": []})") ==
          "graph.json: line 1, column " + std::to_string(prefix.size() + 64) +
              ": arrays and objects nested deeper than 64 levels (a graph needs 4)");
  }
  // Objects count as arrays do; the column counts characters, not bytes.
  std::string objects = "\n";
  for (int level = 0; level < 70; ++level) objects += "{\"é\": ";
  CHECK(error_of(objects) ==
        "graph.json: line 2, column 385: arrays and objects nested deeper than 64 levels (a graph needs 4)");
  // Brackets inside strings (escaped quotes too) do not count.
  const std::string quoted = R"(["\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", )";
  CHECK(error_of(quoted + std::string(64, '[')) ==
        "graph.json: line 1, column " + std::to_string(quoted.size() + 64) +
            ": arrays and objects nested deeper than 64 levels (a graph needs 4)");
  // 64 levels are read, and rejected for what they are: deps at level 4, then 61 levels.
  const std::string job = R"({"id": "a", "entity": "gfx", "deps": )";
  CHECK(error_of(with_jobs(job + std::string(61, '[') + std::string(61, ']') + "}")) ==
        R"(graph.json: jobs[0] (id "a"): field "deps[0]": must be a string (a job id), got an array)");
  const std::string deeper = with_jobs(job + std::string(62, '[') + std::string(62, ']') + "}");
  CHECK(error_of(deeper) == "graph.json: line 1, column " + std::to_string(deeper.find("[[[") + 62) +
                                ": arrays and objects nested deeper than 64 levels (a graph needs 4)");
}

// ---------------------------------------------------------------------------------------
// Top level

TEST_CASE("jobs and entities are required", "[submit][graph][errors]") {
  CHECK(error_of(R"({"entities": []})") == R"(graph.json: top level: missing required field "jobs")");
  CHECK(error_of(R"({"jobs": []})") == R"(graph.json: top level: missing required field "entities")");
}

TEST_CASE("top-level fields have their types", "[submit][graph][errors]") {
  CHECK(error_of(R"({"entities": [], "jobs": {}})") ==
        R"(graph.json: top level: field "jobs": must be an array, got an object)");
  CHECK(error_of(R"({"entities": "gfx", "jobs": []})") ==
        R"(graph.json: top level: field "entities": must be an array, got the string "gfx")");
  CHECK(error_of(R"({"scheduler": [], "entities": [], "jobs": []})") ==
        R"(graph.json: top level: field "scheduler": must be an object, got an array)");
  CHECK(error_of(R"({"scheduler": null, "entities": [], "jobs": []})") ==
        R"(graph.json: top level: field "scheduler": must be an object, got null)");
  CHECK(error_of(with_jobs("", R"(, "actions": {})")) ==
        R"(graph.json: top level: field "actions": must be an array, got an object)");
}

TEST_CASE("unknown top-level field", "[submit][graph][errors]") {
  CHECK(error_of(R"({"entities": [], "jobs": [], "job": []})") ==
        R"(graph.json: top level: unknown field "job"; known fields: scheduler, entities, jobs, actions)");
}

// ---------------------------------------------------------------------------------------
// Duplicate keys

TEST_CASE("a duplicate key is an error wherever it is", "[submit][graph][errors]") {
  CHECK(error_of(R"({"entities": [], "jobs": [], "jobs": []})") ==
        R"(graph.json: top level: duplicate key "jobs")");
  CHECK(error_of(R"({"scheduler": {"mode": "shared_ring", "mode": "ring_per_entity"},
                     "entities": [], "jobs": []})") == R"(graph.json: scheduler: duplicate key "mode")");
  CHECK(error_of(
            R"({"entities": [{"name": "gfx"}, {"name": "bg", "priority": "low", "priority": "high"}],
                     "jobs": []})") == R"(graph.json: entities[1] (name "bg"): duplicate key "priority")");
  CHECK(error_of(with_jobs(R"({"id": "a", "entity": "gfx"},
                              {"id": "b", "entity": "gfx", "credits": 1, "credits": 1})")) ==
        R"(graph.json: jobs[1] (id "b"): duplicate key "credits")");
  // Which of two ids is meant is unknown, so the job is named by its index alone.
  CHECK(error_of(with_jobs(R"({"id": "a", "id": "b", "entity": "gfx"})")) ==
        R"(graph.json: jobs[0]: duplicate key "id")");
  CHECK(error_of(with_jobs(R"({"id": "a", "entity": "gfx", "deps": ["x", {"k": 1, "k": 2}]})")) ==
        R"(graph.json: jobs[0] (id "a"): deps[1]: duplicate key "k")");
  CHECK(error_of(with_jobs("", R"(, "actions": [{"at_us": 1, "at_us": 2, "kill": "gfx"}])")) ==
        R"(graph.json: actions[0]: duplicate key "at_us")");
}

TEST_CASE("the same key in different objects is not a duplicate", "[submit][graph]") {
  CHECK(error_of(with_jobs(R"({"id": "a", "entity": "gfx"}, {"id": "b", "entity": "gfx"})")) == "(accepted)");
}

// ---------------------------------------------------------------------------------------
// Scheduler

TEST_CASE("unknown scheduler field", "[submit][graph][errors]") {
  CHECK(
      error_of(R"({"scheduler": {"credits": 2}, "entities": [], "jobs": []})") ==
      R"(graph.json: scheduler: unknown field "credits"; known fields: mode, credit_limit, timeout_us, policy, rings, pipeline)");
}

TEST_CASE("scheduler field pipeline is true or false, false when absent", "[submit][graph]") {
  CHECK_FALSE(parse_graph(R"({"entities": [], "jobs": []})", "g.json").scheduler.pipeline);
  CHECK(parse_graph(R"({"scheduler": {"pipeline": true}, "entities": [], "jobs": []})", "g.json")
            .scheduler.pipeline);
  CHECK_FALSE(parse_graph(R"({"scheduler": {"pipeline": false}, "entities": [], "jobs": []})", "g.json")
                  .scheduler.pipeline);
  CHECK(error_of(R"({"scheduler": {"pipeline": 1}, "entities": [], "jobs": []})") ==
        R"(graph.json: scheduler: field "pipeline": must be true or false, got 1)");
  CHECK(error_of(R"({"scheduler": {"pipeline": "yes"}, "entities": [], "jobs": []})") ==
        R"(graph.json: scheduler: field "pipeline": must be true or false, got the string "yes")");
}

TEST_CASE("bad scheduler mode and policy", "[submit][graph][errors]") {
  CHECK(
      error_of(R"({"scheduler": {"mode": "shared"}, "entities": [], "jobs": []})") ==
      R"(graph.json: scheduler: field "mode": must be one of "shared_ring", "ring_per_entity"; got the string "shared")");
  CHECK(error_of(R"({"scheduler": {"mode": 1}, "entities": [], "jobs": []})") ==
        R"(graph.json: scheduler: field "mode": must be one of "shared_ring", "ring_per_entity"; got 1)");
  CHECK(
      error_of(R"({"scheduler": {"policy": "FIFO"}, "entities": [], "jobs": []})") ==
      R"(graph.json: scheduler: field "policy": must be one of "fifo", "rr", "fair", "deadline"; got the string "FIFO")");
}

TEST_CASE("scheduler integers have their ranges", "[submit][graph][errors]") {
  CHECK(error_of(R"({"scheduler": {"credit_limit": 0}, "entities": [], "jobs": []})") ==
        R"(graph.json: scheduler: field "credit_limit": must be an integer between 1 and 4294967295, got 0)");
  CHECK(
      error_of(R"({"scheduler": {"credit_limit": 4294967296}, "entities": [], "jobs": []})") ==
      R"(graph.json: scheduler: field "credit_limit": must be an integer between 1 and 4294967295, got 4294967296)");
  CHECK(
      error_of(R"({"scheduler": {"timeout_us": 0}, "entities": [], "jobs": []})") ==
      R"(graph.json: scheduler: field "timeout_us": must be an integer between 1 and 1000000000000000, got 0)");
  CHECK(
      error_of(R"({"scheduler": {"timeout_us": null}, "entities": [], "jobs": []})") ==
      R"(graph.json: scheduler: field "timeout_us": must be an integer between 1 and 1000000000000000, got null)");
  CHECK(error_of(R"({"scheduler": {"rings": 0}, "entities": [], "jobs": []})") ==
        R"(graph.json: scheduler: field "rings": must be an integer between 1 and 1024, got 0)");
  CHECK(error_of(R"({"scheduler": {"rings": 1025}, "entities": [], "jobs": []})") ==
        R"(graph.json: scheduler: field "rings": must be an integer between 1 and 1024, got 1025)");
}

TEST_CASE("several rings only with a shared ring", "[submit][graph][errors]") {
  CHECK(
      error_of(R"({"scheduler": {"mode": "ring_per_entity", "rings": 2}, "entities": [], "jobs": []})") ==
      R"(graph.json: scheduler: field "rings": 2 rings need mode "shared_ring", mode is "ring_per_entity")");
  // The check does not depend on the order of the fields.
  CHECK(
      error_of(R"({"scheduler": {"rings": 2, "mode": "ring_per_entity"}, "entities": [], "jobs": []})") ==
      R"(graph.json: scheduler: field "rings": 2 rings need mode "shared_ring", mode is "ring_per_entity")");
}

// ---------------------------------------------------------------------------------------
// Entities

TEST_CASE("entity fields are checked", "[submit][graph][errors]") {
  CHECK(error_of(R"({"entities": [{"name": "gfx", "prio": "high"}], "jobs": []})") ==
        R"(graph.json: entities[0] (name "gfx"): unknown field "prio"; known fields: name, priority, rings)");
  CHECK(error_of(R"({"entities": [{"priority": "high"}], "jobs": []})") ==
        R"(graph.json: entities[0]: missing required field "name")");
  CHECK(error_of(R"({"entities": [{"name": ""}], "jobs": []})") ==
        R"(graph.json: entities[0]: field "name": must be a non-empty string, got an empty string)");
  CHECK(error_of(R"({"entities": [{"name": 7}], "jobs": []})") ==
        R"(graph.json: entities[0]: field "name": must be a non-empty string, got 7)");
  CHECK(error_of(R"({"entities": ["gfx"], "jobs": []})") ==
        R"(graph.json: entities[0]: must be an object, got the string "gfx")");
}

TEST_CASE("bad priority", "[submit][graph][errors]") {
  CHECK(
      error_of(R"({"entities": [{"name": "gfx", "priority": "urgent"}], "jobs": []})") ==
      R"(graph.json: entities[0] (name "gfx"): field "priority": must be one of "kernel", "high", "normal", "low"; got the string "urgent")");
  CHECK(
      error_of(R"({"entities": [{"name": "gfx", "priority": 0}], "jobs": []})") ==
      R"(graph.json: entities[0] (name "gfx"): field "priority": must be one of "kernel", "high", "normal", "low"; got 0)");
}

TEST_CASE("an entity's rings: distinct ring indices of the shared rings", "[submit][graph][errors]") {
  const auto with_rings = [](std::string_view rings, std::string_view scheduler = R"({"rings": 2})") {
    return error_of(R"({"scheduler": )" + std::string(scheduler) +
                    R"(, "entities": [{"name": "copy", "rings": )" + std::string(rings) +
                    "}], \"jobs\": []}");
  };
  CHECK(with_rings("[1]") == "(accepted)");
  CHECK(with_rings("[1, 0]") == "(accepted)");
  CHECK(with_rings("[0]", "{}") == "(accepted)");  // one ring: ring 0 is every ring
  CHECK(with_rings("[]") ==
        R"(graph.json: entities[0] (name "copy"): field "rings": an empty ring set: name at least one ring)");
  CHECK(
      with_rings("[0, 2]") ==
      R"(graph.json: entities[0] (name "copy"): field "rings[1]": must be a ring index from 0 to 1 (scheduler.rings is 2), got 2)");
  CHECK(
      with_rings("[1]", "{}") ==
      R"(graph.json: entities[0] (name "copy"): field "rings[0]": must be a ring index from 0 to 0 (scheduler.rings is 1), got 1)");
  CHECK(
      with_rings("[-1]") ==
      R"(graph.json: entities[0] (name "copy"): field "rings[0]": must be a ring index from 0 to 1 (scheduler.rings is 2), got -1)");
  CHECK(
      with_rings(R"(["1"])") ==
      R"(graph.json: entities[0] (name "copy"): field "rings[0]": must be a ring index from 0 to 1 (scheduler.rings is 2), got the string "1")");
  CHECK(
      with_rings("[1.0]") ==
      R"(graph.json: entities[0] (name "copy"): field "rings[0]": must be a ring index from 0 to 1 (scheduler.rings is 2), got 1.0)");
  CHECK(
      with_rings("[1, 0, 1]") ==
      R"(graph.json: entities[0] (name "copy"): field "rings[2]": ring 1 is named twice (first at rings[0]))");
  CHECK(with_rings("1") ==
        R"(graph.json: entities[0] (name "copy"): field "rings": must be an array, got 1)");
  CHECK(
      with_rings("[0]", R"({"mode": "ring_per_entity"})") ==
      R"(graph.json: entities[0] (name "copy"): field "rings": ring affinity needs mode "shared_ring", mode is "ring_per_entity" (each entity has its own ring))");
}

TEST_CASE("duplicate entity name", "[submit][graph][errors]") {
  CHECK(
      error_of(R"({"entities": [{"name": "gfx"}, {"name": "bg"}, {"name": "gfx"}], "jobs": []})") ==
      R"(graph.json: entities[2] (name "gfx"): field "name": duplicate entity "gfx" (first at entities[0]))");
}

// ---------------------------------------------------------------------------------------
// Jobs: fields

TEST_CASE("unknown job field", "[submit][graph][errors]") {
  CHECK(job_error_of(R"("durration_us": 5)") ==
        R"(graph.json: jobs[0] (id "a"): unknown field "durration_us"; )" + std::string(known_job_fields));
}

TEST_CASE("job id and entity are required", "[submit][graph][errors]") {
  CHECK(error_of(with_jobs(R"({"entity": "gfx"})")) == R"(graph.json: jobs[0]: missing required field "id")");
  CHECK(error_of(with_jobs(R"({"id": "a", "entity": "gfx"}, {"id": "b"})")) ==
        R"(graph.json: jobs[1] (id "b"): missing required field "entity")");
  CHECK(error_of(with_jobs(R"({"id": "", "entity": "gfx"})")) ==
        R"(graph.json: jobs[0]: field "id": must be a non-empty string, got an empty string)");
  CHECK(error_of(with_jobs(R"({"id": 1, "entity": "gfx"})")) ==
        R"(graph.json: jobs[0]: field "id": must be a non-empty string, got 1)");
  CHECK(error_of(with_jobs(R"([])")) == R"(graph.json: jobs[0]: must be an object, got an array)");
}

TEST_CASE("wrong types name the field and the expected type", "[submit][graph][errors]") {
  CHECK(
      job_error_of(R"("duration_us": "1000")") ==
      R"(graph.json: jobs[0] (id "a"): field "duration_us": must be an integer between 0 and 1000000000000000, got the string "1000")");
  CHECK(
      job_error_of(R"("credits": true)") ==
      R"(graph.json: jobs[0] (id "a"): field "credits": must be an integer between 1 and 4294967295, got true)");
  CHECK(
      job_error_of(R"("submit_at_us": [1])") ==
      R"(graph.json: jobs[0] (id "a"): field "submit_at_us": must be an integer between 0 and 1000000000000000, got an array)");
  CHECK(
      job_error_of(R"("deadline_us": {})") ==
      R"(graph.json: jobs[0] (id "a"): field "deadline_us": must be an integer between 0 and 1000000000000000, got an object)");
  CHECK(job_error_of(R"("deps": "b")") ==
        R"(graph.json: jobs[0] (id "a"): field "deps": must be an array, got the string "b")");
  CHECK(job_error_of(R"("deps": [3])") ==
        R"(graph.json: jobs[0] (id "a"): field "deps[0]": must be a string (a job id), got 3)");
  CHECK(error_of(with_jobs(R"({"id": "a", "entity": null})")) ==
        R"(graph.json: jobs[0] (id "a"): field "entity": must be a non-empty string, got null)");
}

TEST_CASE("negative numbers are rejected", "[submit][graph][errors]") {
  CHECK(
      job_error_of(R"("duration_us": -1)") ==
      R"(graph.json: jobs[0] (id "a"): field "duration_us": must be an integer between 0 and 1000000000000000, got -1)");
  CHECK(
      job_error_of(R"("submit_at_us": -50)") ==
      R"(graph.json: jobs[0] (id "a"): field "submit_at_us": must be an integer between 0 and 1000000000000000, got -50)");
}

TEST_CASE("floats are rejected, even whole ones", "[submit][graph][errors]") {
  CHECK(
      job_error_of(R"("duration_us": 1.5)") ==
      R"(graph.json: jobs[0] (id "a"): field "duration_us": must be an integer between 0 and 1000000000000000, got 1.5)");
  CHECK(
      job_error_of(R"("duration_us": 1.0)") ==
      R"(graph.json: jobs[0] (id "a"): field "duration_us": must be an integer between 0 and 1000000000000000, got 1.0)");
  CHECK(
      job_error_of(R"("deadline_us": 1e3)") ==
      R"(graph.json: jobs[0] (id "a"): field "deadline_us": must be an integer between 0 and 1000000000000000, got 1000.0)");
}

TEST_CASE("numbers too big are rejected", "[submit][graph][errors]") {
  CHECK(
      job_error_of(R"("duration_us": 1000000000000001)") ==
      R"(graph.json: jobs[0] (id "a"): field "duration_us": must be an integer between 0 and 1000000000000000, got 1000000000000001)");
  CHECK(
      job_error_of(R"("submit_at_us": 18446744073709551615)") ==
      R"(graph.json: jobs[0] (id "a"): field "submit_at_us": must be an integer between 0 and 1000000000000000, got 18446744073709551615)");
  // Beyond 2^64 nlohmann makes it a double.
  CHECK(
      job_error_of(R"("submit_at_us": 18446744073709551616)") ==
      R"(graph.json: jobs[0] (id "a"): field "submit_at_us": must be an integer between 0 and 1000000000000000, got 1.8446744073709552e+19)");
  CHECK(
      job_error_of(R"("credits": 4294967296)") ==
      R"(graph.json: jobs[0] (id "a"): field "credits": must be an integer between 1 and 4294967295, got 4294967296)");
}

TEST_CASE("unknown entity", "[submit][graph][errors]") {
  CHECK(error_of(with_jobs(R"({"id": "a", "entity": "gfx"}, {"id": "b", "entity": "audio"})")) ==
        R"(graph.json: jobs[1] (id "b"): field "entity": unknown entity "audio")");
}

TEST_CASE("duplicate job id", "[submit][graph][errors]") {
  CHECK(error_of(with_jobs(R"({"id": "a", "entity": "gfx"}, {"id": "b", "entity": "gfx"},
                              {"id": "a", "entity": "bg"})")) ==
        R"(graph.json: jobs[2] (id "a"): field "id": duplicate job id "a" (first at jobs[0]))");
}

TEST_CASE("credits above the credit limit", "[submit][graph][errors]") {
  CHECK(job_error_of(R"("credits": 2)") ==
        R"(graph.json: jobs[0] (id "a"): field "credits": 2 exceeds scheduler.credit_limit 1)");
  CHECK(
      job_error_of(R"("credits": 0)") ==
      R"(graph.json: jobs[0] (id "a"): field "credits": must be an integer between 1 and 4294967295, got 0)");
}

TEST_CASE("bad fault strings", "[submit][graph][errors]") {
  const std::string place = R"(graph.json: jobs[0] (id "a"): field "fault": )";
  const std::string slow_range = "<us> must be a decimal integer between 0 and 1000000000000000";
  CHECK(job_error_of(R"("fault": "error:")") == place + R"("error:" needs an errno name, e.g. "error:EIO")");
  CHECK(job_error_of(R"("fault": "error:NOPE")") == place + R"(unknown errno name "NOPE" in "error:NOPE")");
  CHECK(job_error_of(R"("fault": "error:eio")") == place + R"(unknown errno name "eio" in "error:eio")");
  CHECK(job_error_of(R"("fault": "slow:")") == place + R"(in "slow:", )" + slow_range);
  CHECK(job_error_of(R"("fault": "slow:-1")") == place + R"(in "slow:-1", )" + slow_range);
  CHECK(job_error_of(R"("fault": "slow:+1")") == place + R"(in "slow:+1", )" + slow_range);
  CHECK(job_error_of(R"("fault": "slow:12x")") == place + R"(in "slow:12x", )" + slow_range);
  CHECK(job_error_of(R"("fault": "slow: 12")") == place + R"(in "slow: 12", )" + slow_range);
  CHECK(job_error_of(R"("fault": "slow:1000000000000001")") ==
        place + R"(in "slow:1000000000000001", )" + slow_range);
  CHECK(job_error_of(R"("fault": "slow:99999999999999999999999")") ==
        place + R"(in "slow:99999999999999999999999", )" + slow_range);
  CHECK(
      job_error_of(R"("fault": "hang2")") ==
      place +
          R"(must be "hang", "error:<ERRNO name>", "slow:<us>" or "throw:<message>"; got the string "hang2")");
  CHECK(job_error_of(R"("fault": "")") ==
        place +
            R"(must be "hang", "error:<ERRNO name>", "slow:<us>" or "throw:<message>"; got an empty string)");
  CHECK(job_error_of(R"("fault": null)") ==
        place + R"(must be "hang", "error:<ERRNO name>", "slow:<us>" or "throw:<message>"; got null)");
  CHECK(
      job_error_of(R"("fault": "throw")") ==
      place +
          R"(must be "hang", "error:<ERRNO name>", "slow:<us>" or "throw:<message>"; got the string "throw")");
}

TEST_CASE("fault throw:<message>: the body throws the message once its dependencies have signalled",
          "[submit][graph]") {
  const auto g = parse_graph(R"({"entities": [{"name": "e"}], "jobs": [
      {"id": "a", "entity": "e", "fault": "throw:no such texture"},
      {"id": "b", "entity": "e", "fault": "throw:"}]})",
                             "graph.json");
  CHECK(g.jobs[0].fault.kind == fault_kind::body_throws);
  CHECK(g.jobs[0].fault.throw_message() == "no such texture");
  CHECK(g.jobs[0].fault.text == "throw:no such texture");
  CHECK(g.jobs[1].fault.kind == fault_kind::body_throws);
  CHECK(g.jobs[1].fault.throw_message().empty());
}

// ---------------------------------------------------------------------------------------
// Jobs: dependencies

TEST_CASE("unknown dependency", "[submit][graph][errors]") {
  CHECK(error_of(
            with_jobs(R"({"id": "a", "entity": "gfx"}, {"id": "b", "entity": "bg", "deps": ["a", "zz"]})")) ==
        R"(graph.json: jobs[1] (id "b"): field "deps": unknown job "zz")");
}

TEST_CASE("self-dependency", "[submit][graph][errors]") {
  CHECK(error_of(with_jobs(R"({"id": "a", "entity": "gfx", "deps": ["a"]})")) ==
        R"(graph.json: jobs[0] (id "a"): field "deps": the job depends on itself)");
}

TEST_CASE("dependency on a job pushed later", "[submit][graph][errors]") {
  CHECK(
      error_of(with_jobs(R"({"id": "a", "entity": "gfx", "deps": ["b"]}, {"id": "b", "entity": "bg"})")) ==
      R"(graph.json: jobs[0] (id "a"): field "deps": depends on job "b" (jobs[1]), which is pushed later: same submit_at_us 0, later in the file)");
  CHECK(
      error_of(with_jobs(R"({"id": "b", "entity": "bg", "submit_at_us": 20},
                              {"id": "a", "entity": "gfx", "submit_at_us": 10, "deps": ["b"]})")) ==
      R"(graph.json: jobs[1] (id "a"): field "deps": depends on job "b" (jobs[0], submit_at_us 20), which is pushed later than this job (submit_at_us 10))");
}

TEST_CASE("a dependency cycle is reported as a cycle", "[submit][graph][errors]") {
  CHECK(error_of(with_jobs(R"({"id": "a", "entity": "gfx", "deps": ["b"]},
                              {"id": "b", "entity": "bg", "deps": ["a"]})")) ==
        R"(graph.json: jobs[0] (id "a"): dependency cycle: "a" -> "b" -> "a")");
  // The search enters the cycle at "q"; the report starts at the cycle's first job in the file.
  CHECK(error_of(with_jobs(R"({"id": "s", "entity": "gfx", "deps": ["q"]},
                              {"id": "p", "entity": "bg", "deps": ["q"]},
                              {"id": "q", "entity": "gfx", "deps": ["p"]})")) ==
        R"(graph.json: jobs[1] (id "p"): dependency cycle: "p" -> "q" -> "p")");
}

TEST_CASE("a cycle through an entity's FIFO order", "[submit][graph][errors]") {
  // y waits for x, pushed just before it on gfx; x lists y.
  CHECK(error_of(with_jobs(R"({"id": "x", "entity": "gfx", "deps": ["y"]},
                              {"id": "y", "entity": "gfx"})")) ==
        R"(graph.json: jobs[0] (id "x"): dependency cycle: "x" -> "y" => "x")" + std::string(cycle_legend));
  // Across two entities, each contributing one FIFO edge.
  CHECK(error_of(with_jobs(R"({"id": "g1", "entity": "gfx", "deps": ["b2"]},
                              {"id": "g2", "entity": "gfx"},
                              {"id": "b1", "entity": "bg", "deps": ["g2"]},
                              {"id": "b2", "entity": "bg"})")) ==
        R"(graph.json: jobs[0] (id "g1"): dependency cycle: "g1" -> "b2" => "b1" -> "g2" => "g1")" +
            std::string(cycle_legend));
}

TEST_CASE("the FIFO order is the push order, not the file order", "[submit][graph][errors]") {
  // y is pushed first, so x waits for y on gfx; y listing x closes a cycle.
  CHECK(error_of(with_jobs(R"({"id": "x", "entity": "gfx", "submit_at_us": 10},
                              {"id": "y", "entity": "gfx", "deps": ["x"]})")) ==
        R"(graph.json: jobs[0] (id "x"): dependency cycle: "x" => "y" -> "x")" + std::string(cycle_legend));
}

TEST_CASE("repeated deps are allowed", "[submit][graph]") {
  const graph g = parse_graph(
      with_jobs(R"({"id": "a", "entity": "gfx"}, {"id": "b", "entity": "gfx", "deps": ["a", "a"]})"),
      "g.json");
  CHECK(g.jobs[1].deps == std::vector<std::size_t>{0, 0});
}

// ---------------------------------------------------------------------------------------
// Actions

TEST_CASE("action fields are checked", "[submit][graph][errors]") {
  CHECK(error_of(with_jobs("", R"(, "actions": [{"at_us": 5}])")) ==
        R"(graph.json: actions[0]: no action: expected the field "kill" or "set_rings")");
  CHECK(error_of(with_jobs("", R"(, "actions": [{"at_us": 5, "kill": "gfx", "stop": "bg"}])")) ==
        R"(graph.json: actions[0]: unknown field "stop"; known fields: at_us, kill, set_rings, rings)");
  CHECK(error_of(with_jobs("", R"(, "actions": [{"kill": "gfx"}])")) ==
        R"(graph.json: actions[0]: missing required field "at_us")");
  CHECK(
      error_of(with_jobs("", R"(, "actions": [{"at_us": -1, "kill": "gfx"}])")) ==
      R"(graph.json: actions[0]: field "at_us": must be an integer between 0 and 1000000000000000, got -1)");
  CHECK(error_of(with_jobs("", R"(, "actions": [{"at_us": 1, "kill": ["gfx"]}])")) ==
        R"(graph.json: actions[0]: field "kill": must be a non-empty string, got an array)");
  CHECK(error_of(with_jobs("", R"(, "actions": [1])")) ==
        R"(graph.json: actions[0]: must be an object, got 1)");
}

TEST_CASE("set_rings actions are read in file order, with their entity and rings as written",
          "[submit][graph]") {
  const graph g = parse_graph(
      R"({"scheduler": {"rings": 3}, "entities": [{"name": "copy"}, {"name": "gfx", "rings": [0]}], "jobs": [],
          "actions": [{"at_us": 9, "set_rings": "gfx", "rings": [2, 1]}, {"at_us": 9, "kill": "copy"},
                      {"at_us": 1, "set_rings": "copy", "rings": [0]}]})",
      "g.json");
  REQUIRE(g.actions.size() == 3);
  CHECK(g.actions[0].kind == action_kind::set_rings);
  CHECK(g.actions[0].entity == 1);
  CHECK(g.actions[0].rings == std::vector<std::size_t>{2, 1});
  CHECK(g.actions[1].kind == action_kind::kill);
  CHECK(g.actions[2].at_us == 1);
  CHECK(g.actions[2].rings == std::vector<std::size_t>{0});
}

TEST_CASE("set_rings actions are checked, naming the entity", "[submit][graph][errors]") {
  const auto with_action = [](std::string_view action, std::string_view scheduler = R"({"rings": 2})") {
    return error_of(
        R"({"scheduler": )" + std::string(scheduler) +
        R"(, "entities": [{"name": "copy"}], "jobs": [], "actions": [{"at_us": 5, "kill": "copy"}, )" +
        std::string(action) + "]}");
  };
  CHECK(with_action(R"({"at_us": 5, "set_rings": "copy", "rings": [1]})") == "(accepted)");
  CHECK(with_action(R"({"at_us": 5, "set_rings": "copy"})") ==
        R"(graph.json: actions[1] (set_rings "copy"): missing required field "rings")");
  CHECK(
      with_action(R"({"at_us": 5, "set_rings": "copy", "rings": []})") ==
      R"(graph.json: actions[1] (set_rings "copy"): field "rings": an empty ring set: name at least one ring)");
  CHECK(
      with_action(R"({"at_us": 5, "set_rings": "copy", "rings": [0, 7]})") ==
      R"(graph.json: actions[1] (set_rings "copy"): field "rings[1]": must be a ring index from 0 to 1 (scheduler.rings is 2), got 7)");
  CHECK(
      with_action(R"({"at_us": 5, "set_rings": "copy", "rings": [0, 0]})") ==
      R"(graph.json: actions[1] (set_rings "copy"): field "rings[1]": ring 0 is named twice (first at rings[0]))");
  CHECK(
      with_action(R"({"at_us": 5, "set_rings": "copy", "rings": [0]})", R"({"mode": "ring_per_entity"})") ==
      R"(graph.json: actions[1] (set_rings "copy"): field "rings": ring affinity needs mode "shared_ring", mode is "ring_per_entity" (each entity has its own ring))");
  CHECK(with_action(R"({"at_us": 5, "set_rings": "audio", "rings": [0]})") ==
        R"(graph.json: actions[1]: field "set_rings": unknown entity "audio")");
  CHECK(with_action(R"({"at_us": 5, "set_rings": "", "rings": [0]})") ==
        R"(graph.json: actions[1]: field "set_rings": must be a non-empty string, got an empty string)");
  CHECK(with_action(R"({"at_us": 5, "kill": "copy", "rings": [0]})") ==
        R"(graph.json: actions[1]: field "rings": belongs to a "set_rings" action, not to "kill")");
  CHECK(with_action(R"({"at_us": 5, "kill": "copy", "set_rings": "copy", "rings": [0]})") ==
        R"(graph.json: actions[1]: both "kill" and "set_rings": an action does one thing)");
}

TEST_CASE("kill of an unknown entity", "[submit][graph][errors]") {
  CHECK(error_of(
            with_jobs("", R"(, "actions": [{"at_us": 5, "kill": "gfx"}, {"at_us": 6, "kill": "audio"}])")) ==
        R"(graph.json: actions[1]: field "kill": unknown entity "audio")");
}

// ---------------------------------------------------------------------------------------
// Messages stay one line

TEST_CASE("names in messages are escaped and cut", "[submit][graph][errors]") {
  CHECK(error_of(with_jobs(R"({"id": "a\nb", "entity": "nope\t"})")) ==
        R"(graph.json: jobs[0] (id "a\u000ab"): field "entity": unknown entity "nope\u0009")");
  // C1 controls too (U+0085, NEL, is a line break on some terminals); other characters stay.
  CHECK(error_of(with_jobs(R"({"id": "a\u0085b\u00e9", "entity": "nope"})")) ==
        "graph.json: jobs[0] (id \"a\\u0085b\u00e9\"): field \"entity\": unknown entity \"nope\"");
  const std::string long_id(100, 'x');
  CHECK(error_of(with_jobs(R"({"id": ")" + long_id + R"(", "entity": "gfx", "credits": 2})")) ==
        R"(graph.json: jobs[0] (id ")" + std::string(64, 'x') +
            R"("...): field "credits": 2 exceeds scheduler.credit_limit 1)");
}
