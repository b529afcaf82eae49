// The reference model: "Semantics, exactly" of DESIGN.md as a discrete-event
// simulation, written from the text alone, to check the real scheduler against.
//
// Readings of DESIGN.md where the text leaves a choice (each one is also in the
// seeded test's report):
//  1. Each phase of an instant takes full effect, including the signals and the
//     dependency failures it causes at that instant, before the next phase: a job
//     whose dependency fails through a completion or a timeout at t keeps that
//     error even if a timeout or kill of t would also take it (the failure "reaches
//     a dependent when the failed job's finished fence signals, at that same
//     instant", and completions come before timeouts, timeouts before kills).
//     model_readings::cascade_after_bans_and_kills turns this the other way.
//  2. Within a phase, the timeouts of the instant (one per ring at most) and the
//     kills of the instant decide all their victims first and signal afterwards:
//     a job of a banned entity or closed ring fails `cancelled` (cause: the guilty
//     job), even when it waits for a job that another ring's timeout at the same
//     instant fails; a killed job whose dependency is killed at the same instant
//     fails `killed` with no cause. ("Every other job of that entity fails
//     cancelled"; "the entity's jobs that have not been run fail killed".)
//  3. Commands that the instant's selection or replay runs and that end at that
//     same instant (zero durations) complete after the instant's kills and pushes,
//     then the scheduler selects again, still at that instant.
//  4. A job whose outcome is already decided (it waits only for its predecessor to
//     signal) keeps it when its entity is killed or banned later, as DESIGN.md says
//     for "nothing left to do".
//  5. A job that fails before reaching the ring leaves the entity's queue at once:
//     the job behind it becomes the head even though the failed one has not signalled.
//  6. A push to an entity that died twice (killed, and banned or its ring closed)
//     fails with the reason of the first death, in the phase order of the instant
//     when both happen at once (model_readings::first_death_decides_pushes).
//  7. "Nothing left to do" happens at the instant of the last event that took
//     effect; pending actions (kills, ring sets) and pushes count as possible
//     progress even when they would change nothing.
//  8. A `slow` command is never timed out (it reports progress until it ends); a
//     command of any other kind whose duration exceeds T is hung at start + T; one
//     that ends exactly at start + T completes (completions come first).
//
// Policies and several shared rings follow the rules of the README's "Scheduling
// policies" (selection step by step: a new step after every command run; fair's
// activity and floor at the start of each step). Ring affinity follows DESIGN.md's
// "Entity": an entity's "rings" and `set_rings` actions (applied with the kills of
// their instant, in file order) say which rings its next placement may use; an
// entity with commands in flight sends its head to their ring, allowed or not; a
// placed head goes to the least loaded allowed ring not waiting for credits (ties:
// the lowest index), and waits when every allowed ring waits.
//
// Pipelining follows DESIGN.md's "Scheduler": with "pipeline": true, a dependency
// that has been run on the dependent's ring (the one shared ring, or in
// ring_per_entity mode the entity's own, so a dependency of its own entity) and is
// not decided as failed is passed unsignalled, when the dependent reaches it in
// `deps` and again when the one it waits for is run (at that step: the dependent
// may run at the next). A dependent not run yet fails when such a dependency
// signals a failure; one whose command completed on the ring takes at its signal
// the error of the first of them in `deps` order that failed (cause: its root).
#include "reference_model.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "cosched/error.hpp"

