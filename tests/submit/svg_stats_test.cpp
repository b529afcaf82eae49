// Tests of cosched-submit's run statistics (stats.hpp) and SVG timeline (svg.hpp):
// exact, hand-computed statistics of small graphs run in virtual time, and pictures
// that are well-formed XML with one lane per ring and entity, one bar per job,
// colours by outcome, markers, and a small summary for a large graph.
#include "submit/svg.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "catch.hpp"
#include "submit/generate.hpp"
#include "submit/graph.hpp"
#include "submit/runner.hpp"
#include "submit/stats.hpp"

namespace {

using namespace cosched::submit;
using cosched::priority;

// examples/graphs/hang-recovery.json: a hang on a shared ring with a timeout; the
// guilty entity is banned and the innocent commands are replayed.
constexpr std::string_view hang_recovery = R"({
  "scheduler": {"mode": "shared_ring", "credit_limit": 3, "timeout_us": 2000},
  "entities": [ {"name": "game"}, {"name": "browser"}, {"name": "video", "priority": "high"} ],
  "jobs": [ {"id": "frame1", "entity": "game", "duration_us": 500},
            {"id": "frame2", "entity": "game", "fault": "hang"},
            {"id": "page1", "entity": "browser", "duration_us": 700},
            {"id": "decode1", "entity": "video", "duration_us": 300, "submit_at_us": 100},
            {"id": "frame3", "entity": "game", "duration_us": 500, "submit_at_us": 1000},
            {"id": "decode2", "entity": "video", "fault": "slow:2500", "submit_at_us": 4000} ] })";

// examples/graphs/kill.json: a kill, and a dependency on a killed job.
constexpr std::string_view kill_graph = R"({
  "scheduler": {"credit_limit": 2},
  "entities": [ {"name": "game"}, {"name": "miner", "priority": "low"} ],
  "jobs": [ {"id": "m1", "entity": "miner", "duration_us": 3000},
            {"id": "m2", "entity": "miner", "duration_us": 3000},
            {"id": "m3", "entity": "miner", "duration_us": 3000},
            {"id": "g1", "entity": "game", "duration_us": 1000, "submit_at_us": 100},
            {"id": "g2", "entity": "game", "duration_us": 1000, "deps": ["m3"], "submit_at_us": 200},
            {"id": "m4", "entity": "miner", "duration_us": 1000, "submit_at_us": 5000} ],
  "actions": [ {"at_us": 4000, "kill": "miner"} ] })";

// An error, then a hang with no timeout: at 1000 us nothing is left to do and the
// run shuts down (y, z and w fail `shutdown`).
constexpr std::string_view shutdown_graph = R"({
  "scheduler": {"credit_limit": 1},
  "entities": [ {"name": "a"}, {"name": "b"} ],
  "jobs": [ {"id": "x", "entity": "a", "duration_us": 100, "fault": "error:EIO"},
            {"id": "y", "entity": "b", "fault": "hang"},
            {"id": "z", "entity": "a", "duration_us": 100},
            {"id": "w", "entity": "a", "duration_us": 100, "submit_at_us": 1000} ] })";

struct run {
  graph g;
  run_outcome outcome;
};

run run_text(std::string_view text) {
  run r{parse_graph(text, "graph.json"), {}};
  r.outcome = run_virtual(r.g);
  return r;
}

job_outcome ended(std::string error, std::optional<std::size_t> cause = std::nullopt) {
  job_outcome job;
  job.error = std::move(error);
  job.cause = cause;
  return job;
}

std::string svg_of(const run& r, const svg_options& options = {}) {
  std::ostringstream out;
  write_svg(out, r.g, r.outcome, options);
  return out.str();
}

std::size_t count(std::string_view text, std::string_view what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string_view::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

/// The contents of `<g class="NAME">` (the picture's groups are not nested).
std::string group(const std::string& svg, std::string_view name) {
  const std::string open = "<g class=\"" + std::string(name) + "\">";
  const auto begin = svg.find(open);
  if (begin == std::string::npos) return {};
  const auto end = svg.find("</g>", begin);
  return svg.substr(begin + open.size(), end - begin - open.size());
}

/// The outcome classes of the `<rect class="job CLASS ...">` elements, in order.
std::vector<std::string> job_classes(const std::string& svg) {
  std::vector<std::string> classes;
  const std::string entities = group(svg, "entities");
  constexpr std::string_view marker = "<rect class=\"job ";
  for (auto at = entities.find(marker); at != std::string::npos; at = entities.find(marker, at + 1)) {
    const auto from = at + marker.size();
    const auto to = entities.find_first_of(" \"", from);
    classes.push_back(entities.substr(from, to - from));
  }
  return classes;
}

bool name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == ':' || c == '-' || c == '_' || c == '.';
}

