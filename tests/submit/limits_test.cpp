// cosched-submit at the edges of its input: times that add up close to the limit of a
// run, and past it. Every graph is either rejected with one message naming the job and
// its field, or run with exact figures.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "catch.hpp"
#include "submit/generate.hpp"
#include "submit/graph.hpp"
#include "submit/runner.hpp"

namespace {

using namespace cosched::submit;

std::string error_of(std::string_view text) {
  try {
    parse_graph(text, "graph.json");
  } catch (const input_error& error) {
    return error.what();
  }
  return "(accepted)";
}

/// `count` jobs "j0", "j1", ... on the entity "e", each with `fields` (starting with a comma).
std::string jobs_graph(std::size_t count, std::string_view fields, std::string_view scheduler = "{}",
                       std::string_view rest = "") {
  std::string text =
      R"({"scheduler": )" + std::string(scheduler) + R"(, "entities": [{"name": "e"}], "jobs": [)";
  for (std::size_t i = 0; i < count; ++i) {
    if (i > 0) text += ", ";
    text += R"({"id": "j)" + std::to_string(i) + R"(", "entity": "e")" + std::string(fields) + "}";
  }
  return text + "]" + std::string(rest) + "}";
}

constexpr std::string_view e15 = "1000000000000000";

}  // namespace

TEST_CASE("times that add up past the limit of a run are unusable input", "[submit][limits]") {
  // 18447 jobs of 1e15 us reach 2^64 us: the virtual clock wrapped ("event in the past"
  // abort with a timeout; a fault-free job failed `exception` without one).
  const std::string duration = R"(, "duration_us": )" + std::string(e15);
  CHECK(
      error_of(jobs_graph(18447, duration)) ==
      R"(graph.json: jobs[4] (id "j4"): field "duration_us": the run could last until 5000000000000000 us, )"
      "past the limit of 4000000000000000 us: the latest submit_at_us or at_us plus timeout_us (0) plus the "
      "ring time of jobs[0] to this one, run one after another");
  // The latest push and the timeout count; a hang takes the timeout, a slow command
  // its own time.
  CHECK(
      error_of(jobs_graph(3, duration, R"({"timeout_us": 1000000000000000})",
                          R"(, "actions": [{"at_us": 1000000000000000, "kill": "e"}])")) ==
      R"(graph.json: jobs[2] (id "j2"): field "duration_us": the run could last until 5000000000000000 us, )"
      "past the limit of 4000000000000000 us: the latest submit_at_us or at_us plus timeout_us "
      "(2000000000000000) plus the ring time of jobs[0] to this one, run one after another");
  CHECK(error_of(jobs_graph(4, R"(, "fault": "hang")", R"({"timeout_us": 1000000000000000})")) ==
        R"(graph.json: jobs[3] (id "j3"): field "fault": the run could last until 5000000000000000 us, )"
        "past the limit of 4000000000000000 us: the latest submit_at_us or at_us plus timeout_us "
        "(1000000000000000) plus the ring time of jobs[0] to this one, run one after another");
  // One microsecond over the limit.
  CHECK(
      error_of(jobs_graph(5, R"(, "duration_us": 0, "fault": "slow:1000000000000000", "submit_at_us": 1)")) ==
      R"(graph.json: jobs[3] (id "j3"): field "fault": the run could last until 4000000000000001 us, )"
      "past the limit of 4000000000000000 us: the latest submit_at_us or at_us plus timeout_us (1) plus the "
      "ring time of jobs[0] to this one, run one after another");
  // A hang without a timeout never completes: it adds nothing.
  CHECK(error_of(jobs_graph(1000, R"(, "fault": "hang")")) == "(accepted)");
  // A command is cut at the timeout.
  CHECK(error_of(jobs_graph(6, duration, R"({"timeout_us": 500000000000000})")) == "(accepted)");
}