namespace cosched::seeded {
namespace {

using submit::fault_kind;
using time_us = std::uint64_t;

struct job_state {
  bool pushed = false;
  bool in_queue = false;               // in its entity's FIFO: pushed, undecided, not run yet
  bool prepared = false;               // every dependency has signalled without error
  std::size_t awaiting = 0;            // index into deps of the dependency awaited now
  std::vector<std::size_t> pipelined;  // deps passed unsignalled by pipelining, in deps order
  bool completed = false;  // its command completed on the ring (not timed out, cancelled or shut down)
  bool on_ring = false;
  std::size_t ring = 0;  // the ring it was placed on
  time_us run_time = 0;  // when it was last run or replayed
  bool decided = false;  // the outcome is known; it may still wait for its predecessor
  bool signalled = false;
  submit::job_outcome out;
};

struct ring_command {
  std::size_t job = 0;
  time_us start = 0;           // meaningful unless the command sits behind a hang
  std::optional<time_us> end;  // none: a hang, or behind one
};

struct ring_state {
  std::deque<ring_command> commands;  // run and not finished, in run order
  std::uint32_t used = 0;             // credits of those commands
  time_us busy_until = 0;             // end of the last command that will end
  bool stuck = false;                 // a hang is on the ring: nothing after it starts
  bool closed = false;                // ring_per_entity after a timeout
  time_us last_finish = 0;            // policy fair: latest completion or reset
};

struct entity_state {
  std::vector<std::size_t> pushed;  // in push order
  std::size_t next_signal = 0;      // index into pushed of the next job to signal
  bool dead = false;                // later pushes fail with dead_error
  std::string dead_error;
  std::optional<std::size_t> dead_cause;
  std::size_t ring = 0;              // shared rings: where its commands in flight are
  std::vector<std::size_t> allowed;  // shared rings: where its next placement may go (empty: every ring)
  std::uint32_t in_flight = 0;       // its commands on a ring
  std::uint64_t last_served = 0;     // policy rr: stamp of its latest first run
  std::uint64_t virtual_ns = 0;      // policy fair: weighted ring time of commands that left the ring
  std::uint64_t estimate_ns = 0;     // policy fair: its latest measured ring time (0: none)
  bool fair_active = false;
};

class model {
 public:
  model(const submit::graph& g, const model_readings& readings) : g_(g), readings_(readings) {
    jobs_.resize(g.jobs.size());
    waiters_.resize(g.jobs.size());
    pipelined_dependents_.resize(g.jobs.size());
    dependents_.resize(g.jobs.size());
    for (std::size_t job = 0; job < g.jobs.size(); ++job)
      for (const std::size_t dep : g.jobs[job].deps) dependents_[dep].push_back(job);
    entities_.resize(g.entities.size());
    for (std::size_t e = 0; e < g.entities.size(); ++e) entities_[e].allowed = g.entities[e].rings;
    shared_ = g.scheduler.mode == submit::ring_mode::shared_ring;
    rings_.resize(shared_ ? g.scheduler.rings : g.entities.size());

    // Push order: by submit time, the file order among equal times.
    push_order_.resize(g.jobs.size());
    std::iota(push_order_.begin(), push_order_.end(), std::size_t{0});
    std::stable_sort(push_order_.begin(), push_order_.end(), [&](std::size_t a, std::size_t b) {
      return g.jobs[a].submit_at_us < g.jobs[b].submit_at_us;
    });
    rank_.resize(g.jobs.size());
    for (std::size_t r = 0; r < push_order_.size(); ++r) rank_[push_order_[r]] = r;
    action_order_.resize(g.actions.size());
    std::iota(action_order_.begin(), action_order_.end(), std::size_t{0});
    std::stable_sort(action_order_.begin(), action_order_.end(),
                     [&](std::size_t a, std::size_t b) { return g.actions[a].at_us < g.actions[b].at_us; });
  }

  std::vector<submit::job_outcome> run() {
    while (const auto next = next_event()) {
      now_ = *next;
      process_instant();
    }
    // Nothing pending can make progress: shut down at the last instant.
    if (std::any_of(jobs_.begin(), jobs_.end(), [](const job_state& j) { return !j.signalled; })) shutdown();

    std::vector<submit::job_outcome> outcomes;
    for (const auto& j : jobs_) {
      if (!j.signalled) throw std::logic_error("reference model: a job never signalled");
      outcomes.push_back(j.out);
    }
    return outcomes;
  }

 private:
  // ------------------------------------------------------------ the event loop

  std::optional<time_us> next_event() const {
    std::optional<time_us> next;
    auto consider = [&](time_us t) {
      if (!next || t < *next) next = t;
    };
    if (next_push_ < push_order_.size()) consider(g_.jobs[push_order_[next_push_]].submit_at_us);
    if (next_action_ < action_order_.size()) consider(g_.actions[action_order_[next_action_]].at_us);
    for (const auto& r : rings_) {
      // Ends are non-decreasing in run order: the front ends first.
      if (!r.commands.empty() && r.commands.front().end) consider(*r.commands.front().end);
    }
    for (std::size_t r = 0; r < rings_.size(); ++r) {
      if (const auto t = timeout_at(r)) consider(*t);
    }
    return next;
  }

