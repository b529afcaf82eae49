// Random job graphs for the seeded simulation test: built as a graph value, written
// as JSON, read back through the graph reader and checked against the value built.
#include "random_graph.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace cosched::seeded {
namespace {

using submit::fault_kind;

/// Draws from std::mt19937_64, whose output sequence the standard fixes. The
/// ranges are mapped here (modulo; the tiny bias does not matter) because the
/// standard distributions differ between library implementations.
class seeded_random {
 public:
  explicit seeded_random(std::uint64_t seed) : engine_(seed) {}

  /// An integer in [lo, hi].
  std::uint64_t between(std::uint64_t lo, std::uint64_t hi) { return lo + engine_() % (hi - lo + 1); }
  /// True with probability percent/100.
  bool chance(std::uint64_t percent) { return engine_() % 100 < percent; }
  /// An index below n (n > 0).
  std::size_t index(std::size_t n) { return static_cast<std::size_t>(engine_() % n); }

  /// A time in [lo, hi], often on a 250 us grid so that completions, timeouts,
  /// kills and pushes meet at one instant (the same-instant rules get exercised).
  std::uint64_t time(std::uint64_t lo, std::uint64_t hi) {
    if (chance(55)) {
      const std::uint64_t first = (lo + 249) / 250, last = hi / 250;
      if (first <= last) return between(first, last) * 250;
    }
    return between(lo, hi);
  }

 private:
  std::mt19937_64 engine_;
};

// Errno names without aliases, so the name written is the name read back.
constexpr std::array<std::string_view, 6> errno_names = {"EIO",    "ENOMEM", "ENODEV",
                                                         "EINVAL", "EBUSY",  "EFAULT"};
constexpr std::array<int, 6> errno_values = {EIO, ENOMEM, ENODEV, EINVAL, EBUSY, EFAULT};

submit::graph build(std::uint64_t seed) {
  seeded_random rnd(seed);
  submit::graph g;
  g.scheduler.mode = rnd.chance(50) ? submit::ring_mode::shared_ring : submit::ring_mode::ring_per_entity;
  g.scheduler.credit_limit = static_cast<std::uint32_t>(rnd.between(1, 4));
  if (rnd.chance(65)) g.scheduler.timeout_us = rnd.time(500, 4000);

  const std::size_t entity_count = static_cast<std::size_t>(rnd.between(1, 6));
  for (std::size_t i = 0; i < entity_count; ++i) {
    g.entities.push_back({"e" + std::to_string(i), static_cast<priority>(rnd.between(0, 3))});
  }

  const std::size_t job_count = static_cast<std::size_t>(rnd.between(1, 40));
  g.jobs.resize(job_count);
  // Submit times first: dependencies may only name jobs pushed earlier, and the
  // push order follows from the times.
  for (auto& j : g.jobs) {
    j.submit_at_us = rnd.chance(30) ? 0 : rnd.time(0, 5000);
  }
  std::vector<std::size_t> order(job_count);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return g.jobs[a].submit_at_us < g.jobs[b].submit_at_us;
  });

  for (std::size_t index = 0; index < job_count; ++index) {
    auto& j = g.jobs[index];
    j.id = "j" + std::to_string(index);
    j.entity = rnd.index(entity_count);
    // Mostly short enough to finish within a timeout, so that selection and
    // credits get exercised as much as resets.
    const auto length = rnd.between(0, 9);
    j.duration_us = length == 0 ? 0 : length <= 6 ? rnd.time(0, 1000) : rnd.time(0, 3000);
    // Often 1, so that several commands share the ring (and a reset has innocent
    // commands to replay); otherwise any cost up to the limit.
    j.credits = rnd.chance(50) ? 1 : static_cast<std::uint32_t>(rnd.between(1, g.scheduler.credit_limit));
    const auto roll = rnd.between(0, 99);
    if (roll < 8) {
      const std::size_t e = rnd.index(errno_names.size());
      j.fault = {fault_kind::error, errno_values[e], 0,
                 submit::rare_string("error:" + std::string(errno_names[e]))};
    } else if (roll < 13) {
      j.fault = {fault_kind::hang, 0, 0, submit::rare_string("hang")};
    } else if (roll < 18) {
      const auto slow_us = rnd.time(0, 6000);
      j.fault = {fault_kind::slow, 0, slow_us, submit::rare_string("slow:" + std::to_string(slow_us))};
    }
  }
  // Dependencies on jobs earlier in push order (repeats allowed: the reader keeps them).
  for (std::size_t rank = 0; rank < job_count; ++rank) {
    auto& j = g.jobs[order[rank]];
    const auto roll = rnd.between(0, 99);
    const std::size_t wanted = roll < 50 ? 0 : roll < 75 ? 1 : roll < 90 ? 2 : 3;
    if (rank == 0) continue;
    for (std::size_t k = 0; k < wanted; ++k) j.deps.push_back(order[rnd.index(rank)]);
  }

  const auto roll = rnd.between(0, 99);
  const std::size_t kills = roll < 55 ? 0 : roll < 85 ? 1 : 2;
  for (std::size_t k = 0; k < kills; ++k) {
    submit::action_spec a;
    a.at_us = rnd.time(0, 6000);
    a.kind = submit::action_kind::kill;
    a.entity = rnd.index(entity_count);
    g.actions.push_back(a);
  }
  // Pipelining in two graphs of five, from a stream of its own so that the
  // draws above stay those of earlier builds.
  seeded_random pipeline_rnd(seed ^ 0x5851f42d4c957f2dULL);
  g.scheduler.pipeline = pipeline_rnd.chance(40);
  return g;
}