/// A minimal XML well-formedness check (what the picture uses: a prolog, elements,
/// attributes, character data and the predefined and numeric entity references).
/// Returns "" when well-formed, else the first problem and where it is.
std::string xml_problem(std::string_view text) {
  std::vector<std::string> open;
  bool root_seen = false;
  std::size_t i = 0;
  const std::size_t n = text.size();
  auto problem = [&](const std::string& what) { return what + " at offset " + std::to_string(i); };
  auto check_reference = [&]() -> std::string {  // text[i] == '&'
    const auto end = text.find(';', i);
    if (end == std::string_view::npos || end - i > 10) return problem("unterminated entity reference");
    const auto name = text.substr(i + 1, end - i - 1);
    static const std::set<std::string_view> predefined = {"amp", "lt", "gt", "quot", "apos"};
    if (!predefined.count(name) && !(name.size() > 1 && name[0] == '#'))
      return problem("unknown entity reference");
    i = end + 1;
    return {};
  };
  if (text.substr(0, 5) == "<?xml") {
    i = text.find("?>");
    if (i == std::string_view::npos) return "unterminated XML declaration";
    i += 2;
  }
  while (i < n) {
    const char c = text[i];
    if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\r' && c != '\t')
      return problem("control character");
    if (c == '&') {
      if (auto p = check_reference(); !p.empty()) return p;
      continue;
    }
    if (c != '<') {
      if (open.empty() && std::isspace(static_cast<unsigned char>(c)) == 0)
        return problem("text outside the root");
      if (c == '>') return problem("stray '>'");
      ++i;
      continue;
    }
    const bool closing = i + 1 < n && text[i + 1] == '/';
    std::size_t j = i + 1 + (closing ? 1 : 0);
    const std::size_t name_start = j;
    while (j < n && name_char(text[j])) ++j;
    const std::string name(text.substr(name_start, j - name_start));
    if (name.empty()) return problem("a tag without a name");
    if (closing) {
      while (j < n && std::isspace(static_cast<unsigned char>(text[j])) != 0) ++j;
      if (j >= n || text[j] != '>') return problem("bad closing tag </" + name);
      if (open.empty() || open.back() != name)
        return problem("</" + name + "> does not close the open element");
      open.pop_back();
      i = j + 1;
      continue;
    }
    if (open.empty() && root_seen) return problem("a second root element");
    root_seen = true;
    std::set<std::string> attributes;
    bool self_closing = false;
    for (;;) {
      while (j < n && std::isspace(static_cast<unsigned char>(text[j])) != 0) ++j;
      if (j >= n) return problem("unterminated tag <" + name);
      if (text[j] == '>') break;
      if (text[j] == '/') {
        if (j + 1 >= n || text[j + 1] != '>') return problem("bad '/' in <" + name);
        self_closing = true;
        ++j;
        break;
      }
      const std::size_t attribute_start = j;
      while (j < n && name_char(text[j])) ++j;
      const std::string attribute(text.substr(attribute_start, j - attribute_start));
      if (attribute.empty()) return problem("bad attribute in <" + name);
      if (!attributes.insert(attribute).second) return problem("repeated attribute " + attribute);
      if (j >= n || text[j] != '=') return problem("attribute " + attribute + " without '='");
      ++j;
      if (j >= n || (text[j] != '"' && text[j] != '\'')) return problem("unquoted attribute " + attribute);
      const char quote = text[j++];
      while (j < n && text[j] != quote) {
        if (text[j] == '<') return problem("'<' in attribute " + attribute);
        if (text[j] == '&') {
          i = j;
          if (auto p = check_reference(); !p.empty()) return p;
          j = i;
          continue;
        }
        ++j;
      }
      if (j >= n) return problem("unterminated attribute " + attribute);
      ++j;
    }
    if (!self_closing) open.push_back(name);
    i = j + 1;
  }
  if (!open.empty()) return "unclosed element <" + open.back() + ">";
  if (!root_seen) return "no root element";
  return {};
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Statistics

TEST_CASE("percentiles are nearest-rank: the value of rank ceil(p*n/100)", "[submit][stats]") {
  CHECK(nearest_rank_percentile({15, 20, 35, 40, 50}, 50) == 35);  // rank 3 of 5
  CHECK(nearest_rank_percentile({50, 40, 35, 20, 15}, 50) == 35);  // any order
  CHECK(nearest_rank_percentile({15, 20, 35, 40, 50}, 99) == 50);  // rank 5
  CHECK(nearest_rank_percentile({15, 20, 35, 40, 50}, 1) == 15);   // rank 1
  CHECK(nearest_rank_percentile({10, 20, 30, 40}, 50) == 20);      // rank 2, no interpolation
  CHECK(nearest_rank_percentile({7}, 99) == 7);
  std::vector<std::uint64_t> hundred(100);
  for (std::uint64_t k = 0; k < 100; ++k) hundred[k] = 100 - k;  // 1..100, reversed
  CHECK(nearest_rank_percentile(hundred, 99) == 99);
  CHECK(nearest_rank_percentile(hundred, 50) == 50);
  CHECK(nearest_rank_percentile(hundred, 100) == 100);
  CHECK_THROWS_AS(nearest_rank_percentile({}, 50), std::invalid_argument);
  CHECK_THROWS_AS(nearest_rank_percentile({1}, 0), std::invalid_argument);
}

TEST_CASE("Jain's index is (sum x)^2 / (n sum x^2)", "[submit][stats]") {
  const std::vector<std::uint64_t> equal{400, 400, 400}, one_of_two{100, 0}, none{0, 0}, mixed{1, 2, 3};
  CHECK(jain_index(equal) == 1.0);
  CHECK(jain_index(one_of_two) == 0.5);
  CHECK(jain_index(none) == 1.0);  // all equal (nothing): fair
  CHECK(jain_index(mixed) == Approx(36.0 / 42.0).epsilon(1e-12));
  CHECK(jain_index(std::span<const std::uint64_t>()) == 1.0);
}

TEST_CASE("run spans: hangs until the timeout, stuck and queued runs take no ring time", "[submit][stats]") {
  const auto r = run_text(hang_recovery);
  const auto spans = run_spans(r.g, r.outcome);
  // frame1; frame2 (hang); page1 and decode1 behind the hang; their replays at the
  // reset (2500 = frame2's start 500 + timeout 2000); decode2 (slow).
  REQUIRE(r.outcome.runs.size() == 7);
  const std::vector<std::uint64_t> tags{0, 1, 2, 3, 2, 3, 5};
  const std::vector<std::pair<std::uint64_t, std::uint64_t>> expected{
      {0, 500}, {500, 2500}, {2500, 2500}, {2500, 2500}, {2500, 3200}, {3200, 3500}, {4000, 6500}};
  const std::vector<std::uint32_t> attempts{1, 1, 1, 1, 2, 2, 1};
  const std::vector<bool> completed{true, false, false, false, true, true, true};
  const std::vector<bool> replayed{false, false, true, true, false, false, false};
  for (std::size_t i = 0; i < spans.size(); ++i) {
    INFO("run " << i);
    CHECK(r.outcome.runs[i].record.tag == tags[i]);
    CHECK(spans[i].begin == expected[i].first);
    CHECK(spans[i].stop == expected[i].second);
    CHECK(spans[i].attempt == attempts[i]);
    CHECK(spans[i].completed == completed[i]);
    CHECK(spans[i].replayed == replayed[i]);
  }
}

TEST_CASE("run spans from a real-time log: interrupted runs without times, a hang without a start",
          "[submit][stats]") {
  // The real-time ring records start and end only for runs that completed.
  graph g;
  g.entities = {{"e", priority::normal}};
  for (const char* id : {"a", "b", "c"}) {
    job_spec job;
    job.id = id;
    g.jobs.push_back(job);
  }
  run_outcome outcome;
  outcome.jobs.resize(3);
  outcome.jobs[0].finished_us = 300;
  outcome.jobs[1].error = "timed_out";
  outcome.jobs[1].finished_us = 800;
  outcome.jobs[2].finished_us = 900;
  outcome.end_us = 900;
  outcome.runs = {{0, {0, 10, 20, true, 300}},     // a: completed
                  {0, {1, 15, 0, false, 0}},       // b: hung from when a stopped until the timeout at 800
                  {0, {2, 16, 0, true, 0}},        // c: dropped by the reset at 800
                  {0, {2, 800, 810, true, 900}}};  // c again
  const auto spans = run_spans(g, outcome);
  REQUIRE(spans.size() == 4);
  CHECK((spans[0].begin == 20 && spans[0].stop == 300 && spans[0].completed));
  CHECK((spans[1].begin == 300 && spans[1].stop == 800 && !spans[1].completed && !spans[1].replayed));
  CHECK((spans[2].busy_us() == 0 && spans[2].replayed && !spans[2].completed && spans[2].attempt == 1));
  CHECK((spans[3].begin == 810 && spans[3].stop == 900 && spans[3].completed && spans[3].attempt == 2));
  const auto stats = compute_stats(g, outcome, {});
  CHECK(stats.entities[0].ring_us == 280 + 500 + 90);
}

TEST_CASE("stats of a hang and its recovery", "[submit][stats]") {
  const auto r = run_text(hang_recovery);
  const auto stats = compute_stats(r.g, r.outcome, {});
  REQUIRE(stats.entities.size() == 3);
  const auto& game = stats.entities[0];
  CHECK(game.name == "game");
  CHECK(game.prio == priority::normal);
  CHECK((game.jobs == 3 && game.succeeded == 1 && game.failed == 2));
  // Latencies 500 (frame1), 2500 (frame2), 1500 (frame3: 1000 -> 2500).
  CHECK(game.latency_p50_us == std::optional<std::uint64_t>(1500));
  CHECK(game.latency_p99_us == std::optional<std::uint64_t>(2500));
  CHECK(game.ring_us == 500 + 2000);  // frame1, and frame2 hung from 500 to the timeout
  const auto& browser = stats.entities[1];
  CHECK((browser.jobs == 1 && browser.succeeded == 1 && browser.failed == 0));
  CHECK(browser.latency_p50_us == std::optional<std::uint64_t>(3200));
  CHECK(browser.latency_p99_us == std::optional<std::uint64_t>(3200));
  CHECK(browser.ring_us == 700);  // only the replay ran
  const auto& video = stats.entities[2];
  CHECK(video.prio == priority::high);
  CHECK((video.jobs == 2 && video.succeeded == 2 && video.failed == 0));
  CHECK(video.latency_p50_us == std::optional<std::uint64_t>(2500));  // decode2: 4000 -> 6500
  CHECK(video.latency_p99_us == std::optional<std::uint64_t>(3400));  // decode1: 100 -> 3500
  CHECK(video.ring_us == 300 + 2500);
  CHECK(stats.ring_us == 6000);
  CHECK(game.ring_share == Approx(2500.0 / 6000.0).epsilon(1e-12));
  CHECK(browser.ring_share == Approx(700.0 / 6000.0).epsilon(1e-12));
  CHECK(video.ring_share == Approx(2800.0 / 6000.0).epsilon(1e-12));
  // Only "normal" has two entities: 3200^2 / (2 * (2500^2 + 700^2)).
  REQUIRE(stats.fairness.size() == 1);
  CHECK(stats.fairness[0].prio == priority::normal);
  CHECK(stats.fairness[0].entities == 2);
  CHECK(stats.fairness[0].jain_index == Approx(10240000.0 / 13480000.0).epsilon(1e-12));
  CHECK(stats.total_us == 6500);
  CHECK((stats.jobs_with_deadline == 0 && stats.deadline_misses == 0));
}

TEST_CASE("stats of a kill", "[submit][stats]") {
  const auto r = run_text(kill_graph);
  const auto stats = compute_stats(r.g, r.outcome, {});
  const auto& game = stats.entities[0];
  CHECK((game.succeeded == 1 && game.failed == 1));
  CHECK(game.latency_p50_us == std::optional<std::uint64_t>(6800));  // g2: 200 -> 7000
  CHECK(game.latency_p99_us == std::optional<std::uint64_t>(6900));  // g1: 100 -> 7000
  CHECK(game.ring_us == 1000);
  const auto& miner = stats.entities[1];
  CHECK((miner.succeeded == 2 && miner.failed == 2));
  // 3000, 6000, 6000 (m3 killed, signalled after m2) and 1000 (m4: 5000 -> 6000).
  CHECK(miner.latency_p50_us == std::optional<std::uint64_t>(3000));
  CHECK(miner.latency_p99_us == std::optional<std::uint64_t>(6000));
  CHECK(miner.ring_us == 6000);
  CHECK(stats.ring_us == 7000);
  CHECK(stats.fairness.empty());  // one entity per priority
  CHECK(stats.total_us == 7000);
}

TEST_CASE("stats of a shutdown, with deadlines", "[submit][stats]") {
  auto r = run_text(shutdown_graph);
  REQUIRE(r.outcome.shut_down_early);
  // x: EIO at 100; y hangs from 100 until the shutdown at 1000; z and w fail `shutdown` at 1000.
  const std::vector<std::optional<std::uint64_t>> deadlines{50, 2000, std::nullopt, 1000};
  const auto stats = compute_stats(r.g, r.outcome, deadlines);
  const auto& a = stats.entities[0];
  CHECK((a.jobs == 3 && a.succeeded == 0 && a.failed == 3));
  CHECK(a.latency_p50_us == std::optional<std::uint64_t>(100));  // of 0 (w), 100 (x), 1000 (z)
  CHECK(a.latency_p99_us == std::optional<std::uint64_t>(1000));
  CHECK(a.ring_us == 100);
  const auto& b = stats.entities[1];
  CHECK(b.ring_us == 900);
  CHECK(a.ring_share == Approx(0.1).epsilon(1e-12));
  CHECK(b.ring_share == Approx(0.9).epsilon(1e-12));
  REQUIRE(stats.fairness.size() == 1);
  CHECK(stats.fairness[0].jain_index == Approx(1e6 / 1.64e6).epsilon(1e-12));
  // Missed: x (finished 100 > 50); y (1000 <= 2000) and w (1000 <= 1000) made it.
  CHECK(stats.jobs_with_deadline == 3);
  CHECK(stats.deadline_misses == 1);
  CHECK(stats.total_us == 1000);

  CHECK(compute_stats(r.g, r.outcome, {}).jobs_with_deadline == 0);
  CHECK_THROWS_AS(compute_stats(r.g, r.outcome, std::span(deadlines).first(2)), std::invalid_argument);
  // Without a span: the graph's own deadline_us fields.
  r.g.jobs[2].deadline_us = 999;
  const auto from_graph = compute_stats(r.g, r.outcome);
  CHECK((from_graph.jobs_with_deadline == 1 && from_graph.deadline_misses == 1));
}

TEST_CASE("deadline misses from the graph agree with the scheduler's count", "[submit][stats]") {
  // kill.json with deadlines: m1 finishes at 3000 (met), m2 at 6000 (missed 5000),
  // g1 at 7000 (missed 6999), m4 at 6000 (met 6000).
  const auto r = run_text(R"({
    "scheduler": {"credit_limit": 2},
    "entities": [ {"name": "game"}, {"name": "miner", "priority": "low"} ],
    "jobs": [ {"id": "m1", "entity": "miner", "duration_us": 3000, "deadline_us": 3000},
              {"id": "m2", "entity": "miner", "duration_us": 3000, "deadline_us": 5000},
              {"id": "m3", "entity": "miner", "duration_us": 3000},
              {"id": "g1", "entity": "game", "duration_us": 1000, "submit_at_us": 100, "deadline_us": 6999},
              {"id": "g2", "entity": "game", "duration_us": 1000, "deps": ["m3"], "submit_at_us": 200},
              {"id": "m4", "entity": "miner", "duration_us": 1000, "submit_at_us": 5000, "deadline_us": 6000} ],
    "actions": [ {"at_us": 4000, "kill": "miner"} ] })");
  const auto stats = compute_stats(r.g, r.outcome);
  CHECK(stats.jobs_with_deadline == 4);
  CHECK(stats.deadline_misses == 2);
  CHECK(stats.deadline_misses == r.outcome.deadline_misses);
  std::ostringstream text;
  write_stats_text(text, stats);
  CHECK(text.str().find(
            "total 7000 us; rings busy 7000 us (1 ring); deadline misses: 2 of 4 jobs with a deadline\n") !=
        std::string::npos);
  CHECK(svg_of(r).find("; deadline misses 2 of 4") != std::string::npos);  // in the picture's title
}

