// Thread-local size-class free lists for frames and job blocks. Sanitizer
// builds and COSCHED_NO_POOL builds (for memory checkers such as Valgrind)
// bypass them, so that every use after free and every read of memory never
// written is still seen.
#include "cosched/detail/pool.hpp"

#include <atomic>
#include <new>

namespace cosched::detail {
namespace {

#if defined(COSCHED_NO_POOL) || defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool pooling = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
constexpr bool pooling = false;
#else
constexpr bool pooling = true;
#endif
#else
constexpr bool pooling = true;
#endif

// Size classes of 16n + 24 bytes (24, 40, 56, ..., 1032). glibc's malloc
// gives a request the smallest chunk of a multiple of 16 bytes that holds it
// and an 8-byte header, so a request of 16n + 8 bytes fills its chunk: a block
// takes at most 23 bytes more than its size, header included. Every live job
// is a job block and a frame, and a run may hold a million of them.
constexpr std::size_t class_step = 16;
constexpr std::size_t smallest_class = 24;
constexpr std::size_t class_count = 64;
// Up to 64 MiB per class and thread stays cached (100k jobs in flight fit).
constexpr std::size_t max_cached_bytes_per_class = std::size_t{64} << 20;

struct free_block {
  free_block* next;
};

// Blocks taken from operator new and not given back yet (in use, or cached in
// some thread's free lists). relaxed: a statistic, changed only on slow paths.
std::atomic<std::size_t> outstanding{0};

void release_to_heap(void* p) noexcept {
  outstanding.fetch_sub(1, std::memory_order_relaxed);
  ::operator delete(p);
}

// Trivially constructible and destructible, so that its thread-local access
// needs no initialisation guard on the hot path; the cleanup object below is
// registered on a thread's first slow-path allocation.
struct thread_cache {
  free_block* heads[class_count];
  std::size_t counts[class_count];
};

thread_local thread_cache cache{};

void release_cache() noexcept {
  for (std::size_t c = 0; c < class_count; ++c) {
    while (free_block* b = cache.heads[c]) {
      cache.heads[c] = b->next;
      release_to_heap(b);
    }
    cache.counts[c] = 0;
  }
}

struct thread_cache_cleanup {
  ~thread_cache_cleanup() { release_cache(); }
  void arm() noexcept {}
};

thread_local thread_cache_cleanup cleanup;

std::size_t class_of(std::size_t size) noexcept {
  return size <= smallest_class ? 0 : (size - smallest_class + class_step - 1) / class_step;
}
constexpr std::size_t class_size(std::size_t c) noexcept { return smallest_class + c * class_step; }

}  // namespace

std::size_t pool_block_size(std::size_t size) noexcept {
  const std::size_t c = class_of(size);
  return pooling && c < class_count ? class_size(c) : size;
}

void pool_release_cache() noexcept { release_cache(); }

std::size_t pool_blocks_outstanding() noexcept {
  // relaxed: a snapshot.
  return outstanding.load(std::memory_order_relaxed);
}

void* pool_allocate(std::size_t size) {
  const std::size_t c = class_of(size);
  if (!pooling || c >= class_count) return ::operator new(size);
  if (free_block* b = cache.heads[c]) {
    cache.heads[c] = b->next;
    --cache.counts[c];
    return b;
  }
  void* fresh = ::operator new(class_size(c));
  outstanding.fetch_add(1, std::memory_order_relaxed);
  return fresh;
}

void pool_deallocate(void* p, std::size_t size) noexcept {
  const std::size_t c = class_of(size);
  if (!pooling || c >= class_count) {
    ::operator delete(p);
    return;
  }
  if (cache.counts[c] * class_size(c) >= max_cached_bytes_per_class) {
    release_to_heap(p);
    return;
  }
  // The first block this thread keeps in a class registers the thread's
  // cleanup: a thread that only frees (a scheduler retiring what producers
  // allocated) must give its cache back when it exits, too.
  if (cache.counts[c] == 0) cleanup.arm();
  auto* b = static_cast<free_block*>(p);
  b->next = cache.heads[c];
  cache.heads[c] = b;
  ++cache.counts[c];
}

}  // namespace cosched::detail
