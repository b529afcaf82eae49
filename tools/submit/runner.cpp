// The graph runner in virtual time: every push, kill and completion is an event
// of the virtual clock; the real scheduler and job coroutines do the rest.
#include "submit/runner.hpp"

#include <algorithm>
#include <iomanip>
#include <map>
#include <ostream>
#include <sstream>
#include <unordered_map>

#include <asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "cosched/cosched.hpp"
#include "cosched/sim/sim_ring.hpp"

namespace cosched::submit {
namespace {

using sim_job = job<sim::command>;

// The body of every graph job: wait for the dependencies in `deps` order, then
// hand over the command.
sim_job graph_job(std::vector<fence> deps, sim::command cmd) {
  for (auto& dependency : deps) co_await dependency;
  co_return cmd;
}

sim::fault to_sim(const fault_spec& f) {
  switch (f.kind) {
    case fault_kind::none: return sim::fault::none();
    case fault_kind::error: return sim::fault::error(f.errno_value);
    case fault_kind::hang: return sim::fault::hang();
    case fault_kind::slow: return sim::fault::slow(f.slow_us);
  }
  return sim::fault::none();
}

std::string json_string(std::string_view text) { return nlohmann::json(std::string(text)).dump(); }

}  // namespace

void check_supported(const graph& g, std::string_view file_name) {
  const std::string file(file_name);
  if (g.scheduler.mode != ring_mode::shared_ring)
    throw input_error(file + ": scheduler: field \"mode\": \"ring_per_entity\" is not supported yet");
  if (g.scheduler.timeout_us)
    throw input_error(file + ": scheduler: field \"timeout_us\": timeouts are not supported yet");
  if (g.scheduler.policy != policy_kind::fifo)
    throw input_error(file + ": scheduler: field \"policy\": only \"fifo\" is supported yet");
  if (g.scheduler.rings != 1)
    throw input_error(file + ": scheduler: field \"rings\": only 1 ring is supported yet");
  for (std::size_t i = 0; i < g.jobs.size(); ++i) {
    if (g.jobs[i].deadline_us)
      throw input_error(file + ": jobs[" + std::to_string(i) + "] (id " + json_string(g.jobs[i].id) +
                        "): field \"deadline_us\": deadlines need policy \"deadline\", which is not supported yet");
  }
}

run_outcome run_virtual(const graph& g) {
  asio::io_context ctx;
  sim::virtual_clock clock;
  sim::virtual_ring ring(clock);
  scheduler<sim::command> sched(ctx.get_executor(), ring, {.credit_limit = g.scheduler.credit_limit});

  std::vector<entity<sim::command>> entities;
  std::unordered_map<std::uint64_t, std::size_t> entity_by_context;
  for (std::size_t i = 0; i < g.entities.size(); ++i) {
    entities.push_back(sched.make_entity({.prio = g.entities[i].prio, .name = g.entities[i].name}));
    entity_by_context.emplace(entities.back().context(), i);
  }

  run_outcome outcome;
  outcome.jobs.resize(g.jobs.size());
  std::vector<fence> finished(g.jobs.size());
  std::vector<std::vector<std::size_t>> jobs_by_seqno(g.entities.size());  // [entity][seqno-1]
  std::size_t open_jobs = g.jobs.size();

  auto record_finish = [&](std::size_t index) {
    return [&, index](std::error_code ec) {
      auto& result = outcome.jobs[index];
      result.finished_us = clock.now();
      result.error = error_name(ec);
      if (auto cause = finished[index].cause()) {
        auto owner = entity_by_context.find(cause->context);
        if (owner != entity_by_context.end() && cause->seqno >= 1 &&
            cause->seqno <= jobs_by_seqno[owner->second].size())
          result.cause = jobs_by_seqno[owner->second][cause->seqno - 1];
      }
      outcome.end_us = std::max(outcome.end_us, clock.now());
      --open_jobs;
    };
  };

  for (std::size_t index : push_order(g)) {
    const auto& spec = g.jobs[index];
    clock.at(spec.submit_at_us, sim::phase::push, [&, index] {
      const auto& job_spec = g.jobs[index];
      std::vector<fence> deps;
      deps.reserve(job_spec.deps.size());
      for (std::size_t dep : job_spec.deps) deps.push_back(finished[dep]);
      sim::command cmd{job_spec.duration_us, to_sim(job_spec.fault), index};
      outcome.jobs[index].queued_us = clock.now();
      auto pushed = entities[job_spec.entity].push(graph_job(std::move(deps), cmd),
                                                   {.credits = job_spec.credits});
      jobs_by_seqno[job_spec.entity].push_back(index);
      finished[index] = pushed.finished;
      pushed.finished.async_wait(ctx.get_executor(), record_finish(index));
    });
  }
  for (const auto& action : g.actions) {
    clock.at(action.at_us, sim::phase::kill, [&, entity_index = action.entity] {
      entities[entity_index].kill();
    });
  }

  clock.run(ctx);
  if (open_jobs > 0) outcome.shut_down_early = true;
  // "Nothing left to do": whatever is still undecided fails `shutdown` now.
  auto done = sched.shutdown(std::chrono::nanoseconds(0));
  clock.run(ctx);
  if (!done.signalled()) throw std::logic_error("scheduler shutdown did not complete");
  if (open_jobs > 0) throw std::logic_error("a job's finished fence never signalled");

  for (const auto& record : ring.log()) {
    auto& result = outcome.jobs[record.tag];
    ++result.attempts;
    result.scheduled_us = record.run_at;
  }
  return outcome;
}

void write_results(std::ostream& out, const graph& g, const run_outcome& outcome,
                   std::string_view backend, std::string_view clock) {
  auto optional_number = [](const std::optional<std::uint64_t>& v) {
    return v ? std::to_string(*v) : std::string("null");
  };
  std::size_t succeeded = 0;
  std::map<std::string, std::size_t> errors;
  for (std::size_t i = 0; i < g.jobs.size(); ++i) {
    const auto& result = outcome.jobs[i];
    out << "{\"job\": " << json_string(g.jobs[i].id)
        << ", \"entity\": " << json_string(g.entities[g.jobs[i].entity].name)
        << ", \"error\": " << (result.error.empty() ? "null" : json_string(result.error))
        << ", \"cause\": " << (result.cause ? json_string(g.jobs[*result.cause].id) : "null")
        << ", \"attempts\": " << result.attempts << ", \"queued_us\": " << result.queued_us
        << ", \"scheduled_us\": " << optional_number(result.scheduled_us)
        << ", \"finished_us\": " << optional_number(result.finished_us) << "}\n";
    if (result.error.empty()) ++succeeded; else ++errors[result.error];
  }
  // The summary in the same style as the job lines: ", " and ": " separators.
  out << "{\"summary\": {\"jobs\": " << g.jobs.size() << ", \"succeeded\": " << succeeded
      << ", \"failed\": " << g.jobs.size() - succeeded << ", \"errors\": {";
  const char* separator = "";
  for (const auto& [name, count] : errors) {
    out << separator << json_string(name) << ": " << count;
    separator = ", ";
  }
  out << "}, \"end_us\": " << outcome.end_us
      << ", \"nothing_left_to_do\": " << (outcome.shut_down_early ? "true" : "false")
      << ", \"backend\": " << json_string(backend) << ", \"clock\": " << json_string(clock) << "}}\n";
}

void write_table(std::ostream& out, const graph& g, const run_outcome& outcome) {
  std::size_t id_width = 3, entity_width = 6, error_width = 7, cause_width = 5;
  for (std::size_t i = 0; i < g.jobs.size(); ++i) {
    const auto& result = outcome.jobs[i];
    id_width = std::max(id_width, g.jobs[i].id.size());
    entity_width = std::max(entity_width, g.entities[g.jobs[i].entity].name.size());
    error_width = std::max(error_width, result.error.size());
    if (result.cause) cause_width = std::max(cause_width, g.jobs[*result.cause].id.size());
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
  std::size_t succeeded = 0;
  for (std::size_t i = 0; i < g.jobs.size(); ++i) {
    const auto& result = outcome.jobs[i];
    cell(g.jobs[i].id, id_width);
    cell(g.entities[g.jobs[i].entity].name, entity_width);
    cell(result.error.empty() ? "ok" : result.error, error_width);
    cell(result.cause ? g.jobs[*result.cause].id : "-", cause_width);
    out << std::right << std::setw(8) << result.attempts << "  ";
    number(result.queued_us, 9);
    number(result.scheduled_us, 9);
    number(result.finished_us, 9);
    out << "\n";
    if (result.error.empty()) ++succeeded;
  }
  out << g.jobs.size() << " jobs: " << succeeded << " succeeded, " << g.jobs.size() - succeeded
      << " failed; last fence signalled at " << outcome.end_us << " us";
  if (outcome.shut_down_early) out << " (nothing left to do: the rest was shut down)";
  out << "\n";
}

}  // namespace cosched::submit
