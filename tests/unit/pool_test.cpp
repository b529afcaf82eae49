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

TEST_CASE("pool: a block takes its size rounded up to a class of 16n + 24 bytes", "[pool]") {
  using cosched::detail::pool_block_size;
  // Without pools (sanitizer and memcheck builds) a block takes its size.
  if (pool_block_size(1) == 1) {
    CHECK(pool_block_size(328) == 328);
    return;
  }
  CHECK(pool_block_size(0) == 24);
  CHECK(pool_block_size(1) == 24);
  CHECK(pool_block_size(24) == 24);
  CHECK(pool_block_size(25) == 40);
  CHECK(pool_block_size(40) == 40);
  CHECK(pool_block_size(120) == 120);
  CHECK(pool_block_size(121) == 136);
  CHECK(pool_block_size(328) == 328);
  CHECK(pool_block_size(329) == 344);
  CHECK(pool_block_size(1032) == 1032);  // the largest class
  CHECK(pool_block_size(1033) == 1033);  // beyond it: operator new, as asked
  for (std::size_t size = 1; size <= 1032; ++size) {
    const std::size_t block = pool_block_size(size);
    CHECK(block % 16 == 8);
    if (size <= 24)
      CHECK(block == 24);
    else
      CHECK(block - size < 16);
  }
}

TEST_CASE("pool: a freed block is handed out again for any size of its class", "[pool]") {
  void* first = pool_allocate(321);
  pool_deallocate(first, 321);
  void* second = pool_allocate(328);  // the same class (328 bytes)
  const bool pooled = cosched::detail::pool_block_size(1) != 1;
  if (pooled) CHECK(second == first);
  pool_deallocate(second, 328);
}

TEST_CASE("pool: a thread gives its cached blocks back on request, and keeps pooling afterwards", "[pool]") {
  constexpr std::size_t blocks = 1000, size = 328;
  // What earlier work on this thread left cached goes first: `before` counts
  // only blocks in use, which the releases below do not touch.
  cosched::detail::pool_release_cache();
  const std::size_t before = pool_blocks_outstanding();
  std::vector<void*> made(blocks);
  for (auto& p : made) p = pool_allocate(size);
  void* kept = pool_allocate(size);  // in use across the release
  for (void* p : made) pool_deallocate(p, size);
  const bool pooled = cosched::detail::pool_block_size(1) != 1;
  CHECK(pool_blocks_outstanding() - before == (pooled ? blocks + 1 : 0));  // cached, and the one in use
  cosched::detail::pool_release_cache();
  CHECK(pool_blocks_outstanding() - before == (pooled ? 1 : 0));
  void* again = pool_allocate(size);  // a fresh block: nothing is cached
  CHECK(pool_blocks_outstanding() - before == (pooled ? 2 : 0));
  pool_deallocate(again, size);
  pool_deallocate(kept, size);
  cosched::detail::pool_release_cache();
  CHECK(pool_blocks_outstanding() == before);
}
