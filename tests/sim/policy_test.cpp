// The scheduling policies and several shared rings on graphs generated here from
// seeds (none of them is a file in the repository), run by cosched-submit's
// runner in virtual time: fair shares of ring time (fair, rr), a bounded share
// for low priorities (fair), deadlines that earliest-deadline-first meets and
// fifo does not (deadline), and per-entity order on two rings.
//
// Environment: COSCHED_POLICY_SEEDS=N runs seeds 1..N in each test instead of
// its default count.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "catch.hpp"
#include "submit/graph.hpp"
#include "submit/runner.hpp"

using namespace cosched;
using submit::graph;
using submit::run_outcome;

namespace {

/// std::mt19937_64 (its sequence is fixed by the standard), mapped by modulo so
/// that every library gives the same graphs.
class seeded_random {
 public:
  explicit seeded_random(std::uint64_t seed) : engine_(seed) {}
  std::uint64_t between(std::uint64_t lo, std::uint64_t hi) { return lo + engine_() % (hi - lo + 1); }
  template <class T>
  void shuffle(std::vector<T>& v) {
    for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[between(0, i - 1)]);
  }

 private:
  std::mt19937_64 engine_;
};

constexpr const char* priority_names[] = {"kernel", "high", "normal", "low"};
constexpr const char* policy_names[] = {"fifo", "rr", "fair", "deadline"};

struct job_text {
  std::string id, entity;
  std::uint64_t duration_us = 1000;
  std::uint32_t credits = 1;
  std::uint64_t submit_at_us = 0;
  std::optional<std::uint64_t> deadline_us;
};

/// A graph in the file format, read back through the graph reader.
struct graph_text {
  std::string policy = "fifo";
  std::uint32_t credit_limit = 1;
  std::uint32_t rings = 1;
  std::vector<std::pair<std::string, std::string>> entities;  // name, priority
  std::vector<job_text> jobs;

  std::string json() const {
    nlohmann::ordered_json root;
    root["scheduler"] = {{"mode", "shared_ring"}, {"credit_limit", credit_limit}, {"policy", policy}};
    if (rings != 1) root["scheduler"]["rings"] = rings;
    root["entities"] = nlohmann::ordered_json::array();
    for (const auto& [name, prio] : entities)
      root["entities"].push_back({{"name", name}, {"priority", prio}});
    root["jobs"] = nlohmann::ordered_json::array();
    for (const auto& j : jobs) {
      nlohmann::ordered_json job = {{"id", j.id}, {"entity", j.entity}, {"duration_us", j.duration_us}};
      if (j.credits != 1) job["credits"] = j.credits;
      if (j.submit_at_us) job["submit_at_us"] = j.submit_at_us;
      if (j.deadline_us) job["deadline_us"] = *j.deadline_us;
      root["jobs"].push_back(job);
    }
    return root.dump(2);
  }
  graph parse() const { return submit::parse_graph(json(), "generated.json"); }
};

/// The results lines (jobs, then the summary) as JSON objects.
std::vector<nlohmann::json> results_of(const graph& g, const run_outcome& outcome) {
  std::ostringstream out;
  submit::write_results(out, g, outcome, "sim", "virtual");
  std::vector<nlohmann::json> lines;
  std::istringstream in(out.str());
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

/// The runs of ring `r`, in the order the ring executed them.
std::vector<submit::ring_run> runs_on(const run_outcome& outcome, std::size_t r) {
  std::vector<submit::ring_run> runs;
  for (const auto& run : outcome.runs)
    if (run.ring == r) runs.push_back(run);
  return runs;
}

/// For every window of `width` consecutive runs of ring 0 during which each of
/// `entities` still has work (the window ends no later than the last run of any
/// of them), the share of the window's ring time that `entity` got.
std::vector<double> window_shares(const graph& g, const run_outcome& outcome, std::size_t entity,
                                  const std::vector<std::size_t>& entities, std::size_t width) {
  const auto runs = runs_on(outcome, 0);
  std::size_t both_busy_until = runs.size();  // exclusive: index after the first entity's last run
  for (const std::size_t e : entities) {
    std::size_t last = 0;
    for (std::size_t i = 0; i < runs.size(); ++i)
      if (g.jobs[runs[i].record.tag].entity == e) last = i;
    both_busy_until = std::min(both_busy_until, last + 1);
  }
  std::vector<double> shares;
  for (std::size_t first = 0; first + width <= both_busy_until; ++first) {
    std::uint64_t mine = 0, total = 0;
    for (std::size_t i = first; i < first + width; ++i) {
      const auto& r = runs[i].record;
      const std::uint64_t took = r.end - r.start;
      total += took;
      if (g.jobs[r.tag].entity == entity) mine += took;
    }
    shares.push_back(total ? static_cast<double>(mine) / static_cast<double>(total) : 0.5);
  }
  return shares;
}

std::uint64_t seed_count(std::uint64_t default_count) {
  const char* text = std::getenv("COSCHED_POLICY_SEEDS");
  return text && *text ? std::strtoull(text, nullptr, 10) : default_count;
}

std::string seed_note(std::uint64_t seed, const std::string& json) {
  return "seed " + std::to_string(seed) + ", graph:\n" + json;
}

}  // namespace

