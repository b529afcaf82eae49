// The ring and command of cosched-bench's dag and wake groups: hardware whose
// work has always finished, so that what they measure is cosched's own cost.
#pragma once

#include <cstdint>

#include "cosched/fence.hpp"
#include "cosched/ring.hpp"

namespace cosched_bench {

struct command {
  std::uint32_t index;
};

// Hardware that has always finished already: it returns the stub fence (as a
// driver does for work that completed at once), so the figure is the
// scheduler's own cost per job.
class finished_ring final : public cosched::ring<command> {
 public:
  cosched::fence run(command&) override { return cosched::fence::stub(); }
  void cancel_all() noexcept override {}
};

}  // namespace cosched_bench
