// An independent reference for "Semantics, exactly" of DESIGN.md: a small discrete-
// event simulation of a graph that shares no code with the scheduler or the runner.
#pragma once

#include <vector>

#include "submit/graph.hpp"
#include "submit/runner.hpp"

namespace cosched::seeded {

/// Where DESIGN.md leaves a choice open, the reading the model takes (see the
/// comments in reference_model.cpp); the defaults are the readings the test uses.
struct model_readings {
  /// A push to an entity that died twice (killed, then banned or its ring closed,
  /// or the other way round) fails with the reason of the first death when true,
  /// of the latest death when false.
  bool first_death_decides_pushes = true;
  /// The failures that an instant's completions and timeouts carry to dependents
  /// reach them only after that instant's bans and kills took their victims (so a
  /// dependent of a failed job whose entity is killed at that instant fails
  /// `killed`). False, the reading of DESIGN.md's phase order: they reach them at
  /// once, before the timeouts and kills of the instant.
  bool cascade_after_bans_and_kills = false;
};

/// The outcome of every job of `g` (in job order) as `cosched-submit --clock
/// virtual` must report it, in the runner's result type so the two compare field
/// by field. Only the `jobs` member of run_outcome is filled in.
std::vector<submit::job_outcome> reference_outcomes(const submit::graph& g,
                                                    const model_readings& readings = {});

}  // namespace cosched::seeded