bool same_graph(const submit::graph& a, const submit::graph& b) {
  if (a.scheduler.mode != b.scheduler.mode || a.scheduler.credit_limit != b.scheduler.credit_limit ||
      a.scheduler.timeout_us != b.scheduler.timeout_us || a.scheduler.policy != b.scheduler.policy ||
      a.scheduler.rings != b.scheduler.rings || a.scheduler.pipeline != b.scheduler.pipeline ||
      a.entities.size() != b.entities.size() || a.jobs.size() != b.jobs.size() ||
      a.actions.size() != b.actions.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.entities.size(); ++i) {
    if (a.entities[i].name != b.entities[i].name || a.entities[i].prio != b.entities[i].prio ||
        a.entities[i].rings != b.entities[i].rings)
      return false;
  }
  for (std::size_t i = 0; i < a.jobs.size(); ++i) {
    const auto &x = a.jobs[i], &y = b.jobs[i];
    if (x.id != y.id || x.entity != y.entity || x.duration_us != y.duration_us || x.deps != y.deps ||
        x.credits != y.credits || x.submit_at_us != y.submit_at_us || x.fault.kind != y.fault.kind ||
        x.fault.errno_value != y.fault.errno_value || x.fault.slow_us != y.fault.slow_us ||
        x.fault.text != y.fault.text || x.deadline_us != y.deadline_us) {
      return false;
    }
  }
  for (std::size_t i = 0; i < a.actions.size(); ++i) {
    if (a.actions[i].at_us != b.actions[i].at_us || a.actions[i].kind != b.actions[i].kind ||
        a.actions[i].entity != b.actions[i].entity || a.actions[i].rings != b.actions[i].rings)
      return false;
  }
  return true;
}

/// `rings` as a JSON array.
std::string rings_json(const std::vector<std::size_t>& rings) {
  std::string text = "[";
  for (std::size_t k = 0; k < rings.size(); ++k) text += (k ? ", " : "") + std::to_string(rings[k]);
  return text + "]";
}

}  // namespace

