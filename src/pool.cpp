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

constexpr std::size_t granule = 64;
constexpr std::size_t class_count = 16;            // up to 1 KiB
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

struct thread_cache_cleanup {
  ~thread_cache_cleanup() {
    for (std::size_t c = 0; c < class_count; ++c) {
      while (free_block* b = cache.heads[c]) {
        cache.heads[c] = b->next;
        release_to_heap(b);
      }
      cache.counts[c] = 0;
    }
  }
  void arm() noexcept {}
};

thread_local thread_cache_cleanup cleanup;

std::size_t class_of(std::size_t size) noexcept { return (size + granule - 1) / granule - 1; }

}  // namespace

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
  void* fresh = ::operator new((c + 1) * granule);
  outstanding.fetch_add(1, std::memory_order_relaxed);
  return fresh;
}

void pool_deallocate(void* p, std::size_t size) noexcept {
  const std::size_t c = class_of(size);
  if (!pooling || c >= class_count) {
    ::operator delete(p);
    return;
  }
  if (cache.counts[c] * (c + 1) * granule >= max_cached_bytes_per_class) {
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
