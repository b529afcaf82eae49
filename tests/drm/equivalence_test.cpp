// The drm backend against the sim backend: in virtual time every graph (the
// bundled examples, the worked examples of DESIGN.md, generated graphs with
// faults, hangs, slow commands, timeouts and kills) gives exactly the same
// results and ring runs; in real time the outcomes that do not depend on timing agree.
//
// Environment: COSCHED_DRM_SEEDS=N runs the seeded random graphs 0..N-1 (default 300).
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "drm_fixture.hpp"
#include "random_graph.hpp"
#include "submit/generate.hpp"
#include "submit/graph.hpp"
#include "submit/runner.hpp"

using namespace cosched;
using namespace cosched::drm::test;
using namespace cosched::submit;

namespace {

const std::filesystem::path source_dir = COSCHED_SOURCE_DIR;

run_outcome run(const graph& g, const drm::device* dev, clock_kind clock = clock_kind::virtual_time) {
  run_options options;
  options.clock = clock;
  if (dev) {
    options.backend = backend_kind::drm;
    options.device = *dev;
  }
  return run_graph(g, options);
}

std::string results_text(const graph& g, const run_outcome& outcome, const char* backend) {
  std::ostringstream out;
  write_results(out, g, outcome, backend, "virtual");
  return out.str();
}

std::string runs_text(const run_outcome& outcome) {
  std::ostringstream out;
  for (const auto& r : outcome.runs) {
    out << "ring " << r.ring << " tag " << r.record.tag << " run_at " << r.record.run_at << " start "
        << r.record.start << " finishes " << r.record.finishes << " end " << r.record.end << "\n";
  }
  return out.str();
}

std::string graph_text(const graph& g) {
  std::ostringstream out;
  write_graph(out, g);
  return out.str();
}

// The results file of the drm run, with its backend name, equals the sim run's
// byte for byte but for that name; the ring runs (start and end times) too.
void check_same(const graph& g, const drm::device& dev, const std::string& name) {
  INFO(name);
  const auto simulated = run(g, nullptr);
  const auto on_drm = run(g, &dev);
  std::string drm_results = results_text(g, on_drm, "drm");
  const std::string sim_results = results_text(g, simulated, "sim");
  const std::string drm_name = "\"backend\": \"drm\"";
  const auto at = drm_results.rfind(drm_name);
  REQUIRE(at != std::string::npos);
  drm_results.replace(at, drm_name.size(), "\"backend\": \"sim\"");
  if (drm_results != sim_results || runs_text(on_drm) != runs_text(simulated)) {
    INFO("graph: " << graph_text(g));
    CHECK(drm_results == sim_results);
    CHECK(runs_text(on_drm) == runs_text(simulated));
  }
}

// Graphs of `cosched-submit --generate` (EIO faults, dependencies, priorities),
// made harder: pushes spread over time with many ties, zero-length commands,
// hangs, slow commands, multi-credit jobs, timeouts, ring_per_entity, kills,
// and (where this build runs them) other policies, several rings and deadlines.
graph generated_graph(std::uint64_t seed) {
  generate_spec spec;
  spec.jobs = 150;
  spec.entities = 5;
  spec.deps = 2;
  spec.faults = 0.08;
  spec.min_duration_us = 0;
  spec.max_duration_us = 400;
  spec.credit_limit = static_cast<std::uint32_t>(1 + seed % 4);
  graph g = generate_graph(spec, seed);
  std::mt19937_64 rng(seed * 7919 + 17);
  if (seed % 3 == 1) g.scheduler.mode = ring_mode::ring_per_entity;
  if (seed % 4 != 3) g.scheduler.timeout_us = 600 + rng() % 2400;
  std::uint64_t at = 0;
  for (auto& job : g.jobs) {
    // Submit times never decrease in job order: every dependency stays pushed first.
    if (rng() % 3 == 0) at += (rng() % 2 == 0) ? 250 : rng() % 300;
    job.submit_at_us = at;
    const auto roll = rng() % 100;
    if (roll < 3) {
      job.fault = fault_spec{fault_kind::hang, 0, 0, rare_string("hang")};
    } else if (roll < 7) {
      const std::uint64_t us = 100 + rng() % 4000;
      job.fault = fault_spec{fault_kind::slow, 0, us, rare_string("slow:" + std::to_string(us))};
    } else if (roll < 9) {
      job.fault = fault_spec{fault_kind::error, ENOMEM, 0, rare_string("error:ENOMEM")};
    }
    if (rng() % 8 == 0) job.credits = static_cast<std::uint32_t>(1 + rng() % g.scheduler.credit_limit);
  }
  const auto kills = rng() % 3;
  for (std::uint64_t k = 0; k < kills; ++k) {
    g.actions.push_back({(rng() % (at + 1)) / 250 * 250, action_kind::kill, rng() % g.entities.size()});
  }
  constexpr policy_kind policies[] = {policy_kind::fifo, policy_kind::rr, policy_kind::fair,
                                      policy_kind::deadline};
  g.scheduler.policy = policies[(seed / 2) % 4];
  if (g.scheduler.mode == ring_mode::shared_ring && seed % 5 == 0) g.scheduler.rings = 2;
  for (auto& job : g.jobs)
    if (rng() % 2 == 0) job.deadline_us = job.submit_at_us + rng() % 3000;
  return g;
}

std::uint64_t seed_count() {
  // Read while tests run on one thread. NOLINTNEXTLINE(concurrency-mt-unsafe)
  const char* text = std::getenv("COSCHED_DRM_SEEDS");
  return text && *text ? std::strtoull(text, nullptr, 10) : 300;
}

// job, entity, error, cause, attempts: what does not depend on timing.
std::vector<std::string> outcome_fields(const graph& g, const run_outcome& outcome) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < g.jobs.size(); ++i) {
    const auto& r = outcome.jobs[i];
    out.push_back(g.jobs[i].id + " " + g.entities[g.jobs[i].entity].name + " " +
                  (r.error.empty() ? "ok" : r.error) + " " + (r.cause ? g.jobs[*r.cause].id.str() : "-") +
                  " " + std::to_string(r.attempts));
  }
  return out;
}

