// The resets and timeouts of a run (marks.hpp), shared by the SVG timeline and the
// trace so that both show the same moments.
#include "submit/marks.hpp"

#include <algorithm>
#include <tuple>

#include "submit/svg.hpp"

namespace cosched::submit {

run_marks marks_of(const graph& g, const run_outcome& outcome, std::span<const run_span> spans) {
  run_marks marks;
  // A replay's run_at is when the reset on its ring put it back on the ring.
  for (std::size_t i = 0; i < spans.size() && i < outcome.runs.size(); ++i)
    if (spans[i].attempt > 1) marks.resets.push_back({outcome.runs[i].ring, outcome.runs[i].record.run_at});
  std::sort(marks.resets.begin(), marks.resets.end(), [](const reset_mark& a, const reset_mark& b) {
    return std::tie(a.ring, a.at_us) < std::tie(b.ring, b.at_us);
  });
  marks.resets.erase(std::unique(marks.resets.begin(), marks.resets.end()), marks.resets.end());

  std::vector<std::optional<std::size_t>> last_run(g.jobs.size());
  for (std::size_t i = 0; i < outcome.runs.size(); ++i)
    if (outcome.runs[i].record.tag < g.jobs.size()) last_run[outcome.runs[i].record.tag] = i;
  for (std::size_t i = 0; i < g.jobs.size() && i < outcome.jobs.size(); ++i) {
    if (classify(outcome.jobs[i]) != outcome_class::timed_out) continue;
    timeout_mark mark{i, outcome.jobs[i].finished_us.value_or(outcome.end_us), std::nullopt};
    if (last_run[i]) mark.ring = outcome.runs[*last_run[i]].ring;
    marks.timeouts.push_back(mark);
  }
  return marks;
}

}  // namespace cosched::submit
