// Random graphs from a seed: a standardized engine (mt19937_64) and our own
// range mapping, so the same seed gives the same graph with any standard library.
#include "submit/generate.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cosched::submit {
namespace {

constexpr std::size_t dependency_window = 256;
constexpr std::size_t max_jobs = 10'000'000;

constexpr std::uint64_t max_duration_us = 10'000'000;

// Told apart from the main engine's seed in the fault engine's seed sequence.
constexpr std::uint32_t fault_stream_word = 0x66617574;  // "faut"

[[noreturn]] void fail(std::string_view part, std::string_view problem) {
  throw input_error("--generate: " + printable(part) + ": " + std::string(problem));
}

std::optional<std::uint64_t> decimal(std::string_view text) {
  std::uint64_t out = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return out;
}

/// `part` is the whole "key=value", for the message.
std::uint64_t parse_number(std::string_view part, std::string_view value, std::uint64_t low,
                           std::uint64_t high) {
  const auto out = decimal(value);
  if (!out || *out < low || *out > high)
    fail(part, "must be an integer between " + std::to_string(low) + " and " + std::to_string(high));
  return *out;
}

double parse_fraction(std::string_view part, std::string_view value) {
  // from_chars: no sign, no spaces, no hex; "nan" and "inf" fail the range.
  double out = -1;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  if (ec != std::errc() || end != value.data() + value.size() || !(out >= 0.0 && out <= 1.0))
    fail(part, "must be a number between 0 and 1");
  return out;
}

std::uint64_t uniform(std::mt19937_64& rng, std::uint64_t low, std::uint64_t high) {
  return low + rng() % (high - low + 1);
}

}  // namespace

generate_spec parse_generate_spec(std::string_view text) {
  generate_spec spec;
  constexpr std::array<std::string_view, 6> keys = {"jobs",   "entities", "deps",
                                                    "faults", "duration", "credits"};
  std::array<std::string_view, keys.size()> given{};  // each key's part, once given
  while (!text.empty()) {
    const auto comma = text.find(',');
    const std::string_view part = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    const auto equals = part.find('=');
    if (equals == std::string_view::npos) fail("\"" + std::string(part) + "\"", "expected key=value");
    const auto key = part.substr(0, equals), value = part.substr(equals + 1);
    const auto known = std::find(keys.begin(), keys.end(), key);
    if (known == keys.end()) {
      throw input_error("--generate: unknown key \"" + printable(key) +
                        "\" (known: jobs, entities, deps, faults, duration, credits)");
    }
    auto& first = given[static_cast<std::size_t>(known - keys.begin())];
    if (!first.empty())
      fail(part, "\"" + std::string(key) + "\" is given twice (first " + printable(first) + ")");
    first = part;
    if (key == "jobs")
      spec.jobs = parse_number(part, value, 1, max_jobs);
    else if (key == "entities")
      spec.entities = parse_number(part, value, 1, 4096);
    else if (key == "deps")
      spec.deps = parse_number(part, value, 0, 64);
    else if (key == "faults")
      spec.faults = parse_fraction(part, value);
    else if (key == "credits")
      spec.credit_limit = static_cast<std::uint32_t>(parse_number(part, value, 1, 1u << 20));
    else {  // duration
      const auto dash = value.find('-');
      const std::string expected =
          "expected MIN-MAX (microseconds), integers between 0 and " + std::to_string(max_duration_us);
      // Plain values and separate reads: GCC 12 at -O2 takes an optional built
      // by a conditional for maybe uninitialized.
      std::uint64_t min = 0, max = 0;
      bool readable = false;
      if (const auto low = decimal(value.substr(0, dash)); low && dash != std::string_view::npos) {
        min = *low;
        if (const auto high = decimal(value.substr(dash + 1))) {
          max = *high;
          readable = true;
        }
      }
      if (!readable || min > max_duration_us || max > max_duration_us) fail(part, expected);
      if (min > max)
        fail(part, "MIN " + std::to_string(min) + " is above MAX " + std::to_string(max) + "; " + expected);
      spec.min_duration_us = min;
      spec.max_duration_us = max;
    }
  }
  return spec;
}