// The finished fences of each entity signalled in push order.
bool entity_order_kept(const graph& g, const run_outcome& outcome) {
  std::map<std::size_t, std::uint64_t> last;  // entity -> finished_us of its previous job
  for (std::size_t index : push_order(g)) {
    const auto finished = outcome.jobs[index].finished_us;
    if (!finished) return false;
    auto [it, first] = last.try_emplace(g.jobs[index].entity, *finished);
    if (!first && *finished < it->second) return false;
    it->second = *finished;
  }
  return true;
}

}  // namespace

TEST_CASE("virtual time: the bundled and worked examples give the sim backend's results exactly",
          "[drm][equivalence][examples]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  std::vector<std::filesystem::path> graphs;
  for (const auto& dir : {source_dir / "examples/graphs", source_dir / "tests/sim/worked"}) {
    if (!std::filesystem::is_directory(dir)) continue;
    for (const auto& entry : std::filesystem::directory_iterator(dir))
      if (entry.path().extension() == ".json") graphs.push_back(entry.path());
  }
  std::sort(graphs.begin(), graphs.end());
  REQUIRE(graphs.size() >= 7);
  for (const auto& path : graphs) {
    auto g = load_graph(path);
    check_same(g, dev, path.string());
  }
  // And the drm run is deterministic by itself.
  auto g = load_graph(source_dir / "examples/graphs/hang-recovery.json");
  CHECK(results_text(g, run(g, &dev), "drm") == results_text(g, run(g, &dev), "drm"));
}

TEST_CASE(
    "virtual time: generated graphs with faults, hangs, timeouts and kills give the sim backend's results",
    "[drm][equivalence][generated]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  for (std::uint64_t seed = 1; seed <= 24; ++seed)
    check_same(generated_graph(seed), dev, "generated seed " + std::to_string(seed));
  // Larger graphs as cosched-submit --generate makes them (all pushed at 0).
  for (std::uint64_t seed : {7, 8}) {
    const auto g = generate_graph(parse_generate_spec("jobs=1000,entities=6,deps=3,faults=0.05"), seed);
    check_same(g, dev, "--generate jobs=1000,entities=6,deps=3,faults=0.05 --seed " + std::to_string(seed));
  }
}

TEST_CASE("virtual time: the seeded random graphs of the sim tests give the sim backend's results",
          "[drm][equivalence][seeded]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  std::vector<std::uint64_t> seeds = {984, 898, 1856, 1209, 1326, 9641, 547};  // the sim tests' regressions
  for (std::uint64_t seed = 0; seed < seed_count(); ++seed) seeds.push_back(seed);
  for (std::uint64_t seed : seeds) {
    const auto random = seeded::make_random_graph(seed);
    check_same(random.graph, dev, "seeded random graph " + std::to_string(seed));
  }
}

TEST_CASE("real time: outcomes that do not depend on timing agree with the sim backend's",
          "[drm][equivalence][real]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  std::vector<std::pair<std::string, graph>> graphs;
  for (const char* name : {"error-propagation", "pipeline"}) {
    const auto path = source_dir / "examples/graphs" / (std::string(name) + ".json");
    graphs.emplace_back(path.string(), load_graph(path));
  }
  // Margins of hundreds of milliseconds around 1 ms commands: what is on the
  // ring when the timeout fires does not depend on scheduling noise.
  // (cosched-submit's real-time test runs it against virtual time too.)
  const auto reset_replay = source_dir / "tests/data/real-time-reset-replay.json";
  graphs.emplace_back(reset_replay.string(), load_graph(reset_replay));
  graphs.emplace_back("--generate jobs=300,entities=5,deps=3,faults=0.1 --seed 3",
                      generate_graph(parse_generate_spec("jobs=300,entities=5,deps=3,faults=0.1"), 3));
  for (const auto& [name, g] : graphs) {
    INFO(name);
    const auto simulated = run(g, nullptr);
    const auto on_drm = run(g, &dev, clock_kind::real_time);
    CHECK(outcome_fields(g, on_drm) == outcome_fields(g, simulated));
    CHECK(entity_order_kept(g, on_drm));
    CHECK_FALSE(on_drm.shut_down_early);
  }
}
