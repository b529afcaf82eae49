// The non-template part of the device thread (kept out of the header, with its
// system include).
#include "cosched/sim/device_thread.hpp"

#include <sys/prctl.h>

namespace cosched::sim::detail {

void use_fine_timer_slack() noexcept {
  // 1 ns: the smallest slack there is (0 would mean the process default).
  ::prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
}

}  // namespace cosched::sim::detail