graph generate_graph(const generate_spec& spec, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  // The faults come from an engine of their own, one draw per job whatever
  // `faults` is: the rest of the graph (entities, durations, deps) is the same
  // for every P, and the jobs with a fault at P are among those with one at any
  // larger P. std::seed_seq's mixing is specified, so this too is portable.
  std::seed_seq fault_seed{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
                           fault_stream_word};
  std::mt19937_64 fault_rng(fault_seed);
  graph g;
  g.scheduler.credit_limit = spec.credit_limit;
  constexpr cosched::priority mix[] = {cosched::priority::high, cosched::priority::normal,
                                       cosched::priority::normal, cosched::priority::low};
  for (std::size_t e = 0; e < spec.entities; ++e) {
    g.entities.push_back({"e" + std::to_string(e), mix[rng() % 4]});
  }
  g.jobs.reserve(spec.jobs);
  std::vector<std::size_t> candidates;
  for (std::size_t i = 0; i < spec.jobs; ++i) {
    job_spec job;
    job.id = "j" + std::to_string(i);
    job.entity = static_cast<std::uint32_t>(rng() % spec.entities);
    job.duration_us = uniform(rng, spec.min_duration_us, spec.max_duration_us);
    const std::size_t window_start = i > dependency_window ? i - dependency_window : 0;
    const std::size_t wanted = std::min(spec.deps, i - window_start);
    candidates.clear();
    while (candidates.size() < wanted) {
      const std::size_t dep = window_start + rng() % (i - window_start);
      if (std::find(candidates.begin(), candidates.end(), dep) == candidates.end()) candidates.push_back(dep);
    }
    job.deps = candidates;
    // Each job has a fault with probability `faults` (to within 2^-53): a
    // uniform 53-bit integer below faults * 2^53, which is exact in a double.
    const std::uint64_t draw = fault_rng() >> 11;
    if (static_cast<double>(draw) < spec.faults * 9007199254740992.0) {
      job.fault = fault_spec{fault_kind::error, EIO, 0, rare_string("error:EIO")};
    }
    g.jobs.push_back(std::move(job));
  }
  return g;
}

void write_graph(std::ostream& out, const graph& g) {
  nlohmann::ordered_json doc;
  auto& scheduler = doc["scheduler"];
  scheduler["mode"] = g.scheduler.mode == ring_mode::shared_ring ? "shared_ring" : "ring_per_entity";
  scheduler["credit_limit"] = g.scheduler.credit_limit;
  if (g.scheduler.timeout_us) scheduler["timeout_us"] = *g.scheduler.timeout_us;
  constexpr const char* policies[] = {"fifo", "rr", "fair", "deadline"};
  scheduler["policy"] = policies[static_cast<int>(g.scheduler.policy)];
  if (g.scheduler.rings != 1) scheduler["rings"] = g.scheduler.rings;
  if (g.scheduler.pipeline) scheduler["pipeline"] = true;
  doc["entities"] = nlohmann::ordered_json::array();
  for (const auto& e : g.entities) {
    nlohmann::ordered_json entity = {{"name", e.name}, {"priority", std::string(to_string(e.prio))}};
    if (!e.rings.empty()) entity["rings"] = e.rings;
    doc["entities"].push_back(entity);
  }
  doc["jobs"] = nlohmann::ordered_json::array();
  for (const auto& j : g.jobs) {
    nlohmann::ordered_json job = {
        {"id", j.id.view()}, {"entity", g.entities[j.entity].name}, {"duration_us", j.duration_us}};
    if (!j.deps.empty()) {
      auto deps = nlohmann::ordered_json::array();
      for (auto d : j.deps) deps.push_back(g.jobs[d].id.view());
      job["deps"] = deps;
    }
    if (j.credits != 1) job["credits"] = j.credits;
    if (j.submit_at_us) job["submit_at_us"] = j.submit_at_us;
    if (j.fault.kind != fault_kind::none) job["fault"] = j.fault.text.view();
    if (j.deadline_us) job["deadline_us"] = *j.deadline_us;
    doc["jobs"].push_back(job);
  }
  if (!g.actions.empty()) {
    doc["actions"] = nlohmann::ordered_json::array();
    for (const auto& a : g.actions) {
      if (a.kind == action_kind::kill) {
        doc["actions"].push_back({{"at_us", a.at_us}, {"kill", g.entities[a.entity].name}});
      } else {
        doc["actions"].push_back(
            {{"at_us", a.at_us}, {"set_rings", g.entities[a.entity].name}, {"rings", a.rings}});
      }
    }
  }
  out << doc.dump() << "\n";
}

}  // namespace cosched::submit
