// Summary statistics of a cosched-submit run, computed from the graph, each job's
// outcome and the rings' run logs; written into the results' summary and on the terminal.
#include "submit/stats.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <iomanip>
#include <ostream>
#include <stdexcept>
#include <string_view>

#include <nlohmann/json.hpp>

namespace cosched::submit {
namespace {

std::string json_string(std::string_view text) { return nlohmann::json(std::string(text)).dump(); }

// `value` rounded to `decimals` places, without trailing zeros ("0.25", "1", "0.3333");
// std::to_chars does not depend on the locale.
std::string rounded(double value, int decimals) {
  std::array<char, 64> buffer{};
  const double scale = std::pow(10.0, decimals);
  value = std::round(value * scale) / scale;
  if (value == 0.0) value = 0.0;  // no "-0"
  auto [end, ec] =
      std::to_chars(buffer.data(), buffer.data() + buffer.size(), value, std::chars_format::fixed, decimals);
  if (ec != std::errc()) return "0";
  std::string text(buffer.data(), end);
  if (text.find('.') != std::string::npos) {
    while (text.back() == '0') text.pop_back();
    if (text.back() == '.') text.pop_back();
  }
  return text;
}

}  // namespace

std::string table_cell(std::string_view text, std::size_t max_chars) {
  std::string shown = printable(text);
  std::size_t chars = 0;
  for (std::size_t i = 0; i < shown.size(); ++i) {
    // printable() leaves valid UTF-8: a character starts at every byte but a continuation.
    if ((static_cast<unsigned char>(shown[i]) & 0xC0) == 0x80) continue;
    if (chars++ == max_chars) {
      shown.resize(i);
      shown += "...";
      break;
    }
  }
  return shown;
}

std::string fixed_places(double value, int decimals) {
  std::array<char, 64> buffer{};
  auto [end, ec] =
      std::to_chars(buffer.data(), buffer.data() + buffer.size(), value, std::chars_format::fixed, decimals);
  return ec == std::errc() ? std::string(buffer.data(), end) : std::string("0");
}

std::vector<run_span> run_spans(const graph& g, const run_outcome& outcome) {
  const auto& runs = outcome.runs;
  std::vector<run_span> spans(runs.size());
  // The index of the same job's next run, if any (that run's run_at is the reset).
  std::vector<std::optional<std::size_t>> next_of_job(runs.size());
  std::vector<std::optional<std::size_t>> last_of_job(g.jobs.size());
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const auto job = static_cast<std::size_t>(runs[i].record.tag);
    if (job >= g.jobs.size()) throw std::invalid_argument("run_spans: a run's tag is not a job of the graph");
    if (last_of_job[job]) {
      next_of_job[*last_of_job[job]] = i;
      spans[i].attempt = spans[*last_of_job[job]].attempt + 1;
    }
    last_of_job[job] = i;
  }
  std::vector<std::uint64_t> ring_free_at(std::max<std::size_t>(outcome.rings, 1), 0);
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const auto& record = runs[i].record;
    if (runs[i].ring >= ring_free_at.size()) ring_free_at.resize(runs[i].ring + 1, 0);
    auto& free_at = ring_free_at[runs[i].ring];
    const auto job = static_cast<std::size_t>(record.tag);
    const std::uint64_t earliest = std::max<std::uint64_t>(record.run_at, record.start);
    std::uint64_t cut = outcome.end_us;
    if (next_of_job[i])
      cut = runs[*next_of_job[i]].record.run_at;
    else if (outcome.jobs[job].finished_us)
      cut = *outcome.jobs[job].finished_us;

    auto& span = spans[i];
    span.replayed = next_of_job[i].has_value();
    // A real-time ring records start and end when the command completes: a command
    // cancelled on the ring (an interrupted run, a ban) still has end 0.
    const bool ended = record.finishes && record.end >= earliest;
    span.completed = ended && !span.replayed && record.end <= cut;
    span.begin = std::max<std::uint64_t>(earliest, free_at);
    const std::uint64_t stop = ended ? std::min<std::uint64_t>(record.end, cut) : cut;
    span.stop = std::max(span.begin, stop);
    if (span.stop > span.begin) free_at = span.stop;
  }
  return spans;
}