TEST_CASE("an entity without jobs has no latency and no ring time", "[submit][stats]") {
  const auto r = run_text(R"({"entities": [{"name": "busy"}, {"name": "idle"}],
                              "jobs": [{"id": "a", "entity": "busy", "duration_us": 10}]})");
  const auto stats = compute_stats(r.g, r.outcome, {});
  CHECK_FALSE(stats.entities[1].latency_p50_us.has_value());
  CHECK_FALSE(stats.entities[1].latency_p99_us.has_value());
  CHECK(stats.entities[1].ring_us == 0);
  CHECK(stats.fairness[0].jain_index == 0.5);
  std::ostringstream json;
  write_stats_json(json, stats);
  CHECK(
      json.str().find(R"({"name": "idle", "priority": "normal", "jobs": 0, "succeeded": 0, "failed": 0, )"
                      R"("latency_p50_us": null, "latency_p99_us": null, "ring_us": 0, "ring_share": 0})") !=
      std::string::npos);
}

TEST_CASE("the stats JSON members: exact text, valid inside the summary object", "[submit][stats]") {
  const auto r = run_text(hang_recovery);
  std::ostringstream json;
  write_stats_json(json, compute_stats(r.g, r.outcome, {}));
  CHECK(
      json.str() ==
      R"("entities": [)"
      R"({"name": "game", "priority": "normal", "jobs": 3, "succeeded": 1, "failed": 2, "latency_p50_us": 1500, )"
      R"("latency_p99_us": 2500, "ring_us": 2500, "ring_share": 0.4167}, )"
      R"({"name": "browser", "priority": "normal", "jobs": 1, "succeeded": 1, "failed": 0, "latency_p50_us": 3200, )"
      R"("latency_p99_us": 3200, "ring_us": 700, "ring_share": 0.1167}, )"
      R"({"name": "video", "priority": "high", "jobs": 2, "succeeded": 2, "failed": 0, "latency_p50_us": 2500, )"
      R"("latency_p99_us": 3400, "ring_us": 2800, "ring_share": 0.4667}], )"
      R"("ring_us": 6000, "fairness": [{"priority": "normal", "entities": 2, "jain_index": 0.7596}], )"
      R"("jobs_with_deadline": 0, "total_us": 6500)");
  CHECK(nlohmann::json::accept("{" + json.str() + "}"));
  // Names are JSON-escaped.
  const auto odd =
      run_text(R"({"entities": [{"name": "q\"uote\\"}], "jobs": [{"id": "a", "entity": "q\"uote\\"}]})");
  std::ostringstream odd_json;
  write_stats_json(odd_json, compute_stats(odd.g, odd.outcome, {}));
  const auto parsed = nlohmann::json::parse("{" + odd_json.str() + "}");
  CHECK(parsed["entities"][0]["name"] == "q\"uote\\");
  CHECK(parsed["entities"][0]["ring_share"] == 1);
}