  // One instant: completions, timeouts, actions, pushes, then selection (reading 3:
  // commands ending at this instant because selection or replay just ran them are
  // completed in a further round, followed by another selection).
  void process_instant() {
    bool first_round = true;
    for (;;) {
      deferring_ = first_round && readings_.cascade_after_bans_and_kills;
      complete_due();
      drain();
      timeouts_due();
      drain();
      if (first_round) {
        // Reading 2: the kills of one instant decide all their victims, then signal.
        // A ring set only changes where the entity's next placement may go.
        std::vector<std::size_t> killed;
        while (next_action_ < action_order_.size() && g_.actions[action_order_[next_action_]].at_us == now_) {
          const auto& action = g_.actions[action_order_[next_action_++]];
          if (action.kind == submit::action_kind::set_rings) {
            entities_[action.entity].allowed = action.rings;
            continue;
          }
          killed.push_back(action.entity);
          kill(killed.back());
        }
        for (const std::size_t e : killed) signal_ready(e);
        if (deferring_) {
          deferring_ = false;
          for (std::size_t e = 0; e < entities_.size(); ++e) signal_ready(e);
        }
        drain();
        while (next_push_ < push_order_.size() && g_.jobs[push_order_[next_push_]].submit_at_us == now_) {
          push(push_order_[next_push_++]);
        }
        drain();
        first_round = false;
      }
      // Selection, then what its runs set off (pipelined dependents that fail),
      // then selection again.
      do select();
      while (drain());
      if (!completion_due()) return;
    }
  }

  bool completion_due() const {
    return std::any_of(rings_.begin(), rings_.end(), [&](const ring_state& r) {
      return !r.commands.empty() && r.commands.front().end && *r.commands.front().end <= now_;
    });
  }

  // ------------------------------------------------------------ rings

  time_us duration_of(std::size_t job) const {
    const auto& spec = g_.jobs[job];
    return spec.fault.kind == fault_kind::slow ? spec.fault.slow_us : spec.duration_us;
  }

  // Puts the command of `job` at the back of ring `ring`, run at now_.
  void place_on_ring(std::size_t job, std::size_t ring) {
    auto& r = rings_[ring];
    r.used += g_.jobs[job].credits;
    ring_command c{job, 0, std::nullopt};
    if (!r.stuck) {
      c.start = std::max(now_, r.busy_until);
      if (g_.jobs[job].fault.kind == fault_kind::hang) {
        r.stuck = true;
      } else {
        c.end = c.start + duration_of(job);
        r.busy_until = *c.end;
      }
    }
    r.commands.push_back(c);
    auto& j = jobs_[job];
    j.on_ring = true;
    j.ring = ring;
    j.run_time = now_;
    auto& e = entities_[g_.jobs[job].entity];
    e.ring = ring;
    ++e.in_flight;
    ++j.out.attempts;
    j.out.scheduled_us = now_;
    j.out.ring = ring;
  }

  void take_off_ring(std::size_t job) {
    auto& j = jobs_[job];
    if (!j.on_ring) return;
    j.on_ring = false;
    --entities_[g_.jobs[job].entity].in_flight;
  }

  bool fair() const { return g_.scheduler.policy == submit::policy_kind::fair; }

  static std::uint64_t multiplier(priority p) {
    switch (p) {
      case priority::kernel:
        return 1;
      case priority::high:
        return 2;
      case priority::normal:
        return 4;
      case priority::low:
        return 8;
    }
    return 8;
  }

  // Policy fair: a command leaves ring `ring` having used it from its run (or
  // the ring's latest completion or reset, if later) until now.
  void charge(std::size_t job, std::size_t ring) {
    auto& r = rings_[ring];
    const time_us start = std::max(jobs_[job].run_time, r.last_finish);
    const std::uint64_t ns = (now_ - start) * 1000;
    r.last_finish = std::max(r.last_finish, now_);
    auto& e = entities_[g_.jobs[job].entity];
    e.estimate_ns = std::max<std::uint64_t>(ns, 1);
    measured_total_ns_ += ns;
    ++measured_count_;
    e.virtual_ns += ns * multiplier(g_.entities[g_.jobs[job].entity].prio);
  }

