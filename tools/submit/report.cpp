// What cosched-submit prints of a finished run: the results (JSON lines), the
// terminal table and the summary; run_graph (runner.cpp) makes the outcome.
#include <array>
#include <csignal>
#include <iomanip>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "submit/runner.hpp"
#include "submit/stats.hpp"

namespace cosched::submit {
namespace {

std::string json_string(std::string_view text) { return nlohmann::json(std::string(text)).dump(); }

std::string signal_name(int signal) {
  return signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "signal " + std::to_string(signal);
}

std::string unit_name(const virtgpu::calibration& c) {
  return std::to_string(c.unit_side) + "x" + std::to_string(c.unit_side) + " copy";
}

// How many jobs were verified right, wrong, and not at all.
std::array<std::size_t, 3> verified_counts(const run_outcome& outcome) {
  std::array<std::size_t, 3> counts{};
  for (const auto& v : outcome.verified) ++counts[v ? (*v ? 0 : 1) : 2];
  return counts;
}

// How the failed jobs failed: by themselves (cause null: their own fault or
// timeout, a kill, shutdown) or by cascade (cause another job: a failed
// dependency, a ban or ring close); and how many jobs have a fault of their own,
// and of those how many failed by cascade before it could act.
struct failure_counts {
  std::size_t by_itself = 0;
  std::size_t by_cascade = 0;
  std::size_t with_fault = 0;
  std::size_t with_fault_by_cascade = 0;
};

failure_counts count_failures(const graph& g, const run_outcome& outcome) {
  failure_counts counts;
  for (std::size_t i = 0; i < g.jobs.size(); ++i) {
    const auto& result = outcome.jobs[i];
    const bool cascade = !result.error.empty() && result.cause.has_value();
    if (!result.error.empty()) ++(cascade ? counts.by_cascade : counts.by_itself);
    if (g.jobs[i].fault.kind == fault_kind::none) continue;
    ++counts.with_fault;
    if (cascade) ++counts.with_fault_by_cascade;
  }
  return counts;
}

}  // namespace

void write_results(std::ostream& out, const graph& g, const run_outcome& outcome, std::string_view backend,
                   std::string_view clock) {
  auto optional_number = [](const std::optional<std::uint64_t>& v) {
    return v ? std::to_string(*v) : std::string("null");
  };
  std::size_t succeeded = 0;
  std::map<std::string, std::size_t> errors;
  auto message = outcome.messages.begin();  // sorted by job index
  for (std::size_t i = 0; i < g.jobs.size(); ++i) {
    const auto& result = outcome.jobs[i];
    out << "{\"job\": " << json_string(g.jobs[i].id)
        << ", \"entity\": " << json_string(g.entities[g.jobs[i].entity].name)
        << ", \"error\": " << (result.error.empty() ? "null" : json_string(result.error))
        << ", \"cause\": " << (result.cause ? json_string(g.jobs[*result.cause].id) : "null")
        << ", \"attempts\": " << result.attempts << ", \"queued_us\": " << result.queued_us
        << ", \"scheduled_us\": " << optional_number(result.scheduled_us)
        << ", \"finished_us\": " << optional_number(result.finished_us);
    // Several shared rings: the ring of the job's last run (null if never run).
    if (g.scheduler.rings > 1) out << ", \"ring\": " << (result.ring ? std::to_string(*result.ring) : "null");
    if (!outcome.verified.empty())
      out << ", \"verified\": " << (outcome.verified[i] ? (*outcome.verified[i] ? "true" : "false") : "null");
    // What the job's body threw (fault "throw:<message>").
    if (message != outcome.messages.end() && message->first == i)
      out << ", \"message\": " << json_string((message++)->second);
    out << "}\n";
    if (result.error.empty())
      ++succeeded;
    else
      ++errors[result.error];
  }
  // The summary in the same style as the job lines: ", " and ": " separators.
  const auto failures = count_failures(g, outcome);
  out << "{\"summary\": {\"jobs\": " << g.jobs.size() << ", \"succeeded\": " << succeeded
      << ", \"failed\": " << g.jobs.size() - succeeded << ", \"failed_by_itself\": " << failures.by_itself
      << ", \"failed_by_cascade\": " << failures.by_cascade
      << ", \"jobs_with_fault\": " << failures.with_fault << ", \"errors\": {";
  const char* separator = "";
  for (const auto& [name, count] : errors) {
    out << separator << json_string(name) << ": " << count;
    separator = ", ";
  }
  out << "}, \"end_us\": " << outcome.end_us
      << ", \"nothing_left_to_do\": " << (outcome.shut_down_early ? "true" : "false") << ", \"interrupted\": "
      << (outcome.interrupted_by ? json_string(signal_name(outcome.interrupted_by)) : "null")
      << ", \"backend\": " << json_string(backend) << ", \"clock\": " << json_string(clock)
      << ", \"deadline_misses\": " << outcome.deadline_misses << ", ";
  if (outcome.calibration) {
    const auto& c = *outcome.calibration;
    out << "\"gpu\": {\"renderer\": " << json_string(outcome.renderer.value_or(""))
        << ", \"empty_job_us\": " << fixed_places(c.empty_us, 1)
        << ", \"unit\": " << json_string(unit_name(c)) << ", \"unit_us\": " << fixed_places(c.unit_us, 1)
        << "}, ";
  }
  if (!outcome.verified.empty()) {
    const auto counts = verified_counts(outcome);
    out << "\"verified\": {\"true\": " << counts[0] << ", \"false\": " << counts[1]
        << ", \"null\": " << counts[2] << "}, ";
  }
  write_stats_json(out, compute_stats(g, outcome));
  out << "}}\n";
}

void write_table(std::ostream& out, const graph& g, const run_outcome& outcome) {
  // Ids and names cut to table_cell's length: a long one must not widen every row.
  std::size_t id_width = 3, entity_width = 6, error_width = 7, cause_width = 5;
  for (std::size_t i = 0; i < g.jobs.size(); ++i) {
    const auto& result = outcome.jobs[i];
    id_width = std::max(id_width, table_cell(g.jobs[i].id).size());
    entity_width = std::max(entity_width, table_cell(g.entities[g.jobs[i].entity].name).size());
    error_width = std::max(error_width, result.error.size());
    if (result.cause) cause_width = std::max(cause_width, table_cell(g.jobs[*result.cause].id).size());
  }
  auto cell = [&out](std::string_view text, std::size_t width) {
    out << std::left << std::setw(static_cast<int>(width) + 2) << text;
  };
  auto number = [&out](const std::optional<std::uint64_t>& v, int width) {
    out << std::right << std::setw(width) << (v ? std::to_string(*v) : std::string("-")) << "  ";
  };
  cell("job", id_width);
  cell("entity", entity_width);
  cell("outcome", error_width);
  cell("cause", cause_width);
  out << "attempts     queued  scheduled   finished  (us)\n";
  for (std::size_t i = 0; i < g.jobs.size(); ++i) {
    const auto& result = outcome.jobs[i];
    cell(table_cell(g.jobs[i].id), id_width);
    cell(table_cell(g.entities[g.jobs[i].entity].name), entity_width);
    cell(result.error.empty() ? "ok" : result.error, error_width);
    cell(result.cause ? table_cell(g.jobs[*result.cause].id) : "-", cause_width);
    out << std::right << std::setw(8) << result.attempts << "  ";
    number(result.queued_us, 9);
    number(result.scheduled_us, 9);
    number(result.finished_us, 9);
    out << "\n";
  }
  write_summary(out, g, outcome);
}

void write_summary(std::ostream& out, const graph& g, const run_outcome& outcome) {
  std::size_t succeeded = 0;
  for (const auto& result : outcome.jobs) succeeded += result.error.empty();
  const auto failures = count_failures(g, outcome);
  out << g.jobs.size() << " jobs: " << succeeded << " succeeded, " << g.jobs.size() - succeeded << " failed";
  if (succeeded < g.jobs.size())
    out << " (" << failures.by_itself << " by itself, " << failures.by_cascade << " by cascade)";
  out << "; last fence signalled at " << outcome.end_us << " us";
  if (outcome.shut_down_early) out << " (nothing left to do: the rest was shut down)";
  if (outcome.interrupted_by)
    out << " (interrupted by " << signal_name(outcome.interrupted_by) << ": the rest was shut down)";
  out << "\n";
  if (failures.with_fault > 0) {
    out << failures.with_fault
        << (failures.with_fault == 1 ? " job has a fault of its own" : " jobs have a fault of their own");
    if (failures.with_fault_by_cascade > 0)
      out << "; " << failures.with_fault_by_cascade << " of them failed by cascade before it could act";
    out << "\n";
  }
  if (outcome.calibration) {
    const auto& c = *outcome.calibration;
    out << "GPU: " << outcome.renderer.value_or("virgl")
        << "; jobs sized by a calibration at start: an empty job " << fixed_places(c.empty_us, 1)
        << " us, each " << unit_name(c) << " " << fixed_places(c.unit_us, 1) << " us more\n";
  }
  if (!outcome.verified.empty()) {
    const auto counts = verified_counts(outcome);
    out << "verified by readback: " << counts[0] << " right, " << counts[1] << " wrong, " << counts[2]
        << " never reached the GPU\n";
  }
  // Per entity, fairness, ring time and deadline misses (of how many deadlines).
  write_stats_text(out, compute_stats(g, outcome));
}

}  // namespace cosched::submit