TEST_CASE("the stats for people: a line per entity, fairness, deadlines and total", "[submit][stats]") {
  const auto r = run_text(hang_recovery);
  std::ostringstream text;
  write_stats_text(text, compute_stats(r.g, r.outcome, {}));
  CHECK(text.str() ==
        "entity   priority    done  failed    p50 (us)    p99 (us)   ring (us)   share\n"
        "game     normal         1       2        1500        2500        2500   41.7%\n"
        "browser  normal         1       0        3200        3200         700   11.7%\n"
        "video    high           2       0        2500        3400        2800   46.7%\n"
        "fairness (Jain's index of ring time within a priority): normal 0.7596 (2 entities)\n"
        "total 6500 us; rings busy 6000 us (1 ring)\n");
  std::ostringstream short_text;
  write_stats_text(short_text, compute_stats(r.g, r.outcome, {}), 1);
  CHECK(short_text.str().find("game ") != std::string::npos);
  CHECK(short_text.str().find("browser") == std::string::npos);
  CHECK(short_text.str().find("... and 2 more entities (see --results)\n") != std::string::npos);
}

// ---------------------------------------------------------------------------------------
// The picture

TEST_CASE("the test's XML checker accepts well-formed text and rejects the rest", "[submit][svg]") {
  CHECK(xml_problem(R"(<?xml version="1.0"?><svg a="1 &amp; 2"><g><rect b='x'/>t &lt;&#x41;</g></svg>)")
            .empty());
  CHECK_FALSE(xml_problem("<svg><g></svg>").empty());          // unbalanced
  CHECK_FALSE(xml_problem("<svg></svg><svg></svg>").empty());  // two roots
  CHECK_FALSE(xml_problem("<svg>a & b</svg>").empty());        // raw '&'
  CHECK_FALSE(xml_problem("<svg a=\"<\"></svg>").empty());     // '<' in an attribute
  CHECK_FALSE(xml_problem("<svg a=1></svg>").empty());         // unquoted
  CHECK_FALSE(xml_problem("<svg a=\"1\" a=\"2\"/>").empty());  // repeated attribute
  CHECK_FALSE(xml_problem("<svg>\x01</svg>").empty());         // control character
  CHECK_FALSE(xml_problem("<svg>").empty());                   // unclosed
}