  std::uint64_t fair_time(std::size_t entity) const {
    const auto& e = entities_[entity];
    const std::uint64_t mean =
        measured_count_ ? std::max<std::uint64_t>(measured_total_ns_ / measured_count_, 1) : 1;
    const std::uint64_t estimate = e.estimate_ns ? e.estimate_ns : mean;
    return e.virtual_ns + e.in_flight * estimate * multiplier(g_.entities[entity].prio);
  }

  void complete_due() {
    for (auto& r : rings_) {
      while (!r.commands.empty() && r.commands.front().end && *r.commands.front().end <= now_) {
        const std::size_t job = r.commands.front().job;
        r.commands.pop_front();
        r.used -= g_.jobs[job].credits;
        if (fair()) charge(job, static_cast<std::size_t>(&r - rings_.data()));
        const auto& fault = g_.jobs[job].fault;
        std::string error;
        if (fault.kind == fault_kind::error) {
          error = error_name(std::error_code(fault.errno_value, std::generic_category()));
        }
        jobs_[job].completed = true;
        decide(job, error, std::nullopt);
        signal_ready(g_.jobs[job].entity);
      }
    }
  }

  // The moment the ring's front command times out, if it will: T after it started,
  // unless it is slow (it reports progress and is extended until it ends) or it
  // ends by then (a completion at that very instant comes first).
  std::optional<time_us> timeout_at(std::size_t ring) const {
    const auto& r = rings_[ring];
    if (!g_.scheduler.timeout_us || r.commands.empty()) return std::nullopt;
    const auto& front = r.commands.front();
    const time_us limit = *g_.scheduler.timeout_us;
    if (g_.jobs[front.job].fault.kind == fault_kind::slow) return std::nullopt;
    if (front.end && *front.end - front.start <= limit) return std::nullopt;
    return front.start + limit;
  }

  // Reading 2: the timeouts of one instant (one per ring at most) decide all their
  // victims first; the signals, and the failures they carry to dependents, follow.
  void timeouts_due() {
    std::vector<std::size_t> banned;
    for (std::size_t r = 0; r < rings_.size(); ++r) {
      if (timeout_at(r) == now_) banned.push_back(time_out(r));
    }
    for (const std::size_t e : banned) signal_ready(e);
  }

  // Returns the entity of the guilty job.
  std::size_t time_out(std::size_t ring) {
    auto& r = rings_[ring];
    const std::size_t guilty = r.commands.front().job;
    const std::size_t banned = g_.jobs[guilty].entity;
    const auto on_ring = std::move(r.commands);
    r.commands.clear();
    r.used = 0;
    r.stuck = false;
    r.busy_until = now_;
    if (fair()) charge(guilty, ring);

    decide(guilty, "timed_out", std::nullopt);
    mark_dead(banned, "cancelled", guilty);
    // Every other undecided job of the entity fails `cancelled`, on the ring or not.
    for (const std::size_t job : entities_[banned].pushed) {
      if (!jobs_[job].decided) decide(job, "cancelled", guilty);
    }
    if (shared_) {
      // The innocent commands run again, in their order, from now, in full.
      for (const auto& c : on_ring) {
        if (c.job == guilty || g_.jobs[c.job].entity == banned) continue;
        take_off_ring(c.job);
        place_on_ring(c.job, ring);
      }
    } else {
      r.closed = true;
    }
    return banned;
  }

  // ------------------------------------------------------------ entities and jobs

  void mark_dead(std::size_t entity, const std::string& error, std::optional<std::size_t> cause) {
    auto& e = entities_[entity];
    if (e.dead && readings_.first_death_decides_pushes) return;
    e.dead = true;
    e.dead_error = error;
    e.dead_cause = cause;
  }

  void kill(std::size_t entity) {
    mark_dead(entity, "killed", std::nullopt);
    // Jobs that have not been run fail; commands on the ring finish normally.
    for (const std::size_t job : entities_[entity].pushed) {
      if (!jobs_[job].decided && !jobs_[job].on_ring) decide(job, "killed", std::nullopt);
    }
  }

