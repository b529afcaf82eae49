// libFuzzer target: arbitrary bytes as a cosched-submit job graph. Unusable input
// must be rejected with input_error (never a crash); a usable graph is run through
// the real scheduler on the simulated GPU in virtual time, and the outcome must
// satisfy the invariants below for ANY graph. A violation aborts with a message,
// which libFuzzer reports as a crash.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "cosched/error.hpp"
#include "submit/generate.hpp"
#include "submit/graph.hpp"
#include "submit/runner.hpp"
#include "submit/trace.hpp"

namespace {

using namespace cosched::submit;

// Bounds that keep one input fast. The virtual clock does not sleep, but every
// event (push, kill, completion, timeout) costs real time, so the work is bounded
// by counting the events a graph can cause.
constexpr std::size_t max_jobs = 200;
constexpr std::size_t max_entities = 64;
constexpr std::size_t max_actions = 200;
constexpr std::size_t max_deps = 4000;  // over all jobs
// A `slow` command is extended every timeout_us until it finishes; each reset can
// replay it and start the count again.
constexpr std::uint64_t max_timeout_events = 20000;

bool too_costly(const graph& g) {
  if (g.jobs.size() > max_jobs || g.entities.size() > max_entities || g.actions.size() > max_actions)
    return true;
  std::size_t deps = 0;
  for (const auto& job : g.jobs) deps += job.deps.size();
  if (deps > max_deps) return true;
  if (!g.scheduler.timeout_us) return false;  // no timeout: no extensions, no resets
  const std::uint64_t timeout = *g.scheduler.timeout_us;
  std::uint64_t extensions = 0;  // timer events of one attempt of every slow command
  std::uint64_t resets = 0;      // commands that can time out (each reset bans or closes)
  for (const auto& job : g.jobs) {
    if (job.fault.kind == fault_kind::slow) {
      extensions += job.fault.slow_us / timeout + 1;
      if (extensions > max_timeout_events) return true;
    } else if (job.fault.kind == fault_kind::hang || job.duration_us >= timeout) {
      ++resets;
    }
  }
  return extensions * (resets + 1) > max_timeout_events;
}

[[noreturn]] void violation(const std::string& what) {
  std::fprintf(stderr, "graph_fuzzer: invariant violated: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

std::string job_name(const graph& g, std::size_t index) {
  return "jobs[" + std::to_string(index) + "] (id " + nlohmann::json(g.jobs[index].id).dump() + ")";
}

std::string results_text(const graph& g, const run_outcome& outcome) {
  std::ostringstream out;
  write_results(out, g, outcome, "sim", "virtual");
  return out.str();
}

// Credits bound the commands run and not yet finished, per ring. A run holds its
// job's credits from run_at until the ring finishes it, the command is replayed
// (its next run), or its job's fence signals (a reset or ring close dropped it).
void check_credits(const graph& g, const run_outcome& outcome) {
  const std::size_t n = g.jobs.size();
  std::vector<std::vector<std::size_t>> runs_by_job(n);
  for (std::size_t r = 0; r < outcome.runs.size(); ++r) runs_by_job[outcome.runs[r].record.tag].push_back(r);
  struct change {
    std::uint64_t at;
    int order;  // releases before acquisitions at one instant
    std::size_t ring;
    std::int64_t credits;
    std::size_t job;
  };
  std::vector<change> changes;
  for (std::size_t job = 0; job < n; ++job) {
    const auto& runs = runs_by_job[job];
    const std::uint64_t finished = *outcome.jobs[job].finished_us;
    for (std::size_t k = 0; k < runs.size(); ++k) {
      const auto& run = outcome.runs[runs[k]];
      std::uint64_t release = finished;
      if (k + 1 < runs.size())
        release = outcome.runs[runs[k + 1]].record.run_at;
      else if (run.record.finishes)
        release = std::min(finished, run.record.end);
      const auto credits = static_cast<std::int64_t>(g.jobs[job].credits);
      changes.push_back({run.record.run_at, 1, run.ring, credits, job});
      changes.push_back({release, 0, run.ring, -credits, job});
    }
  }
  std::sort(changes.begin(), changes.end(),
            [](const change& a, const change& b) { return a.at != b.at ? a.at < b.at : a.order < b.order; });
  std::vector<std::int64_t> held(outcome.rings, 0);
  for (const auto& c : changes) {
    held[c.ring] += c.credits;
    if (held[c.ring] > static_cast<std::int64_t>(g.scheduler.credit_limit))
      violation("ring " + std::to_string(c.ring) + " holds " + std::to_string(held[c.ring]) + " credits at " +
                std::to_string(c.at) + " us (limit " + std::to_string(g.scheduler.credit_limit) + ") when " +
                job_name(g, c.job) + " is run");
  }
}

void check_outcome(const graph& g, const run_outcome& outcome) {
  const std::size_t n = g.jobs.size();
  if (outcome.jobs.size() != n)
    violation("run_outcome has " + std::to_string(outcome.jobs.size()) + " jobs, the graph " +
              std::to_string(n));

  std::vector<std::uint32_t> runs_of(n, 0);
  for (const auto& run : outcome.runs) {
    if (run.record.tag >= n)
      violation("a ring run has tag " + std::to_string(run.record.tag) + ", out of range");
    if (run.ring >= outcome.rings)
      violation("a ring run names ring " + std::to_string(run.ring) + ", out of range");
    ++runs_of[run.record.tag];
  }

  // No instant of the run passes the reader's bound (which is at most max_run_us, so
  // no time in us or ns can overflow).
  const std::uint64_t bound = latest_instant_us(g);
  if (bound > max_run_us) violation("parse_graph accepted a graph whose run can pass max_run_us");
  if (outcome.end_us > bound)
    violation("end_us " + std::to_string(outcome.end_us) + " is past latest_instant_us " +
              std::to_string(bound));

  bool any_hang = false;
  for (const auto& job : g.jobs) any_hang = any_hang || job.fault.kind == fault_kind::hang;

  for (std::size_t i = 0; i < n; ++i) {
    const auto& spec = g.jobs[i];
    const auto& result = outcome.jobs[i];
    const std::string name = job_name(g, i);

    // Every job has an outcome: its finished fence signalled.
    if (!result.finished_us) violation(name + ": finished_us is not set");
    const std::uint64_t finished = *result.finished_us;
    if (finished > outcome.end_us)
      violation(name + ": finished_us " + std::to_string(finished) + " after end_us " +
                std::to_string(outcome.end_us));
    // Pushed at its submit time, finished no earlier.
    if (result.queued_us != spec.submit_at_us)
      violation(name + ": queued_us " + std::to_string(result.queued_us) + " != submit_at_us " +
                std::to_string(spec.submit_at_us));
    if (finished < result.queued_us) violation(name + ": finished_us before queued_us");

    // attempts == 0 iff never run; attempts counts the ring's runs.
    if ((result.attempts == 0) != !result.scheduled_us)
      violation(name + ": attempts " + std::to_string(result.attempts) + " but scheduled_us " +
                (result.scheduled_us ? std::to_string(*result.scheduled_us) : "null"));
    if (result.attempts != runs_of[i]) violation(name + ": attempts differ from the ring's run log");
    if (result.scheduled_us) {
      if (*result.scheduled_us < result.queued_us) violation(name + ": scheduled_us before queued_us");
      if (*result.scheduled_us > finished) violation(name + ": scheduled_us after finished_us");
    }

    if (result.error.empty()) {
      // A job succeeds only by running, after its dependencies succeeded.
      if (result.cause) violation(name + ": succeeded but has a cause");
      if (result.attempts == 0) violation(name + ": succeeded without running");
      for (std::size_t dep : spec.deps) {
        const auto& before = outcome.jobs[dep];
        if (!before.error.empty())
          violation(name + ": succeeded although its dependency " + job_name(g, dep) + " failed");
        if (result.scheduled_us && before.finished_us && *before.finished_us > *result.scheduled_us)
          violation(name + ": ran before its dependency " + job_name(g, dep) + " finished");
      }
    }

    if (result.cause) {
      const std::size_t cause = *result.cause;
      if (cause >= n) violation(name + ": cause index " + std::to_string(cause) + " out of range");
      const auto& root = outcome.jobs[cause];
      if (root.error.empty()) violation(name + ": its cause " + job_name(g, cause) + " succeeded");
      if (cause == i) violation(name + ": is its own cause (a job failing by itself has cause null)");
      if (root.cause)
        violation(name + ": its cause " + job_name(g, cause) +
                  " is not the root of the chain (it has cause " + job_name(g, *root.cause) + ")");
      if (root.finished_us && *root.finished_us > finished)
        violation(name + ": failed because of " + job_name(g, cause) + ", which signalled later");
    }

    if (result.error == "shutdown" && !outcome.shut_down_early)
      violation(name + ": failed `shutdown` but the run did not end with \"nothing left to do\"");

    // Where an error comes from (DESIGN.md, "Semantics, exactly").
    if (!result.error.empty() && !result.cause) {
      // Failed by itself: its own fault, its own timeout, a kill of its entity, shutdown.
      const bool own_fault = spec.fault.kind == fault_kind::error &&
                             result.error == cosched::error_name(std::error_code(spec.fault.errno_value,
                                                                                 std::generic_category()));
      if (own_fault || result.error == "shutdown") {
      } else if (result.error == "timed_out") {
        if (!g.scheduler.timeout_us) violation(name + ": timed_out without a timeout");
        if (result.attempts == 0) violation(name + ": timed_out without running");
      } else if (result.error == "killed") {
        bool killed = false;
        for (const auto& action : g.actions)
          killed = killed || (action.kind == action_kind::kill && action.entity == spec.entity &&
                              action.at_us <= finished);
        if (!killed) violation(name + ": killed, but its entity was not killed by then");
      } else {
        violation(name + ": failed `" + result.error + "` with cause null");
      }
      if (own_fault && result.attempts == 0) violation(name + ": failed with its own fault without running");
    }
    if (result.cause) {
      const auto& root = outcome.jobs[*result.cause];
      // A failed dependency passes its error on; a ban or ring close cancels.
      if (result.error != root.error && result.error != "cancelled")
        violation(name + ": failed `" + result.error + "` with cause " + job_name(g, *result.cause) +
                  ", which failed `" + root.error + "`");
    }
    // A kill fails every later push of the entity (kills take effect before pushes).
    for (const auto& action : g.actions) {
      if (action.kind == action_kind::kill && action.entity == spec.entity &&
          action.at_us <= result.queued_us && result.error.empty())
        violation(name + ": succeeded although pushed after a kill of its entity");
    }
    // A timeout bans the guilty job's entity (shared_ring) or closes its ring
    // (ring_per_entity): its later pushes fail too (timeouts take effect before pushes).
    for (std::size_t other = 0; other < n; ++other) {
      const auto& guilty = outcome.jobs[other];
      if (guilty.error == "timed_out" && !guilty.cause && g.jobs[other].entity == spec.entity &&
          result.queued_us >= *guilty.finished_us && result.error.empty())
        violation(name + ": succeeded although pushed at " + std::to_string(result.queued_us) +
                  ", after its entity's job " + job_name(g, other) + " timed out at " +
                  std::to_string(*guilty.finished_us));
    }
    // A successful command ran for its duration after the scheduler ran it.
    if (result.error.empty() && result.scheduled_us) {
      const std::uint64_t took = spec.fault.kind == fault_kind::slow ? spec.fault.slow_us : spec.duration_us;
      if (finished < *result.scheduled_us + took)
        violation(name + ": succeeded at " + std::to_string(finished) + ", before scheduled_us + duration");
    }
  }

  check_credits(g, outcome);

  // Without a hang nothing can stall: every command finishes, the graph is acyclic.
  if (outcome.shut_down_early && !any_hang) violation("\"nothing left to do\" without any hanging command");

  // Per entity, finished fences signal in push order.
  std::vector<std::optional<std::size_t>> last(g.entities.size());
  for (std::size_t index : push_order(g)) {
    auto& previous = last[g.jobs[index].entity];
    if (previous && *outcome.jobs[*previous].finished_us > *outcome.jobs[index].finished_us)
      violation(job_name(g, index) + " finished at " + std::to_string(*outcome.jobs[index].finished_us) +
                ", before " + job_name(g, *previous) + " pushed before it on entity " +
                nlohmann::json(g.entities[g.jobs[index].entity].name).dump() + " (at " +
                std::to_string(*outcome.jobs[*previous].finished_us) + ")");
    previous = index;
  }

  // write_results: one JSON line per job, in job order, then the summary.
  const std::string text = results_text(g, outcome);
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  if (text.empty() || text.back() != '\n') violation("write_results output does not end with a newline");
  if (lines.size() != n + 1)
    violation("write_results wrote " + std::to_string(lines.size()) + " lines for " + std::to_string(n) +
              " jobs");
  std::size_t succeeded = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!nlohmann::json::accept(lines[i]))
      violation("write_results line " + std::to_string(i + 1) + " is not JSON");
    const auto line = nlohmann::json::parse(lines[i]);
    if (!line.is_object() || !line.contains("job") || !line["job"].is_string() ||
        line["job"].get_ref<const std::string&>() != g.jobs[i].id)
      violation("write_results line " + std::to_string(i + 1) + " is not " + job_name(g, i));
    succeeded += outcome.jobs[i].error.empty();
  }
  if (!nlohmann::json::accept(lines[n])) violation("write_results summary is not JSON");
  const auto summary = nlohmann::json::parse(lines[n]);
  if (!summary.is_object() || !summary.contains("summary") || !summary["summary"].is_object())
    violation("write_results last line is not the summary");
  const auto& s = summary["summary"];
  if (s.value("jobs", std::size_t{0}) != n || s.value("succeeded", std::size_t{0}) != succeeded ||
      s.value("failed", std::size_t{0}) != n - succeeded ||
      s.value("end_us", std::uint64_t{0}) != outcome.end_us)
    violation("write_results summary counts disagree with the outcome: " + lines[n]);

  // The other writers must not crash and write valid JSON where it is JSON.
  std::ostringstream trace;
  write_trace(trace, g, outcome);
  if (!nlohmann::json::accept(trace.str())) violation("write_trace output is not JSON");
  // The terminal table: printable lines, ids and names cut (a 1 MB id padded every row).
  std::ostringstream table;
  write_table(table, g, outcome);
  std::istringstream table_lines(table.str());
  for (std::string line; std::getline(table_lines, line);) {
    if (printable(line) != line)
      violation("write_table wrote a line that is not printable: " + printable(line));
    if (line.size() > 2000)
      violation("write_table wrote a line of " + std::to_string(line.size()) + " bytes");
  }
}

// write_graph writes the fields of generated graphs (credit limit, entities, jobs);
// reading its output back must give those fields unchanged.
void check_write_graph(const graph& g) {
  std::ostringstream out;
  write_graph(out, g);
  graph back;
  try {
    back = parse_graph(out.str(), "write_graph output");
  } catch (const input_error& e) {
    violation(std::string("write_graph output is rejected by parse_graph: ") + e.what());
  }
  bool same = back.scheduler.credit_limit == g.scheduler.credit_limit &&
              back.entities.size() == g.entities.size() && back.jobs.size() == g.jobs.size();
  for (std::size_t i = 0; same && i < g.entities.size(); ++i)
    same = back.entities[i].name == g.entities[i].name && back.entities[i].prio == g.entities[i].prio;
  for (std::size_t i = 0; same && i < g.jobs.size(); ++i) {
    const auto& a = g.jobs[i];
    const auto& b = back.jobs[i];
    same = a.id == b.id && a.entity == b.entity && a.duration_us == b.duration_us && a.deps == b.deps &&
           a.credits == b.credits && a.submit_at_us == b.submit_at_us && a.fault.kind == b.fault.kind &&
           a.fault.text == b.fault.text && a.fault.errno_value == b.fault.errno_value &&
           a.fault.slow_us == b.fault.slow_us;
  }
  if (!same) violation("write_graph then parse_graph changed the graph");
}

// Shapes too large for the corpus (libFuzzer's inputs stay small), checked once at
// start: each was a crash, an abort or a wrong result before it became unusable input.
void check_large_shapes() {
  auto expect_rejected = [](const std::string& shape, const std::string& text, std::string_view message) {
    try {
      parse_graph(text, "shape.json");
    } catch (const input_error& e) {
      if (std::string_view(e.what()).find(message) == std::string_view::npos)
        violation(shape + ": rejected with \"" + e.what() + "\", expected \"" + std::string(message) + "\"");
      return;
    }
    violation(shape + ": accepted");
  };
  // A million levels inside an object: nlohmann's recursive copy overflowed the stack.
  const std::size_t levels = 1'000'000;
  expect_rejected("1000000 levels of nesting",
                  "{\"entities\": " + std::string(levels, '[') + std::string(levels, ']') + ", \"jobs\": []}",
                  "shape.json: line 1, column 77: arrays and objects nested deeper than 64 levels");
  // 18447 jobs of 1e15 us: virtual time past 2^64 us.
  std::string jobs =
      R"({"scheduler": {"timeout_us": 1000000000000000}, "entities": [{"name": "e"}], "jobs": [)";
  for (int i = 0; i < 18447; ++i)
    jobs += std::string(i ? ", " : "") + R"({"id": "j)" + std::to_string(i) +
            R"(", "entity": "e", "duration_us": 1000000000000000})";
  expect_rejected(
      "18447 jobs of 1e15 us", jobs + "]}",
      R"(shape.json: jobs[3] (id "j3"): field "duration_us": the run could last until 5000000000000000 us)");
  // A 1 MB id: the table cuts it.
  graph g = parse_graph(R"({"entities": [{"name": "e"}], "jobs": [{"id": ")" + std::string(1 << 20, 'x') +
                            R"(", "entity": "e"}]})",
                        "shape.json");
  std::ostringstream table;
  write_table(table, g, run_virtual(g));
  if (table.str().size() > 4096)
    violation("a 1 MB id: the table is " + std::to_string(table.str().size()) + " bytes");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  check_large_shapes();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  graph g;
  try {
    g = parse_graph(text, "fuzz.json");
  } catch (const input_error& e) {
    // The documented rejection; its message is one line, printable (no control
    // character, no byte of malformed UTF-8 from the input).
    if (std::string_view(e.what()).find('\n') != std::string_view::npos)
      violation(std::string("input_error message spans several lines: ") + e.what());
    if (printable(e.what()) != e.what())
      violation(std::string("input_error message is not printable: ") + printable(e.what()));
    return 0;
  }
  if (too_costly(g)) return 0;

  check_write_graph(g);

  run_outcome first;
  try {
    first = run_virtual(g);
  } catch (const std::exception& e) {
    violation(std::string("run_virtual threw: ") + e.what());
  }
  check_outcome(g, first);

  // Virtual time is deterministic: the same graph always gives the same results.
  run_outcome second;
  try {
    second = run_virtual(g);
  } catch (const std::exception& e) {
    violation(std::string("second run_virtual threw: ") + e.what());
  }
  if (results_text(g, first) != results_text(g, second))
    violation("two virtual runs of the same graph gave different results:\n" + results_text(g, first) +
              "---\n" + results_text(g, second));
  return 0;
}