TEST_CASE("outcome classes", "[submit][svg]") {
  CHECK(classify(ended("")) == outcome_class::ok);
  CHECK(classify(ended("EIO")) == outcome_class::error);
  CHECK(classify(ended("broken")) == outcome_class::error);
  CHECK(classify(ended("EIO", 0)) == outcome_class::caused);
  CHECK(classify(ended("cancelled", 0)) == outcome_class::caused);
  CHECK(classify(ended("killed", 0)) == outcome_class::caused);
  CHECK(classify(ended("killed")) == outcome_class::killed);
  CHECK(classify(ended("cancelled")) == outcome_class::cancelled);
  CHECK(classify(ended("timed_out")) == outcome_class::timed_out);
  CHECK(classify(ended("shutdown")) == outcome_class::shutdown);
  std::set<std::string_view> colours, names;
  for (std::size_t c = 0; c < outcome_class_count; ++c) {
    colours.insert(outcome_colour(static_cast<outcome_class>(c)));
    names.insert(outcome_class_name(static_cast<outcome_class>(c)));
  }
  CHECK(colours.size() == outcome_class_count);  // every outcome its own colour
  CHECK(names.size() == outcome_class_count);
}

TEST_CASE("a hang and its recovery: lanes, one bar per job, colours, replays and timeout marks",
          "[submit][svg]") {
  const auto r = run_text(hang_recovery);
  const std::string svg = svg_of(r);
  INFO(svg);
  CHECK(xml_problem(svg).empty());
  CHECK(svg.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"",
                  0) == 0);
  CHECK(count(svg, "<rect class=\"lane\"") == 1 + 3);  // one ring, three entities
  CHECK(svg.find(">ring 0</text>") != std::string::npos);
  CHECK(svg.find(">game</text>") != std::string::npos);
  CHECK(svg.find(">video</text>") != std::string::npos);
  CHECK(job_classes(svg) == std::vector<std::string>{"ok", "timed_out", "ok", "ok", "caused", "ok"});
  // The colours are the outcome colours.
  for (std::size_t c = 0; c < outcome_class_count; ++c) {
    const auto k = static_cast<outcome_class>(c);
    CHECK(svg.find("." + std::string(outcome_class_name(k)) + "{fill:" + std::string(outcome_colour(k)) +
                   "}") != std::string::npos);
  }
  // Five runs occupied the ring (the two behind the hang never started); the two
  // replays are outlined; the hung run was cut short by the timeout.
  const std::string rings = group(svg, "rings");
  CHECK(count(rings, "<rect class=\"run ") == 5);
  CHECK(count(rings, " replay\"") == 2);
  CHECK(count(rings, "<rect class=\"run timed_out cut\"") == 1);
  const std::string markers = group(svg, "markers");
  CHECK(count(markers, "class=\"timeout-mark\"") == 2);  // on the game lane and on the ring
  CHECK(count(markers, "class=\"reset-mark\"") == 1);
  CHECK(count(markers, "class=\"kill-mark\"") == 0);
  CHECK(count(markers, "class=\"shutdown-mark\"") == 0);
  // Tooltips and a title with the summary.
  CHECK(svg.find(
            "<title>frame3: cancelled (cause frame2); queued 1000, finished 2500 us; attempts 0</title>") !=
        std::string::npos);
  CHECK(svg.find("6 jobs, 3 entities, 1 ring \xe2\x80\x94 4 ok, 2 failed") != std::string::npos);
  CHECK(svg.find("legend") != std::string::npos);
}