  void push(std::size_t job) {
    auto& j = jobs_[job];
    const std::size_t entity = g_.jobs[job].entity;
    auto& e = entities_[entity];
    j.pushed = true;
    j.out.queued_us = now_;
    e.pushed.push_back(job);
    if (e.dead) {
      decide(job, e.dead_error, e.dead_cause);
      signal_ready(entity);
      return;
    }
    j.in_queue = true;
    await_next(job);
  }

  std::size_t root_of(std::size_t job) const { return jobs_[job].out.cause.value_or(job); }

  // Waits for the dependencies one after another, from the one awaited now.
  void await_next(std::size_t job) {
    auto& j = jobs_[job];
    const auto& deps = g_.jobs[job].deps;
    while (j.awaiting < deps.size()) {
      const std::size_t dep = deps[j.awaiting];
      if (!jobs_[dep].signalled) {
        if (pipelines(job, dep)) {
          j.pipelined.push_back(dep);
          pipelined_dependents_[dep].push_back(job);
          ++j.awaiting;
          continue;
        }
        waiters_[dep].push_back(job);
        return;
      }
      if (!jobs_[dep].out.error.empty()) {
        decide(job, jobs_[dep].out.error, root_of(dep));
        signal_ready(g_.jobs[job].entity);
        return;
      }
      ++j.awaiting;
    }
    j.prepared = true;
  }

  // Pipelining: whether `job` may pass its dependency `dep`, not signalled yet.
  bool pipelines(std::size_t job, std::size_t dep) const {
    if (!g_.scheduler.pipeline || jobs_[dep].out.attempts == 0) return false;
    if (jobs_[dep].decided && !jobs_[dep].out.error.empty()) return false;
    // The dependent's ring is known before it runs: the one shared ring, or its entity's.
    if (shared_) return rings_.size() == 1;
    return g_.jobs[dep].entity == g_.jobs[job].entity;
  }

  // Pipelining: `job` was run for the first time; the jobs waiting for it that
  // may pass it now go on, in the order they started waiting.
  void pass_pipelined_dependents(std::size_t job) {
    auto& waiting = waiters_[job];
    for (std::size_t k = 0; k < waiting.size();) {
      const std::size_t w = waiting[k];
      if (jobs_[w].decided || !pipelines(w, job)) {
        ++k;
        continue;
      }
      waiting.erase(waiting.begin() + static_cast<std::ptrdiff_t>(k));
      jobs_[w].pipelined.push_back(job);
      pipelined_dependents_[job].push_back(w);
      ++jobs_[w].awaiting;
      await_next(w);
    }
  }

  void decide(std::size_t job, const std::string& error, std::optional<std::size_t> cause) {
    auto& j = jobs_[job];
    j.decided = true;
    j.in_queue = false;  // reading 5
    take_off_ring(job);
    j.out.error = error;
    j.out.cause = cause;
  }

  // Fence causality: a job signals no earlier than every one of its `deps`.
  bool deps_signalled(std::size_t job) const {
    return std::all_of(g_.jobs[job].deps.begin(), g_.jobs[job].deps.end(),
                       [this](std::size_t dep) { return jobs_[dep].signalled; });
  }

  // Signals, in push order, the entity's jobs whose outcome is decided and whose
  // predecessors and dependencies have all signalled.
  void signal_ready(std::size_t entity) {
    if (deferring_) return;  // model_readings::cascade_after_bans_and_kills: done after the kills
    auto& e = entities_[entity];
    while (e.next_signal < e.pushed.size() && jobs_[e.pushed[e.next_signal]].decided &&
           deps_signalled(e.pushed[e.next_signal])) {
      const std::size_t job = e.pushed[e.next_signal++];
      signal(job);
    }
  }

  void signal(std::size_t job) {
    auto& j = jobs_[job];
    // Pipelining: a job whose command completed takes the first failed pipelined
    // dependency's outcome (one that timed out is the root of its entity's ban).
    if (j.completed) {
      for (const std::size_t dep : j.pipelined) {
        if (!jobs_[dep].out.error.empty()) {
          j.out.error = jobs_[dep].out.error;
          j.out.cause = root_of(dep);
          break;
        }
      }
    }
    j.signalled = true;
    j.out.finished_us = now_;
    // What the signal sets off happens in turn, after the signals of this
    // step (drain): a job can be reached by two failures at one instant (one it
    // waits for, one it passed by pipelining), and the first in that order decides it.
    for (const std::size_t w : waiters_[job]) reactions_.push_back({reaction::wake, w, job});
    waiters_[job].clear();
    for (const std::size_t d : pipelined_dependents_[job])
      reactions_.push_back({reaction::pipelined, d, job});
    for (const std::size_t d : dependents_[job]) reactions_.push_back({reaction::gate, d, job});
  }

