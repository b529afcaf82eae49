// `--generate`'s faults=P: P is the share of jobs with a fault of their own, drawn
// apart from the graph's shape; the summaries tell failures by a job's own fault
// from failures by cascade (a failed dependency).
#include "submit/generate.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <sstream>
#include <string>
#include <vector>

#include "catch.hpp"
#include "submit/graph.hpp"
#include "submit/runner.hpp"

namespace {

using namespace cosched::submit;

std::vector<std::size_t> faulted_jobs(const graph& g) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < g.jobs.size(); ++i)
    if (g.jobs[i].fault.kind != fault_kind::none) out.push_back(i);
  return out;
}

/// Whether `count` is within five standard deviations of Binomial(n, p)'s mean.
bool binomially_plausible(std::size_t count, std::size_t n, double p) {
  const double mean = static_cast<double>(n) * p;
  const double deviation = std::sqrt(mean * (1.0 - p));
  return std::abs(static_cast<double>(count) - mean) <= 5.0 * deviation + 1.0;
}

/// Everything of a job but its fault.
bool same_shape(const job_spec& a, const job_spec& b) {
  return a.id == b.id && a.entity == b.entity && a.duration_us == b.duration_us && a.deps == b.deps &&
         a.credits == b.credits && a.submit_at_us == b.submit_at_us;
}

}  // namespace

TEST_CASE("generate faults=P gives each job a fault of its own with probability P", "[submit][generate]") {
  const std::size_t jobs = 100000;
  const std::uint64_t seed = 1;
  generate_spec spec;
  spec.jobs = jobs;
  spec.faults = 0.0;
  const graph none = generate_graph(spec, seed);
  CHECK(faulted_jobs(none).empty());

  std::vector<std::size_t> previous;  // the faulted jobs at the larger P
  for (const double p : {0.01, 0.001, 0.0001}) {
    INFO("faults=" << p);
    spec.faults = p;
    const graph g = generate_graph(spec, seed);
    const auto faulted = faulted_jobs(g);
    CHECK(binomially_plausible(faulted.size(), jobs, p));
    for (std::size_t i : faulted) CHECK(g.jobs[i].fault.text == "error:EIO");
    // The shape does not depend on P: the same graph as without faults, job for job.
    REQUIRE(g.jobs.size() == none.jobs.size());
    std::size_t same = 0;
    for (std::size_t i = 0; i < jobs; ++i) same += same_shape(g.jobs[i], none.jobs[i]);
    CHECK(same == jobs);
    REQUIRE(g.entities.size() == none.entities.size());
    for (std::size_t e = 0; e < g.entities.size(); ++e) CHECK(g.entities[e].prio == none.entities[e].prio);
    // A smaller P keeps a part of the larger one's faults, and fewer of them.
    if (!previous.empty()) {
      CHECK(faulted.size() < previous.size());
      for (std::size_t i : faulted) CHECK(std::binary_search(previous.begin(), previous.end(), i));
    }
    previous = faulted;
  }
  // The exact counts of this seed (mt19937_64 and std::seed_seq are specified).
  CHECK(previous.size() == 13);
  spec.faults = 1.0;
  CHECK(faulted_jobs(generate_graph(spec, seed)).size() == jobs);
}

TEST_CASE("generate without dependencies: every fault fails its own job and nothing else",
          "[submit][generate]") {
  const graph g = generate_graph(parse_generate_spec("jobs=20000,entities=4,deps=0,faults=0.01"), 5);
  const auto faulted = faulted_jobs(g);
  REQUIRE(!faulted.empty());
  const run_outcome outcome = run_virtual(g);
  std::size_t failed = 0;
  for (std::size_t i = 0; i < g.jobs.size(); ++i) {
    const bool has_fault = std::binary_search(faulted.begin(), faulted.end(), i);
    CHECK(outcome.jobs[i].error == (has_fault ? "EIO" : ""));
    CHECK_FALSE(outcome.jobs[i].cause.has_value());
    failed += !outcome.jobs[i].error.empty();
  }
  CHECK(failed == faulted.size());
  std::ostringstream summary;
  write_summary(summary, g, outcome);
  const std::string n = std::to_string(faulted.size());
  CHECK(summary.str().rfind("20000 jobs: " + std::to_string(20000 - faulted.size()) + " succeeded, " + n +
                                " failed (" + n + " by itself, 0 by cascade); last fence signalled at ",
                            0) == 0);
  CHECK(summary.str().find("\n" + n + " jobs have a fault of their own\n") != std::string::npos);
}

TEST_CASE("the summaries count failures by a job's own fault apart from failures by cascade",
          "[submit][generate]") {
  // a fails by its own fault; b depends on a, c on b (cascade, cause a); d is
  // independent and fails by its own fault; e has a fault too but depends on a,
  // so it fails by cascade before its fault can act.
  const graph g = parse_graph(R"({"entities": [{"name": "x"}, {"name": "y"}],
    "jobs": [ {"id": "a", "entity": "x", "fault": "error:EIO"},
              {"id": "b", "entity": "x", "deps": ["a"]},
              {"id": "c", "entity": "y", "deps": ["b"]},
              {"id": "d", "entity": "y", "fault": "error:ENOMEM"},
              {"id": "e", "entity": "y", "deps": ["a"], "fault": "error:EIO"},
              {"id": "f", "entity": "y"} ]})",
                              "graph.json");
  const run_outcome outcome = run_virtual(g);
  std::ostringstream text;
  write_summary(text, g, outcome);
  CHECK(text.str().rfind(
            "6 jobs: 1 succeeded, 5 failed (2 by itself, 3 by cascade); last fence signalled at ", 0) == 0);
  CHECK(text.str().find(
            "\n3 jobs have a fault of their own; 1 of them failed by cascade before it could act\n") !=
        std::string::npos);
  std::ostringstream results;
  write_results(results, g, outcome, "sim", "virtual");
  CHECK(results.str().find(
            R"({"summary": {"jobs": 6, "succeeded": 1, "failed": 5, "failed_by_itself": 2, )"
            R"("failed_by_cascade": 3, "jobs_with_fault": 3, "errors": {"EIO": 4, "ENOMEM": 1}, )") !=
        std::string::npos);
}