TEST_CASE("a kill and an error: kill marks, failure marks, killed and caused colours", "[submit][svg]") {
  const auto killed = run_text(kill_graph);
  const std::string svg = svg_of(killed);
  CHECK(xml_problem(svg).empty());
  CHECK(job_classes(svg) == std::vector<std::string>{"ok", "ok", "killed", "ok", "caused", "killed"});
  CHECK(count(group(svg, "markers"), "class=\"kill-mark\"") == 1);
  CHECK(count(group(svg, "entities"), "unrun") == 3);  // m3, g2 and m4 never ran

  const auto stopped = run_text(shutdown_graph);
  const std::string stopped_svg = svg_of(stopped);
  CHECK(xml_problem(stopped_svg).empty());
  CHECK(job_classes(stopped_svg) == std::vector<std::string>{"error", "shutdown", "shutdown", "shutdown"});
  CHECK(count(group(stopped_svg, "entities"), "class=\"fail-mark\"") == 1);  // x's own EIO
  CHECK(count(group(stopped_svg, "markers"), "class=\"shutdown-mark\"") == 1);
  // y hung from 100 until the shutdown: a bar cut short, in the shutdown colour.
  CHECK(count(group(stopped_svg, "rings"), "<rect class=\"run shutdown cut\"") == 1);
}

