// The frame and block pools: a thread's free lists go back to the heap when the
// thread exits, also for a thread that only frees what others allocated.
#include "cosched/detail/pool.hpp"

#include <cstddef>
#include <thread>
#include <vector>

#include "catch.hpp"

using cosched::detail::pool_allocate;
using cosched::detail::pool_blocks_outstanding;
using cosched::detail::pool_deallocate;

TEST_CASE("pool: a thread that only frees blocks others allocated gives them back when it exits",
          "[pool][threads]") {
  constexpr std::size_t blocks = 2000, size = 320;  // a job block's size class
  const std::size_t before = pool_blocks_outstanding();
  std::vector<void*> made(blocks);
  std::thread producer([&] {
    for (auto& p : made) p = pool_allocate(size);
  });
  producer.join();
  // Without pools (sanitizer and memcheck builds) nothing is counted.
  const std::size_t taken = pool_blocks_outstanding() - before;
  CHECK((taken == blocks || taken == 0));
  std::thread retirer([&] {
    for (void* p : made) pool_deallocate(p, size);
  });
  retirer.join();
  CHECK(pool_blocks_outstanding() == before);
}

TEST_CASE("pool: threads that come and go leave nothing cached behind", "[pool][threads]") {
  constexpr std::size_t size = 512;
  const std::size_t before = pool_blocks_outstanding();
  for (int round = 0; round < 50; ++round) {
    std::vector<void*> made(200);
    std::thread producer([&] {
      for (auto& p : made) p = pool_allocate(size);
      // Some freed by their own thread, the rest by another.
      for (std::size_t i = 0; i < made.size() / 2; ++i) pool_deallocate(made[i], size);
    });
    producer.join();
    std::thread retirer([&] {
      for (std::size_t i = made.size() / 2; i < made.size(); ++i) pool_deallocate(made[i], size);
    });
    retirer.join();
  }
  CHECK(pool_blocks_outstanding() == before);
}
