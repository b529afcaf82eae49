// The graph runner in real time: what its results say about when things happened.
#include <sys/resource.h>

#include <cerrno>
#include <cstddef>
#include <string>
#include <system_error>

#include "catch.hpp"
#include "submit/graph.hpp"
#include "submit/runner.hpp"

using namespace cosched::submit;

TEST_CASE("real time: a job's finished_us is when its fence signalled, never after a dependent was scheduled",
          "[submit][runner][real]") {
  // A chain over two entities: each job depends on the one before it, so each
  // is scheduled only once its dependency's finished fence has signalled.
  graph g;
  g.scheduler.credit_limit = 4;
  g.entities = {{"even", cosched::priority::normal}, {"odd", cosched::priority::normal}};
  constexpr std::size_t jobs = 1000;
  for (std::size_t i = 0; i < jobs; ++i) {
    job_spec job;
    job.id = "j" + std::to_string(i);
    job.entity = i % 2;
    job.duration_us = 10;
    if (i > 0) job.deps = {i - 1};
    g.jobs.push_back(job);
  }
  run_options options;
  options.clock = clock_kind::real_time;
  const auto outcome = run_graph(g, options);
  std::size_t before_dependency = 0;
  for (std::size_t i = 1; i < jobs; ++i) {
    const auto& job = outcome.jobs[i];
    const auto& dependency = outcome.jobs[i - 1];
    REQUIRE(job.error.empty());
    REQUIRE(job.scheduled_us);
    REQUIRE(dependency.finished_us);
    if (*job.scheduled_us < *dependency.finished_us) ++before_dependency;
  }
  CHECK(before_dependency == 0);
}

// Not in UBSan builds: with the descriptors exhausted, UBSan's own vptr check
// cannot open the pipe it reads memory through, and reports every virtual call
// as a bad object (the std::system_error that carries the error makes one).
#ifndef COSCHED_UBSAN
TEST_CASE("real time: a run that runs out of file descriptors reports the limit and shuts the scheduler down",
          "[submit][runner][real]") {
  // One real-time ring (an eventfd) per entity; far fewer descriptors than entities.
  graph g;
  g.scheduler.mode = ring_mode::ring_per_entity;
  for (std::size_t i = 0; i < 300; ++i) {
    g.entities.push_back({"e" + std::to_string(i), cosched::priority::normal});
    job_spec job;
    job.id = "j" + std::to_string(i);
    job.entity = i;
    job.duration_us = 10;
    g.jobs.push_back(job);
  }
  rlimit saved{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
  rlimit low = saved;
  low.rlim_cur = 64;
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
  std::string message;
  int error = 0;
  try {
    run_options options;
    options.clock = clock_kind::real_time;
    run_graph(g, options);
  } catch (const std::system_error& e) {
    message = e.what();
    error = e.code().value();
  }
  ::setrlimit(RLIMIT_NOFILE, &saved);
  CHECK(error == EMFILE);
  CHECK(message.find("RLIMIT_NOFILE soft limit 64") != std::string::npos);
}
#endif  // COSCHED_UBSAN