  // Carries out the reactions to the signals so far, and to the signals they
  // cause, in order. Returns whether there was any.
  bool drain() {
    if (reactions_.empty()) return false;
    while (!reactions_.empty()) {
      const reaction r = reactions_.front();
      reactions_.pop_front();
      auto& j = jobs_[r.job];
      const auto& dep = jobs_[r.dep];
      switch (r.what) {
        case reaction::wake:     // it waited for dep
          if (j.decided) break;  // killed or banned while it waited
          if (!dep.out.error.empty()) {
            decide(r.job, dep.out.error, root_of(r.dep));
            signal_ready(g_.jobs[r.job].entity);
          } else {
            ++j.awaiting;
            await_next(r.job);
          }
          break;
        case reaction::pipelined:  // it passed dep by pipelining: fails with it if not run yet
          if (j.decided || j.out.attempts > 0 || dep.out.error.empty()) break;
          decide(r.job, dep.out.error, root_of(r.dep));
          signal_ready(g_.jobs[r.job].entity);
          break;
        case reaction::gate:  // a decided dependent whose signal waited for dep
          if (j.decided && !j.signalled) signal_ready(g_.jobs[r.job].entity);
          break;
      }
    }
    return true;
  }

  // ------------------------------------------------------------ selection

  // The head of an entity: its oldest job that is neither run nor decided.
  std::optional<std::size_t> head_of(std::size_t entity) const {
    for (const std::size_t job : entities_[entity].pushed) {
      if (jobs_[job].in_queue) return job;
    }
    return std::nullopt;
  }

  void select() {
    const std::uint32_t limit = g_.scheduler.credit_limit;
    if (!shared_) {
      // Each entity has its own ring and credits: the entities do not compete.
      for (std::size_t e = 0; e < entities_.size(); ++e) {
        auto& r = rings_[e];
        for (;;) {
          const auto head = head_of(e);
          if (r.closed || !head || !jobs_[*head].prepared || g_.jobs[*head].credits > limit - r.used) break;
          run(*head, e);
        }
      }
      return;
    }
    for (;;) {
      if (fair()) refresh_fair();
      // Rings whose best head waits for credits: nothing else runs on them.
      std::vector<bool> blocked(rings_.size(), false);
      bool ran = false;
      while (!ran) {
        // The first ready head in the policy's order, among those that have a
        // ring that is not blocked.
        std::optional<std::size_t> best, best_ring;
        for (std::size_t e = 0; e < entities_.size(); ++e) {
          const auto head = head_of(e);
          if (!head || !jobs_[*head].prepared) continue;
          const auto target =
              entities_[e].in_flight > 0 ? std::optional(entities_[e].ring) : placement(e, blocked);
          if (!target || blocked[*target]) continue;
          if (!best || better(*head, *best)) {
            best = head;
            best_ring = target;
          }
        }
        if (!best) return;
        if (g_.jobs[*best].credits > limit - rings_[*best_ring].used) {
          blocked[*best_ring] = true;
          continue;
        }
        run(*best, *best_ring);
        ran = true;
      }
    }
  }

