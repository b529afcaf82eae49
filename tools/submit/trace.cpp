// What the trace of a run shows (trace.hpp's model_trace), from the same run spans
// and marks as the SVG timeline, and its Chrome trace-event JSON writer.
#include "submit/trace.hpp"

#include <algorithm>
#include <ostream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "submit/marks.hpp"
#include "submit/stats.hpp"

namespace cosched::submit {

std::optional<trace_format> trace_format_named(std::string_view name) noexcept {
  if (name == "json") return trace_format::json;
  if (name == "proto") return trace_format::proto;
  return std::nullopt;
}

trace_model model_trace(const graph& g, const run_outcome& outcome) {
  if (outcome.jobs.size() != g.jobs.size())
    throw std::invalid_argument("write_trace: the outcome is not of this graph");
  trace_model model;
  const auto spans = run_spans(g, outcome);
  model.rings = std::max<std::size_t>(outcome.rings, 1);
  for (const auto& run : outcome.runs) model.rings = std::max(model.rings, run.ring + 1);

  std::vector<std::optional<std::size_t>> last_slice(g.jobs.size());
  for (std::size_t i = 0; i < spans.size(); ++i) {
    const auto& span = spans[i];
    if (!span.occupied_ring()) continue;  // as the picture: it never held the ring
    const auto& run = outcome.runs[i];
    const auto job = static_cast<std::size_t>(run.record.tag);
    model.slices.push_back({run.ring, job, span.attempt, span.begin, span.stop, run.record.run_at,
                            span.completed, span.replayed});
    last_slice[job] = model.slices.size() - 1;
  }

  const auto marks = marks_of(g, outcome, spans);
  for (const auto& reset : marks.resets)
    model.instants.push_back({reset.at_us, trace_place::ring, reset.ring, "reset", std::nullopt});
  const bool shared = g.scheduler.mode == ring_mode::shared_ring;
  for (const auto& timeout : marks.timeouts) {
    const std::size_t entity = g.jobs[timeout.job].entity;
    if (timeout.ring)
      model.instants.push_back({timeout.at_us, trace_place::ring, *timeout.ring, "timeout", timeout.job});
    model.instants.push_back({timeout.at_us, trace_place::entity, entity, "timeout", timeout.job});
    // A shared ring's reset bans the guilty entity; a ring of its own is closed.
    model.instants.push_back(
        {timeout.at_us, trace_place::entity, entity, shared ? "ban" : "ring closed", timeout.job});
  }
  for (const auto& action : g.actions)
    model.instants.push_back({action.at_us, trace_place::entity, action.entity,
                              action.kind == action_kind::kill ? "kill" : "set rings", std::nullopt});
  if (outcome.shut_down_early)
    model.instants.push_back({outcome.end_us, trace_place::scheduler, 0, "nothing left to do", std::nullopt});
  if (outcome.interrupted_by != 0)
    model.instants.push_back({outcome.end_us, trace_place::scheduler, 0, "interrupted", std::nullopt});
  std::stable_sort(model.instants.begin(), model.instants.end(),
                   [](const trace_instant& a, const trace_instant& b) { return a.at_us < b.at_us; });

  for (std::size_t j = 0; j < g.jobs.size(); ++j) {
    if (!last_slice[j]) continue;
    const auto& deps = g.jobs[j].deps;
    for (std::size_t k = 0; k < deps.size(); ++k) {
      const std::size_t d = deps[k];
      if (std::find(deps.begin(), deps.begin() + static_cast<std::ptrdiff_t>(k), d) !=
          deps.begin() + static_cast<std::ptrdiff_t>(k))
        continue;  // a repeated dependency: one arrow
      if (!last_slice[d] || model.slices[*last_slice[d]].begin_us > model.slices[*last_slice[j]].begin_us)
        continue;
      model.flows.push_back({*last_slice[d], *last_slice[j]});
    }
  }
  return model;
}

namespace {

std::string json_string(std::string_view text) { return nlohmann::json(std::string(text)).dump(); }

std::string_view mode_text(ring_mode mode) {
  return mode == ring_mode::shared_ring ? "shared_ring" : "ring_per_entity";
}

}  // namespace

void write_trace(std::ostream& out, const graph& g, const run_outcome& outcome) {
  const trace_model model = model_trace(g, outcome);
  // One process, the scheduler: a thread per ring (tid 1...), then one per entity.
  const auto ring_tid = [](std::size_t ring) { return ring + 1; };
  const auto entity_tid = [&model](std::size_t entity) { return model.rings + 1 + entity; };
  out << "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n";
  out << "{\"ph\":\"M\",\"pid\":1,\"tid\":0,\"name\":\"process_name\",\"args\":{\"name\":"
      << json_string("scheduler (" + std::string(mode_text(g.scheduler.mode)) + ", credit limit " +
                     std::to_string(g.scheduler.credit_limit) + ")")
      << "}}";
  const auto thread = [&out](std::size_t tid, const std::string& name) {
    out << ",\n{\"ph\":\"M\",\"pid\":1,\"tid\":" << tid
        << ",\"name\":\"thread_name\",\"args\":{\"name\":" << json_string(name) << "}}";
    out << ",\n{\"ph\":\"M\",\"pid\":1,\"tid\":" << tid
        << ",\"name\":\"thread_sort_index\",\"args\":{\"sort_index\":" << tid << "}}";
  };
  for (std::size_t r = 0; r < model.rings; ++r) thread(ring_tid(r), "ring " + std::to_string(r));
  for (std::size_t e = 0; e < g.entities.size(); ++e)
    thread(entity_tid(e), g.entities[e].name + " (" + std::string(to_string(g.entities[e].prio)) + ")");

  for (const auto& slice : model.slices) {
    const auto& job = g.jobs[slice.job];
    out << ",\n{\"ph\":\"X\",\"pid\":1,\"tid\":" << ring_tid(slice.ring)
        << ",\"cat\":\"run\",\"name\":" << json_string(job.id) << ",\"ts\":" << slice.begin_us
        << ",\"dur\":" << slice.stop_us - slice.begin_us
        << ",\"args\":{\"entity\":" << json_string(g.entities[job.entity].name)
        << ",\"attempt\":" << slice.attempt << ",\"ended\":\""
        << (slice.completed  ? "completed"
            : slice.replayed ? "replayed"
                             : "cut")
        << "\",\"run_at_us\":" << slice.run_at_us << "}}";
  }
  // Queued to finished: async spans, since the jobs of one entity overlap in time.
  for (std::size_t i = 0; i < g.jobs.size(); ++i) {
    const auto& job = g.jobs[i];
    const auto& result = outcome.jobs[i];
    const std::uint64_t end = std::max(result.queued_us, result.finished_us.value_or(outcome.end_us));
    const auto name = json_string(job.id);
    out << ",\n{\"ph\":\"b\",\"pid\":1,\"tid\":" << entity_tid(job.entity) << ",\"cat\":\"job\",\"id\":" << i
        << ",\"name\":" << name << ",\"ts\":" << result.queued_us
        << ",\"args\":{\"error\":" << (result.error.empty() ? "null" : json_string(result.error))
        << ",\"cause\":" << (result.cause ? json_string(g.jobs[*result.cause].id) : "null")
        << ",\"attempts\":" << result.attempts
        << ",\"scheduled_us\":" << (result.scheduled_us ? std::to_string(*result.scheduled_us) : "null")
        << "}}";
    out << ",\n{\"ph\":\"e\",\"pid\":1,\"tid\":" << entity_tid(job.entity) << ",\"cat\":\"job\",\"id\":" << i
        << ",\"name\":" << name << ",\"ts\":" << end << "}";
  }
  for (const auto& instant : model.instants) {
    const bool scheduler = instant.place == trace_place::scheduler;
    const std::size_t tid = scheduler                            ? 0
                            : instant.place == trace_place::ring ? ring_tid(instant.index)
                                                                 : entity_tid(instant.index);
    out << ",\n{\"ph\":\"i\",\"s\":\"" << (scheduler ? 'p' : 't') << "\",\"pid\":1,\"tid\":" << tid
        << ",\"cat\":\"scheduler\",\"name\":" << json_string(instant.name) << ",\"ts\":" << instant.at_us;
    if (instant.job) out << ",\"args\":{\"job\":" << json_string(g.jobs[*instant.job].id) << "}";
    out << "}";
  }
  // Flows bind to the slice enclosing their timestamp: each slice's start.
  for (std::size_t k = 0; k < model.flows.size(); ++k) {
    const auto& from = model.slices[model.flows[k].from];
    const auto& to = model.slices[model.flows[k].to];
    out << ",\n{\"ph\":\"s\",\"pid\":1,\"tid\":" << ring_tid(from.ring)
        << ",\"cat\":\"dependency\",\"id\":" << k << ",\"name\":\"dependency\",\"ts\":" << from.begin_us
        << "}";
    out << ",\n{\"ph\":\"f\",\"bp\":\"e\",\"pid\":1,\"tid\":" << ring_tid(to.ring)
        << ",\"cat\":\"dependency\",\"id\":" << k << ",\"name\":\"dependency\",\"ts\":" << to.begin_us << "}";
  }
  out << "\n]}\n";
}

}  // namespace cosched::submit
