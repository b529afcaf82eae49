// Compile-time rule: a job body may only co_await cosched fences. Built by ctest
// with -fsyntax-only: as is it must be rejected with cosched's message; with
// COSCHED_POSITIVE_CONTROL (the same body awaiting a fence) it must compile, so
// the rejection cannot come from a broken file.
#include "cosched/job.hpp"

#include <coroutine>

namespace {

struct plain_command {
  int value = 0;
};

cosched::job<plain_command> body(cosched::fence dependency) {
#ifdef COSCHED_POSITIVE_CONTROL
  co_await dependency;
#else
  (void)dependency;
  co_await std::suspend_always{};
#endif
  co_return plain_command{1};
}

}  // namespace

int main() { return body(cosched::fence::make_signalled()).valid() ? 0 : 1; }