TEST_CASE(
    "fair and rr: two equal entities with equal backlogs share ring time 45-55% in every window of 20 jobs",
    "[sim][policy][fair][rr]") {
  for (std::uint64_t seed = 1, seeds = seed_count(60); seed <= seeds; ++seed) {
    seeded_random rnd(seed);
    graph_text text;
    text.credit_limit = static_cast<std::uint32_t>(rnd.between(1, 4));
    const char* prio = priority_names[rnd.between(0, 3)];
    text.entities = {{"a", prio}, {"b", prio}};
    const std::uint64_t duration = rnd.between(1, 3000);
    const std::size_t backlog = rnd.between(30, 80);
    std::vector<std::string> owners;
    for (std::size_t i = 0; i < backlog; ++i) owners.insert(owners.end(), {"a", "b"});
    // Pushed at 0 either interleaved at random or one backlog after the other
    // (which fifo serves as two runs of `backlog` jobs).
    const bool blocks = rnd.between(0, 1) == 1;
    if (blocks)
      std::stable_sort(owners.begin(), owners.end());
    else
      rnd.shuffle(owners);
    for (std::size_t i = 0; i < owners.size(); ++i) {
      text.jobs.push_back({"j" + std::to_string(i), owners[i], duration, 1, 0, std::nullopt});
    }
    for (const char* policy : {"fair", "rr", "fifo"}) {
      text.policy = policy;
      const auto g = text.parse();
      const auto outcome = submit::run_virtual(g);
      INFO(policy << ", " << seed_note(seed, text.json()));
      const auto shares = window_shares(g, outcome, 0, {0, 1}, 20);
      REQUIRE(!shares.empty());
      const auto [low, high] = std::minmax_element(shares.begin(), shares.end());
      if (std::string(policy) == "fifo") {
        // The measure tells: fifo gives the first backlog all of the ring.
        if (blocks) CHECK(*high == 1.0);
        continue;
      }
      // Both are busy until the end: every window but the last few counts.
      CHECK(shares.size() >= 2 * backlog - 20 - 2);
      CHECK(*low >= 0.45);
      CHECK(*high <= 0.55);
      for (const auto& job : outcome.jobs) CHECK(job.error.empty());
    }
  }
}

TEST_CASE(
    "fair with priorities: a low entity with a constant backlog finishes jobs while a high one saturates the "
    "ring",
    "[sim][policy][fair]") {
  // Weights: kernel 8, high 4, normal 2, low 1.
  constexpr std::uint64_t weights[] = {8, 4, 2, 1};
  for (std::uint64_t seed = 1, seeds = seed_count(60); seed <= seeds; ++seed) {
    seeded_random rnd(seed);
    graph_text text;
    text.credit_limit = static_cast<std::uint32_t>(rnd.between(1, 4));
    const std::size_t high_prio = rnd.between(0, 2);
    const std::size_t low_prio = rnd.between(high_prio + 1, 3);
    text.entities = {{"busy", priority_names[high_prio]}, {"background", priority_names[low_prio]}};
    const std::uint64_t duration = rnd.between(1, 3000);
    const std::size_t high_jobs = rnd.between(80, 160), low_jobs = rnd.between(20, 40);
    std::vector<std::string> owners(high_jobs, "busy");
    owners.insert(owners.end(), low_jobs, "background");
    rnd.shuffle(owners);
    for (std::size_t i = 0; i < owners.size(); ++i) {
      text.jobs.push_back({"j" + std::to_string(i), owners[i], duration, 1, 0, std::nullopt});
    }
    for (const char* policy : {"fair", "fifo"}) {
      text.policy = policy;
      const auto g = text.parse();
      const auto outcome = submit::run_virtual(g);
      INFO(policy << ", " << seed_note(seed, text.json()));
      std::uint64_t high_last_finish = 0;
      std::size_t low_done_meanwhile = 0;
      for (std::size_t i = 0; i < g.jobs.size(); ++i) {
        if (g.jobs[i].entity == 0)
          high_last_finish = std::max(high_last_finish, *outcome.jobs[i].finished_us);
      }
      for (std::size_t i = 0; i < g.jobs.size(); ++i) {
        if (g.jobs[i].entity == 1 && *outcome.jobs[i].finished_us < high_last_finish) ++low_done_meanwhile;
      }
      if (std::string(policy) == "fifo") {
        // Strict priority: the low entity runs only once every high job has
        // run, and the ring executes in order: nothing of it finishes before.
        CHECK(low_done_meanwhile == 0);
        continue;
      }
      CHECK(low_done_meanwhile >= 1);
      // The bounded share: in every window of 20 jobs while both have work, the
      // low entity gets its weight's share of the ring, to within one job.
      const double expected = 20.0 * static_cast<double>(weights[low_prio]) /
                              static_cast<double>(weights[low_prio] + weights[high_prio]);
      const auto shares = window_shares(g, outcome, 1, {0, 1}, 20);
      REQUIRE(!shares.empty());
      for (const double share : shares) {
        CHECK(share * 20.0 >= expected - 1.0 - 1e-9);
        CHECK(share * 20.0 <= expected + 1.0 + 1e-9);
      }
    }
  }
}