TEST_CASE("ring per entity: a lane per ring, named after its entity", "[submit][svg]") {
  const auto r = run_text(R"({"scheduler": {"mode": "ring_per_entity", "credit_limit": 2, "timeout_us": 2000},
    "entities": [ {"name": "game"}, {"name": "browser"} ],
    "jobs": [ {"id": "frame1", "entity": "game", "duration_us": 500},
              {"id": "frame2", "entity": "game", "fault": "hang"},
              {"id": "page1", "entity": "browser", "duration_us": 700} ] })");
  const std::string svg = svg_of(r);
  CHECK(xml_problem(svg).empty());
  CHECK(count(svg, "<rect class=\"lane\"") == 2 + 2);
  CHECK(svg.find(">ring 0 \xc2\xb7 game</text>") != std::string::npos);
  CHECK(svg.find(">ring 1 \xc2\xb7 browser</text>") != std::string::npos);
  CHECK(count(group(svg, "markers"), "class=\"timeout-mark\"") == 2);
}

TEST_CASE("several shared rings: a lane each, every run that occupied one drawn", "[submit][svg]") {
  const auto r = run_text(R"({"scheduler": {"credit_limit": 2, "rings": 2},
    "entities": [ {"name": "a"}, {"name": "b"} ],
    "jobs": [ {"id": "a1", "entity": "a", "duration_us": 400}, {"id": "b1", "entity": "b", "duration_us": 300},
              {"id": "a2", "entity": "a", "duration_us": 400}, {"id": "b2", "entity": "b", "duration_us": 300} ] })");
  REQUIRE(r.outcome.rings == 2);
  const std::string svg = svg_of(r);
  CHECK(xml_problem(svg).empty());
  CHECK(count(svg, "<rect class=\"lane\"") == 2 + 2);
  CHECK(svg.find(">ring 1</text>") != std::string::npos);
  CHECK(count(group(svg, "rings"), "<rect class=\"run ok\"") == r.outcome.runs.size());
  const auto stats = compute_stats(r.g, r.outcome);
  CHECK(stats.ring_us == 400 + 300 + 400 + 300);  // every command ran once, to its end
  CHECK(stats.entities[0].ring_us == 800);
}