std::uint64_t nearest_rank_percentile(std::vector<std::uint64_t> values, unsigned percent) {
  if (values.empty()) throw std::invalid_argument("nearest_rank_percentile: no values");
  if (percent == 0 || percent > 100)
    throw std::invalid_argument("nearest_rank_percentile: percent must be in 1..100");
  const std::size_t n = values.size();
  const std::size_t rank = std::max<std::size_t>(1, (percent * n + 99) / 100);  // ceil(p*n/100)
  auto nth = values.begin() + static_cast<std::ptrdiff_t>(rank - 1);
  std::nth_element(values.begin(), nth, values.end());
  return *nth;
}

double jain_index(std::span<const std::uint64_t> values) {
  long double sum = 0, sum_of_squares = 0;
  for (std::uint64_t x : values) {
    sum += static_cast<long double>(x);
    sum_of_squares += static_cast<long double>(x) * static_cast<long double>(x);
  }
  if (values.empty() || sum_of_squares == 0) return 1.0;
  return static_cast<double>(sum * sum / (static_cast<long double>(values.size()) * sum_of_squares));
}

run_stats compute_stats(const graph& g, const run_outcome& outcome,
                        std::span<const std::optional<std::uint64_t>> deadlines) {
  if (!deadlines.empty() && deadlines.size() != g.jobs.size())
    throw std::invalid_argument("compute_stats: deadlines must be empty or have one entry per job");
  if (outcome.jobs.size() != g.jobs.size())
    throw std::invalid_argument("compute_stats: the outcome is not of this graph");

  run_stats stats;
  stats.total_us = outcome.end_us;
  stats.rings = outcome.rings;
  stats.entities.resize(g.entities.size());
  std::vector<std::vector<std::uint64_t>> latencies(g.entities.size());
  for (std::size_t e = 0; e < g.entities.size(); ++e) {
    stats.entities[e].name = g.entities[e].name;
    stats.entities[e].prio = g.entities[e].prio;
  }
  for (std::size_t i = 0; i < g.jobs.size(); ++i) {
    const auto& result = outcome.jobs[i];
    auto& entity = stats.entities[g.jobs[i].entity];
    ++entity.jobs;
    if (result.error.empty())
      ++entity.succeeded;
    else
      ++entity.failed;
    if (result.finished_us)
      latencies[g.jobs[i].entity].push_back(*result.finished_us -
                                            std::min(*result.finished_us, result.queued_us));
    if (!deadlines.empty() && deadlines[i]) {
      ++stats.jobs_with_deadline;
      if (result.finished_us && *result.finished_us > *deadlines[i]) ++stats.deadline_misses;
    }
  }
  for (std::size_t e = 0; e < g.entities.size(); ++e) {
    if (latencies[e].empty()) continue;
    stats.entities[e].latency_p50_us = nearest_rank_percentile(latencies[e], 50);
    stats.entities[e].latency_p99_us = nearest_rank_percentile(std::move(latencies[e]), 99);
  }

  const auto spans = run_spans(g, outcome);
  for (std::size_t i = 0; i < spans.size(); ++i) {
    const auto job = static_cast<std::size_t>(outcome.runs[i].record.tag);
    stats.entities[g.jobs[job].entity].ring_us += spans[i].busy_us();
    stats.ring_us += spans[i].busy_us();
  }
  for (auto& entity : stats.entities) {
    entity.ring_share =
        stats.ring_us == 0 ? 0.0 : static_cast<double>(entity.ring_us) / static_cast<double>(stats.ring_us);
  }

  for (int level = 0; level < cosched::priority_count; ++level) {
    const auto prio = static_cast<cosched::priority>(level);
    std::vector<std::uint64_t> ring_times;
    for (const auto& entity : stats.entities)
      if (entity.prio == prio) ring_times.push_back(entity.ring_us);
    if (ring_times.size() >= 2) stats.fairness.push_back({prio, ring_times.size(), jain_index(ring_times)});
  }
  return stats;
}

run_stats compute_stats(const graph& g, const run_outcome& outcome) {
  std::vector<std::optional<std::uint64_t>> deadlines;
  deadlines.reserve(g.jobs.size());
  bool any = false;
  for (const auto& job : g.jobs) {
    deadlines.push_back(job.deadline_us);
    any = any || job.deadline_us.has_value();
  }
  if (!any) deadlines.clear();
  return compute_stats(g, outcome, deadlines);
}