  // Where the head of entity `e`, with nothing in flight, goes: the least loaded
  // of its allowed rings that is not blocked (ties: the lowest index); none when
  // every one of them is blocked.
  std::optional<std::size_t> placement(std::size_t e, const std::vector<bool>& blocked) const {
    std::optional<std::size_t> least;
    for (std::size_t r = 0; r < rings_.size(); ++r) {
      const auto& allowed = entities_[e].allowed;
      if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), r) == allowed.end()) continue;
      if (!blocked[r] && (!least || rings_[r].used < rings_[*least].used)) least = r;
    }
    return least;
  }

  void run(std::size_t job, std::size_t ring) {
    jobs_[job].in_queue = false;
    entities_[g_.jobs[job].entity].last_served = ++serve_counter_;
    place_on_ring(job, ring);
    if (g_.scheduler.pipeline) pass_pipelined_dependents(job);
  }

  // Policy fair, at the start of each selection step: entities that became
  // active rejoin at no less than 1 ns below the floor (ahead of the entities
  // active at it); the floor rises to the least virtual time of the active
  // entities.
  void refresh_fair() {
    std::optional<std::uint64_t> least;
    for (std::size_t e = 0; e < entities_.size(); ++e) {
      auto& state = entities_[e];
      const auto head = head_of(e);
      const bool active = (head && jobs_[*head].prepared) || state.in_flight > 0;
      if (active && !state.fair_active && fair_floor_ > 0)
        state.virtual_ns = std::max(state.virtual_ns, fair_floor_ - 1);
      state.fair_active = active;
      if (active) least = std::min(least.value_or(fair_time(e)), fair_time(e));
    }
    if (least) fair_floor_ = std::max(fair_floor_, *least);
  }

  // Whether head `a` goes before head `b`: the policy's rule, then strict
  // priority (not for fair), then push order.
  bool better(std::size_t a, std::size_t b) const {
    const std::size_t ea = g_.jobs[a].entity, eb = g_.jobs[b].entity;
    const auto pa = g_.entities[ea].prio, pb = g_.entities[eb].prio;
    switch (g_.scheduler.policy) {
      case submit::policy_kind::fifo:
        break;
      case submit::policy_kind::rr:
        if (pa == pb && entities_[ea].last_served != entities_[eb].last_served)
          return entities_[ea].last_served < entities_[eb].last_served;
        break;
      case submit::policy_kind::deadline: {
        const auto& da = g_.jobs[a].deadline_us;
        const auto& db = g_.jobs[b].deadline_us;
        if (pa == pb && da.has_value() != db.has_value()) return da.has_value();
        if (pa == pb && da && *da != *db) return *da < *db;
        break;
      }
      case submit::policy_kind::fair:
        // Ties in virtual time go to the higher priority, then push order (below).
        if (fair_time(ea) != fair_time(eb)) return fair_time(ea) < fair_time(eb);
        break;
    }
    if (pa != pb) return static_cast<int>(pa) < static_cast<int>(pb);  // kernel is 0
    return rank_[a] < rank_[b];
  }

  // ------------------------------------------------------------ nothing left to do

  void shutdown() {
    for (std::size_t job = 0; job < jobs_.size(); ++job) {
      if (jobs_[job].pushed && !jobs_[job].decided) decide(job, "shutdown", std::nullopt);
    }
    for (auto& r : rings_) r.commands.clear();
    for (std::size_t e = 0; e < entities_.size(); ++e) signal_ready(e);
    drain();
  }

  const submit::graph& g_;
  const model_readings readings_;
  bool shared_ = true;
  std::vector<job_state> jobs_;
  std::vector<std::vector<std::size_t>> waiters_;     // per job: jobs awaiting it now
  std::vector<std::vector<std::size_t>> dependents_;  // per job: the jobs that list it in `deps`
  std::vector<std::vector<std::size_t>>
      pipelined_dependents_;  // per job: the jobs that passed it by pipelining
  struct reaction {
    enum kind : std::uint8_t { wake, pipelined, gate } what;
    std::size_t job;  // the job it concerns
    std::size_t dep;  // the job whose signal set it off
  };
  std::deque<reaction> reactions_;  // in the order the signals set them off
  std::vector<entity_state> entities_;
  std::vector<ring_state> rings_;
  std::vector<std::size_t> push_order_, rank_, action_order_;
  std::size_t next_push_ = 0, next_action_ = 0;
  time_us now_ = 0;
  bool deferring_ = false;
  std::uint64_t serve_counter_ = 0;                           // policy rr
  std::uint64_t fair_floor_ = 0;                              // policy fair
  std::uint64_t measured_total_ns_ = 0, measured_count_ = 0;  // policy fair: ring times measured
};

}  // namespace

std::vector<submit::job_outcome> reference_outcomes(const submit::graph& g, const model_readings& readings) {
  return model(g, readings).run();
}

}  // namespace cosched::seeded
