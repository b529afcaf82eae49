// Random job graphs for the seeded simulation test: one seed gives one graph, the
// same on every platform and compiler, written as the JSON text of the graph format.
#pragma once

#include <cstdint>
#include <string>

#include "submit/graph.hpp"

namespace cosched::seeded {

/// A generated graph: the JSON text (what a failure report prints, and what
/// cosched-submit would read) and the graph the reader made of it.
struct random_graph {
  std::string json;
  submit::graph graph;
};

/// The graph of `seed`: 1-6 entities with random priorities, 1-40 jobs (durations
/// 0-3000 us, credits up to a credit limit of 1-4, submit times 0-5000 us with many
/// ties, 0-3 dependencies on jobs pushed earlier, faults error/hang/slow), 0-2 kills,
/// shared_ring or ring_per_entity, and no timeout or one of 500-4000 us. The text
/// goes through submit::parse_graph, so the reader is exercised too.
random_graph make_random_graph(std::uint64_t seed);

/// The graph of make_random_graph(seed) under a random policy (fifo, rr, fair,
/// deadline), mostly in shared_ring mode (then on 1-3 rings), with deadlines on about half of
/// the jobs (any policy counts misses; deadline orders by them). Half of those on several
/// rings have ring affinity: entities restricted to random ring sets, and 0-4 set_rings
/// actions at random times among the kills.
random_graph make_random_policy_graph(std::uint64_t seed);

/// Writes every field of `g` that a generated graph uses, in the graph format
/// (mode, timeout, actions, and policy, rings, entities' rings and deadlines when
/// not the defaults), so a failing seed can be replayed with cosched-submit.
std::string graph_json(const submit::graph& g);

}  // namespace cosched::seeded