TEST_CASE("a graph exactly at the limit runs with exact figures", "[submit][limits]") {
  SECTION("four jobs of 1e15 us, with deadlines") {
    // Past about 9.2e15 us the scheduler's clock in ns overflowed and deadline misses
    // were miscounted; at the limit every figure is exact.
    const graph g = parse_graph(
        jobs_graph(4, R"(, "duration_us": 1000000000000000, "deadline_us": 1000000000000000)"), "graph.json");
    CHECK(latest_instant_us(g) == max_run_us);
    const run_outcome outcome = run_virtual(g);
    REQUIRE(outcome.jobs.size() == 4);
    for (std::size_t i = 0; i < 4; ++i) {
      INFO(i);
      CHECK(outcome.jobs[i].error.empty());
      CHECK(outcome.jobs[i].scheduled_us ==
            std::optional<std::uint64_t>(i * 1'000'000'000'000'000));  // credit_limit 1
      CHECK(outcome.jobs[i].finished_us == std::optional<std::uint64_t>((i + 1) * 1'000'000'000'000'000));
    }
    CHECK(outcome.end_us == max_run_us);
    CHECK(outcome.deadline_misses == 3);  // every job but the first finishes after 1e15
    CHECK_FALSE(outcome.shut_down_early);
  }
  SECTION("a timeout, a hang and replays") {
    // The hang times out at 2e15 (its start, 1e15, plus the timeout); b, queued behind
    // it, is replayed and finishes at 3e15.
    const graph g = parse_graph(R"({"scheduler": {"timeout_us": 1000000000000000, "credit_limit": 3},
        "entities": [{"name": "x"}, {"name": "y"}],
        "jobs": [{"id": "a", "entity": "x", "duration_us": 1000000000000000},
                 {"id": "h", "entity": "x", "fault": "hang"},
                 {"id": "b", "entity": "y", "duration_us": 1000000000000000}]})",
                                "graph.json");
    CHECK(latest_instant_us(g) == max_run_us);
    const run_outcome outcome = run_virtual(g);
    CHECK(outcome.jobs[0].error.empty());
    CHECK(outcome.jobs[0].finished_us == std::optional<std::uint64_t>(1'000'000'000'000'000));
    CHECK(outcome.jobs[1].error == "timed_out");
    CHECK(outcome.jobs[1].finished_us == std::optional<std::uint64_t>(2'000'000'000'000'000));
    CHECK(outcome.jobs[2].error.empty());
    CHECK(outcome.jobs[2].attempts == 2);
    CHECK(outcome.jobs[2].scheduled_us == std::optional<std::uint64_t>(2'000'000'000'000'000));
    CHECK(outcome.jobs[2].finished_us == std::optional<std::uint64_t>(3'000'000'000'000'000));
    CHECK(outcome.end_us == 3'000'000'000'000'000);
  }
}

TEST_CASE("generated graphs stay far below the limit", "[submit][limits][generate]") {
  // The largest spec: 1e7 jobs of at most 1e7 us, all pushed at 0: 1e14 us. Checked on
  // a spec's bound without generating ten million jobs.
  generate_spec spec = parse_generate_spec("jobs=1000,duration=10000000-10000000");
  const graph g = generate_graph(spec, 1);
  CHECK(latest_instant_us(g) == 10'000'000'000);
  CHECK_NOTHROW(check_run_length(g, "--generate"));
}

TEST_CASE("a NUL byte is malformed JSON, wherever it is", "[submit][limits][errors]") {
  using namespace std::string_literals;
  // nlohmann stops at a NUL: everything after it was ignored and the graph accepted.
  CHECK(error_of("{\"entities\": [], \"jobs\": []}\0{\"bad\""s) ==
        "graph.json: line 1, column 29: malformed JSON: a NUL byte, which JSON text cannot contain");
  CHECK(error_of("{\"entities\": [{\"name\": \"a\0b\"}], \"jobs\": []}"s) ==
        "graph.json: line 1, column 26: malformed JSON: a NUL byte, which JSON text cannot contain");
  CHECK(error_of("\0"s) ==
        "graph.json: line 1, column 1: malformed JSON: a NUL byte, which JSON text cannot contain");
  // An error before the NUL is reported as itself.
  CHECK(error_of("{\"entities\": [}\0"s) ==
        "graph.json: line 1, column 15: malformed JSON: syntax error while parsing value - unexpected '}'; "
        "expected '[', '{', or a literal");
}

TEST_CASE("messages escape malformed UTF-8 and control characters", "[submit][limits][errors]") {
  CHECK(error_of("{\"entities\": [{\"name\": \"\xff\xfe\"}], \"jobs\": []}") ==
        "graph.json: line 1, column 25: malformed JSON: syntax error while parsing value - invalid string: "
        "ill-formed UTF-8 byte; last read: '\"\\xff'");
  // An overlong form and a surrogate are ill-formed too.
  CHECK(error_of("{\"entities\": [{\"name\": \"\xc0\xaf\"}], \"jobs\": []}") ==
        "graph.json: line 1, column 25: malformed JSON: syntax error while parsing value - invalid string: "
        "ill-formed UTF-8 byte; last read: '\"\\xc0'");
  // The file name too: one line, whatever the name.
  try {
    load_graph("/nonexistent/a\nb\xff.json");
    FAIL("accepted");
  } catch (const input_error& e) {
    CHECK(std::string(e.what()) ==
          "/nonexistent/a\\x0ab\\xff.json: cannot read file: No such file or directory");
  }
}

TEST_CASE("printable keeps valid UTF-8 and escapes everything else", "[submit][limits]") {
  CHECK(printable("plain text, tabs\tand \"quotes\"") == "plain text, tabs\\x09and \"quotes\"");
  CHECK(printable("\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82") ==
        "\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82");
  CHECK(printable("\x7f\xc2\x85") == "\\x7f\\xc2\\x85");                    // DEL, a C1 control (U+0085)
  CHECK(printable("\xc2\xa0") == "\xc2\xa0");                               // U+00A0 is printable
  CHECK(printable("\xc0\x80\xe0\x80\x80") == "\\xc0\\x80\\xe0\\x80\\x80");  // overlong forms
  CHECK(printable("\xed\xa0\x80") == "\\xed\\xa0\\x80");                    // a surrogate
  CHECK(printable("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80");           // past U+10FFFF
  CHECK(printable("a\xe2\x82") == "a\\xe2\\x82");                           // cut short
  CHECK(printable(std::string_view("\0x", 2)) == "\\x00x");
}

namespace {

std::string spec_error_of(std::string_view text) {
  try {
    parse_generate_spec(text);
  } catch (const input_error& error) {
    return error.what();
  }
  return "(accepted)";
}

}  // namespace

TEST_CASE("a generate spec is read strictly and reported as written", "[submit][limits][generate]") {
  CHECK(spec_error_of("jobs=5,jobs=6") == R"(--generate: jobs=6: "jobs" is given twice (first jobs=5))");
  CHECK(spec_error_of("duration=1-2,entities=3,duration=1-2") ==
        R"(--generate: duration=1-2: "duration" is given twice (first duration=1-2))");
  // The whole part, not "duration=1".
  CHECK(spec_error_of("duration=5-1") ==
        "--generate: duration=5-1: MIN 5 is above MAX 1; expected MIN-MAX (microseconds), integers between 0 "
        "and "
        "10000000");
  CHECK(spec_error_of("duration=5") ==
        "--generate: duration=5: expected MIN-MAX (microseconds), integers between 0 and 10000000");
  CHECK(spec_error_of("duration=1-20000000") ==
        "--generate: duration=1-20000000: expected MIN-MAX (microseconds), integers between 0 and 10000000");
  CHECK(spec_error_of("duration=-1-5") ==
        "--generate: duration=-1-5: expected MIN-MAX (microseconds), integers between 0 and 10000000");
  CHECK(spec_error_of("jobs=-1") == "--generate: jobs=-1: must be an integer between 1 and 10000000");
  CHECK(spec_error_of("jobs=1e3") == "--generate: jobs=1e3: must be an integer between 1 and 10000000");
  CHECK(spec_error_of("jobs=18446744073709551616") ==
        "--generate: jobs=18446744073709551616: must be an integer between 1 and 10000000");
  for (const std::string_view fraction : {"nan", "inf", " 0.5", "+0.5", "0x1p-1", "0.5x", "1.01", "-0.1"}) {
    INFO(fraction);
    CHECK(spec_error_of("faults=" + std::string(fraction)) ==
          "--generate: faults=" + printable(fraction) + ": must be a number between 0 and 1");
  }
  CHECK(spec_error_of("jobs=5\xff") == "--generate: jobs=5\\xff: must be an integer between 1 and 10000000");
  CHECK(spec_error_of("jobs\n=5") ==
        R"(--generate: unknown key "jobs\x0a" (known: jobs, entities, deps, faults, duration, credits))");

  const generate_spec spec =
      parse_generate_spec("jobs=7,entities=2,deps=1,faults=0.25,duration=3-3,credits=4");
  CHECK(spec.jobs == 7);
  CHECK(spec.entities == 2);
  CHECK(spec.deps == 1);
  CHECK(spec.faults == 0.25);
  CHECK(spec.min_duration_us == 3);
  CHECK(spec.max_duration_us == 3);
  CHECK(spec.credit_limit == 4);
  CHECK(parse_generate_spec("duration=0-10000000").max_duration_us == 10'000'000);
}