TEST_CASE("deadline meets every deadline of a feasible set pushed at 0 that fifo misses",
          "[sim][policy][deadline]") {
  for (std::uint64_t seed = 1, seeds = seed_count(100); seed <= seeds; ++seed) {
    seeded_random rnd(seed);
    graph_text text;
    text.credit_limit = static_cast<std::uint32_t>(rnd.between(1, 4));
    const std::size_t n = rnd.between(4, 14);
    const char* prio = priority_names[rnd.between(0, 3)];
    std::vector<std::uint64_t> durations(n);
    for (auto& d : durations) d = rnd.between(1, 2000);
    // A schedule that meets every deadline: a random order, each deadline at or
    // after the job's completion in it (so the set is feasible, and EDF, optimal
    // for jobs released together on one ring, meets them too).
    std::vector<std::size_t> feasible(n);
    std::iota(feasible.begin(), feasible.end(), std::size_t{0});
    rnd.shuffle(feasible);
    std::vector<std::uint64_t> deadlines(n);
    std::uint64_t t = 0;
    for (const std::size_t job : feasible) {
      t += durations[job];
      deadlines[job] = t + (rnd.between(0, 3) == 0 ? rnd.between(0, 300) : 0);
    }
    // The push (file) order: shuffled until fifo, which runs in push order, misses.
    std::vector<std::size_t> pushed(n);
    std::iota(pushed.begin(), pushed.end(), std::size_t{0});
    std::size_t fifo_misses = 0;
    for (int attempt = 0; attempt < 1000 && fifo_misses == 0; ++attempt) {
      rnd.shuffle(pushed);
      fifo_misses = 0;
      std::uint64_t end = 0;
      for (const std::size_t job : pushed) fifo_misses += (end += durations[job]) > deadlines[job];
    }
    REQUIRE(fifo_misses > 0);
    // One job per entity (only heads compete; they are all heads).
    for (const std::size_t job : pushed) {
      text.entities.push_back({"e" + std::to_string(job), prio});
      text.jobs.push_back(
          {"j" + std::to_string(job), "e" + std::to_string(job), durations[job], 1, 0, deadlines[job]});
    }

    // The EDF check, by hand: by deadline (ties: push order), each completion in time.
    std::vector<std::size_t> edf(n);
    std::iota(edf.begin(), edf.end(), std::size_t{0});  // indices into text.jobs (push order)
    std::stable_sort(edf.begin(), edf.end(), [&](std::size_t a, std::size_t b) {
      return *text.jobs[a].deadline_us < *text.jobs[b].deadline_us;
    });
    std::vector<std::uint64_t> edf_finish(n);
    std::uint64_t edf_end = 0;
    for (const std::size_t k : edf) {
      edf_finish[k] = edf_end += text.jobs[k].duration_us;
      REQUIRE(edf_finish[k] <= *text.jobs[k].deadline_us);
    }

    text.policy = "deadline";
    auto g = text.parse();
    auto outcome = submit::run_virtual(g);
    INFO(seed_note(seed, text.json()));
    CHECK(outcome.deadline_misses == 0);
    for (std::size_t k = 0; k < n; ++k) {
      CHECK(outcome.jobs[k].error.empty());
      CHECK(outcome.jobs[k].finished_us == edf_finish[k]);
    }
    auto lines = results_of(g, outcome);
    CHECK(lines.back()["summary"]["deadline_misses"] == 0);

    text.policy = "fifo";
    g = text.parse();
    outcome = submit::run_virtual(g);
    std::size_t late = 0;
    for (std::size_t k = 0; k < n; ++k) late += *outcome.jobs[k].finished_us > *text.jobs[k].deadline_us;
    CHECK(late == fifo_misses);
    CHECK(outcome.deadline_misses == fifo_misses);
    lines = results_of(g, outcome);
    CHECK(lines.back()["summary"]["deadline_misses"] == fifo_misses);
  }
}