void write_stats_json(std::ostream& out, const run_stats& stats) {
  auto optional_number = [](const std::optional<std::uint64_t>& v) {
    return v ? std::to_string(*v) : std::string("null");
  };
  out << "\"entities\": [";
  const char* separator = "";
  for (const auto& entity : stats.entities) {
    out << separator << "{\"name\": " << json_string(entity.name)
        << ", \"priority\": " << json_string(to_string(entity.prio)) << ", \"jobs\": " << entity.jobs
        << ", \"succeeded\": " << entity.succeeded << ", \"failed\": " << entity.failed
        << ", \"latency_p50_us\": " << optional_number(entity.latency_p50_us)
        << ", \"latency_p99_us\": " << optional_number(entity.latency_p99_us)
        << ", \"ring_us\": " << entity.ring_us << ", \"ring_share\": " << rounded(entity.ring_share, 4)
        << "}";
    separator = ", ";
  }
  out << "], \"ring_us\": " << stats.ring_us << ", \"fairness\": [";
  separator = "";
  for (const auto& level : stats.fairness) {
    out << separator << "{\"priority\": " << json_string(to_string(level.prio))
        << ", \"entities\": " << level.entities << ", \"jain_index\": " << rounded(level.jain_index, 4)
        << "}";
    separator = ", ";
  }
  // No "deadline_misses": the summary already has the scheduler's own count,
  // which equals run_stats::deadline_misses.
  out << "], \"jobs_with_deadline\": " << stats.jobs_with_deadline << ", \"total_us\": " << stats.total_us;
}

void write_stats_text(std::ostream& out, const run_stats& stats, std::size_t max_entities) {
  const auto saved_flags = out.flags();  // std::left and std::right stick to the stream
  std::size_t name_width = 6;
  const std::size_t shown = std::min(max_entities, stats.entities.size());
  std::vector<std::string> names;  // cut: a long name must not widen every row
  for (std::size_t e = 0; e < shown; ++e) {
    names.push_back(table_cell(stats.entities[e].name));
    name_width = std::max(name_width, names.back().size());
  }
  auto number = [](const std::optional<std::uint64_t>& v) {
    return v ? std::to_string(*v) : std::string("-");
  };
  if (shown > 0) {
    out << std::left << std::setw(static_cast<int>(name_width) + 2) << "entity" << std::setw(8) << "priority"
        << std::right << std::setw(8) << "done" << std::setw(8) << "failed" << std::setw(12) << "p50 (us)"
        << std::setw(12) << "p99 (us)" << std::setw(12) << "ring (us)" << std::setw(8) << "share"
        << "\n";
  }
  for (std::size_t e = 0; e < shown; ++e) {
    const auto& entity = stats.entities[e];
    out << std::left << std::setw(static_cast<int>(name_width) + 2) << names[e] << std::setw(8)
        << to_string(entity.prio) << std::right << std::setw(8) << entity.succeeded << std::setw(8)
        << entity.failed << std::setw(12) << number(entity.latency_p50_us) << std::setw(12)
        << number(entity.latency_p99_us) << std::setw(12) << entity.ring_us << std::setw(8)
        << fixed_places(entity.ring_share * 100.0, 1) + "%"
        << "\n";
  }
  if (stats.entities.size() > shown)
    out << "... and " << stats.entities.size() - shown << " more entities (see --results)\n";
  out << "fairness (Jain's index of ring time within a priority): ";
  if (stats.fairness.empty()) out << "no priority has 2 entities";
  const char* separator = "";
  for (const auto& level : stats.fairness) {
    out << separator << to_string(level.prio) << " " << rounded(level.jain_index, 4) << " (" << level.entities
        << " entities)";
    separator = ", ";
  }
  out << "\n";
  out << "total " << stats.total_us << " us; rings busy " << stats.ring_us << " us (" << stats.rings
      << (stats.rings == 1 ? " ring)" : " rings)");
  if (stats.jobs_with_deadline > 0)
    out << "; deadline misses: " << stats.deadline_misses << " of " << stats.jobs_with_deadline
        << " jobs with a deadline";
  out << "\n";
  out.flags(saved_flags);
}

}  // namespace cosched::submit