std::string graph_json(const submit::graph& g) {
  // Names in generated graphs are plain identifiers: no escaping needed.
  std::ostringstream out;
  out << "{ \"scheduler\": {\"mode\": \""
      << (g.scheduler.mode == submit::ring_mode::shared_ring ? "shared_ring" : "ring_per_entity")
      << "\", \"credit_limit\": " << g.scheduler.credit_limit;
  if (g.scheduler.timeout_us) out << ", \"timeout_us\": " << *g.scheduler.timeout_us;
  constexpr const char* policies[] = {"fifo", "rr", "fair", "deadline"};
  if (g.scheduler.policy != submit::policy_kind::fifo)
    out << ", \"policy\": \"" << policies[static_cast<int>(g.scheduler.policy)] << '"';
  if (g.scheduler.rings != 1) out << ", \"rings\": " << g.scheduler.rings;
  if (g.scheduler.pipeline) out << ", \"pipeline\": true";
  out << "},\n  \"entities\": [";
  for (std::size_t i = 0; i < g.entities.size(); ++i) {
    out << (i ? ", " : " ") << "{\"name\": \"" << g.entities[i].name << "\", \"priority\": \""
        << to_string(g.entities[i].prio) << '"';
    if (!g.entities[i].rings.empty()) out << ", \"rings\": " << rings_json(g.entities[i].rings);
    out << "}";
  }
  out << " ],\n  \"jobs\": [";
  for (std::size_t i = 0; i < g.jobs.size(); ++i) {
    const auto& j = g.jobs[i];
    out << (i ? ",\n            " : " ") << "{\"id\": \"" << j.id << "\", \"entity\": \""
        << g.entities[j.entity].name << "\", \"duration_us\": " << j.duration_us;
    if (!j.deps.empty()) {
      out << ", \"deps\": [";
      for (std::size_t k = 0; k < j.deps.size(); ++k)
        out << (k ? ", " : "") << '"' << g.jobs[j.deps[k]].id << '"';
      out << "]";
    }
    if (j.credits != 1) out << ", \"credits\": " << j.credits;
    if (j.submit_at_us) out << ", \"submit_at_us\": " << j.submit_at_us;
    if (j.fault.kind != fault_kind::none) out << ", \"fault\": \"" << j.fault.text << '"';
    if (j.deadline_us) out << ", \"deadline_us\": " << *j.deadline_us;
    out << "}";
  }
  out << " ]";
  if (!g.actions.empty()) {
    out << ",\n  \"actions\": [";
    for (std::size_t i = 0; i < g.actions.size(); ++i) {
      const auto& a = g.actions[i];
      out << (i ? ", " : " ") << "{\"at_us\": " << a.at_us;
      if (a.kind == submit::action_kind::kill)
        out << ", \"kill\": \"" << g.entities[a.entity].name << "\"}";
      else
        out << ", \"set_rings\": \"" << g.entities[a.entity].name << "\", \"rings\": " << rings_json(a.rings)
            << "}";
    }
    out << " ]";
  }
  out << " }\n";
  return out.str();
}

namespace {

random_graph read_back(const submit::graph& built, std::uint64_t seed) {
  random_graph result;
  result.json = graph_json(built);
  const std::string name = "seed-" + std::to_string(seed) + ".json";
  result.graph = submit::parse_graph(result.json, name);
  // The reader must give back exactly what was written; otherwise the test would
  // compare the scheduler and the model on a graph nobody meant.
  if (!same_graph(built, result.graph)) {
    throw std::logic_error(name + ": the graph read back differs from the graph written:\n" + result.json);
  }
  return result;
}

}  // namespace

random_graph make_random_graph(std::uint64_t seed) { return read_back(build(seed), seed); }

random_graph make_random_policy_graph(std::uint64_t seed) {
  submit::graph g = build(seed);
  // A stream of its own: the graph of make_random_graph(seed) stays as it is.
  seeded_random rnd(seed ^ 0x9e3779b97f4a7c15ULL);
  if (rnd.chance(80)) g.scheduler.mode = submit::ring_mode::shared_ring;
  g.scheduler.policy = static_cast<submit::policy_kind>(rnd.between(0, 3));
  if (g.scheduler.mode == submit::ring_mode::shared_ring)
    g.scheduler.rings = static_cast<std::uint32_t>(rnd.between(1, 3));
  for (auto& j : g.jobs) {
    if (rnd.chance(50)) j.deadline_us = j.submit_at_us + rnd.time(0, 8000);
  }
  // Ring affinity, drawn last so that the draws above stay those of earlier
  // graphs: on several shared rings, half of the graphs restrict some entities
  // and change ring sets at run time, among the kills (file order counts).
  if (g.scheduler.mode == submit::ring_mode::shared_ring && g.scheduler.rings > 1 && rnd.chance(50)) {
    const std::size_t rings = g.scheduler.rings;
    // A non-empty set of distinct rings, in a random order (every ring sometimes).
    auto random_set = [&] {
      const std::uint64_t mask = rnd.between(1, (std::uint64_t{1} << rings) - 1);
      std::vector<std::size_t> set;
      for (std::size_t r = 0; r < rings; ++r)
        if (mask & (std::uint64_t{1} << r)) set.push_back(r);
      for (std::size_t k = set.size(); k > 1; --k) std::swap(set[k - 1], set[rnd.index(k)]);
      return set;
    };
    for (auto& e : g.entities) {
      if (rnd.chance(60)) e.rings = random_set();
    }
    const std::size_t changes = static_cast<std::size_t>(rnd.between(0, 4));
    for (std::size_t k = 0; k < changes; ++k) {
      submit::action_spec a;
      a.at_us = rnd.time(0, 6000);
      a.kind = submit::action_kind::set_rings;
      a.entity = rnd.index(g.entities.size());
      a.rings = random_set();
      g.actions.insert(g.actions.begin() + static_cast<std::ptrdiff_t>(rnd.index(g.actions.size() + 1)), a);
    }
  }
  return read_back(g, seed);
}

}  // namespace cosched::seeded