TEST_CASE("two rings, four busy entities: both rings are used and each entity's order holds",
          "[sim][policy][rings]") {
  for (std::uint64_t seed = 1, seeds = seed_count(80); seed <= seeds; ++seed) {
    seeded_random rnd(seed);
    graph_text text;
    text.rings = 2;
    text.credit_limit = static_cast<std::uint32_t>(rnd.between(1, 4));
    text.policy = policy_names[rnd.between(0, 3)];
    for (int e = 0; e < 4; ++e)
      text.entities.push_back({"e" + std::to_string(e), priority_names[rnd.between(0, 3)]});
    const std::size_t n = rnd.between(40, 120);
    for (std::size_t i = 0; i < n; ++i) {
      job_text j{"j" + std::to_string(i),  "e" + std::to_string(rnd.between(0, 3)),
                 rnd.between(1, 2000),     static_cast<std::uint32_t>(rnd.between(1, text.credit_limit)),
                 rnd.between(0, 5) * 1000, std::nullopt};
      if (rnd.between(0, 1)) j.deadline_us = j.submit_at_us + rnd.between(0, 20000);
      text.jobs.push_back(j);
    }
    const auto g = text.parse();
    const auto outcome = submit::run_virtual(g);
    INFO(text.policy << ", " << seed_note(seed, text.json()));
    REQUIRE(outcome.rings == 2);
    CHECK(!runs_on(outcome, 0).empty());
    CHECK(!runs_on(outcome, 1).empty());

    const auto lines = results_of(g, outcome);
    std::vector<std::optional<std::size_t>> last(g.entities.size());
    for (const std::size_t i : submit::push_order(g)) {
      const auto& o = outcome.jobs[i];
      CHECK(o.error.empty());
      CHECK(o.attempts == 1);
      REQUIRE(o.ring.has_value());
      CHECK(lines[i]["ring"] == *o.ring);
      auto& previous = last[g.jobs[i].entity];
      if (previous) {
        const auto& p = outcome.jobs[*previous];
        // Run, and finished, in push order; a move to the other ring only once
        // the entity had nothing in flight.
        CHECK(*p.scheduled_us <= *o.scheduled_us);
        CHECK(*p.finished_us <= *o.finished_us);
        if (*p.ring != *o.ring) CHECK(*p.finished_us <= *o.scheduled_us);
      }
      previous = i;
    }
    // On each ring, an entity's commands execute in push order and credits stay
    // within the limit.
    for (std::size_t r = 0; r < 2; ++r) {
      const auto runs = runs_on(outcome, r);
      std::vector<std::size_t> position(g.jobs.size());
      const auto order = submit::push_order(g);
      for (std::size_t k = 0; k < order.size(); ++k) position[order[k]] = k;
      std::vector<std::optional<std::size_t>> previous(g.entities.size());
      for (const auto& run : runs) {
        auto& p = previous[g.jobs[run.record.tag].entity];
        if (p) CHECK(position[*p] < position[run.record.tag]);
        p = run.record.tag;
        std::uint64_t held = 0;
        for (const auto& other : runs) {
          if (other.record.run_at <= run.record.run_at && other.record.end > run.record.run_at)
            held += g.jobs[other.record.tag].credits;
        }
        CHECK(held <= text.credit_limit);
      }
    }
  }
}

TEST_CASE("the results name the ring of each job only with several rings", "[sim][policy][rings]") {
  graph_text text;
  text.entities = {{"e", "normal"}};
  text.jobs = {{"a", "e", 10, 1, 0, std::nullopt}};
  auto g = text.parse();
  auto lines = results_of(g, submit::run_virtual(g));
  CHECK_FALSE(lines[0].contains("ring"));
  CHECK(lines.back()["summary"]["deadline_misses"] == 0);
  text.rings = 3;
  g = text.parse();
  lines = results_of(g, submit::run_virtual(g));
  CHECK(lines[0]["ring"] == 0);
}