TEST_CASE("names are escaped for XML", "[submit][svg]") {
  const auto r = run_text(R"({"entities": [{"name": "<gfx> & \"co\" 'x'\u0001"}],
                              "jobs": [{"id": "a&b<c>", "entity": "<gfx> & \"co\" 'x'\u0001", "duration_us": 5000}]})");
  const std::string svg = svg_of(r);
  CHECK(xml_problem(svg).empty());
  CHECK(svg.find("&lt;gfx&gt; &amp; &quot;co&quot; &apos;x&apos;?") != std::string::npos);
  CHECK(svg.find("a&amp;b&lt;c&gt;") != std::string::npos);
  CHECK(svg.find("a&b") == std::string::npos);
}

TEST_CASE("the picture is deterministic", "[submit][svg]") {
  const auto a = run_text(hang_recovery), b = run_text(hang_recovery);
  CHECK(svg_of(a) == svg_of(b));
}

TEST_CASE("above the detail limit the picture is summarised: no per-job elements", "[submit][svg]") {
  const auto r = run_text(hang_recovery);
  svg_options options;
  options.detail_limit = 5;  // 6 jobs
  const std::string svg = svg_of(r, options);
  CHECK(xml_problem(svg).empty());
  CHECK(svg.find("summarised: 6 jobs") != std::string::npos);
  CHECK(count(svg, "<rect class=\"lane\"") == 1 + 3);
  CHECK(count(svg, "class=\"job ") == 0);
  CHECK(count(svg, "class=\"run ") == 0);
  CHECK(count(svg, "<title>") == 0);
  // Stacked areas in the outcome colours, and the timeout marks kept (they are few).
  CHECK(count(group(svg, "entities"), "<path class=\"ok\"") == 3);
  CHECK(count(group(svg, "entities"), "<path class=\"timed_out\"") == 1);
  CHECK(count(group(svg, "markers"), "class=\"timeout-mark\"") == 2);
}

TEST_CASE("a hundred thousand generated jobs give a small summarised picture", "[submit][svg][large]") {
  generate_spec spec;
  spec.jobs = 100000;
  spec.entities = 40;  // more than the 32 entity lanes: the last lane is shared
  spec.deps = 2;
  spec.faults = 0.001;
  const graph g = generate_graph(spec, 3);
  const run_outcome outcome = run_virtual(g);
  std::ostringstream out;
  write_svg(out, g, outcome);
  const std::string svg = out.str();
  CHECK(svg.size() < 2'000'000);
  CHECK(xml_problem(svg).empty());
  CHECK(svg.find("summarised: 100000 jobs") != std::string::npos);
  CHECK(count(svg, "<rect class=\"lane\"") == 1 + 32);
  CHECK(svg.find(">9 more entities</text>") != std::string::npos);
  CHECK(count(svg, "class=\"job ") == 0);
  CHECK(count(svg, "class=\"run ") == 0);
  CHECK(count(svg, "<title>") == 0);
  CHECK(count(group(svg, "rings"), "<path class=\"ok\"") == 1);
  CHECK(count(group(svg, "rings"), "<path class=\"error\"") == 1);  // the generated EIO faults
}
