// Recycling of job frames and job blocks: thread-local free lists by size class.
// A job is usually allocated and freed at the rate of thousands per
// millisecond; malloc and fresh pages were the largest cost of a job.
#pragma once

#include <cstddef>

namespace cosched::detail {

/// Allocates `size` bytes (aligned for any standard type) from the calling
/// thread's free list for the size class, or from operator new. Thread-safe.
void* pool_allocate(std::size_t size);

/// Returns memory from pool_allocate(size) to the calling thread's free list
/// (any thread may free what another allocated); beyond a bound per class it
/// goes back to operator delete. Thread-safe.
void pool_deallocate(void* p, std::size_t size) noexcept;

/// The bytes pool_allocate(size) takes from operator new for a block: `size`
/// rounded up to its size class (16n + 24 bytes: 24, 40, ..., 1032), or `size`
/// itself beyond the classes or when the pools are off. Thread-safe.
std::size_t pool_block_size(std::size_t size) noexcept;

/// Gives the calling thread's cached free blocks back to operator delete now,
/// as its exit would (a thread that has retired a burst of jobs keeps up to 64
/// MiB per size class). Blocks in use are not touched. Thread-safe.
void pool_release_cache() noexcept;

/// Blocks the pools took from operator new and have not given back: in use,
/// or cached in a thread's free lists (0 when the pools are off). A thread's
/// cache goes back when the thread exits. Thread-safe; for tests.
std::size_t pool_blocks_outstanding() noexcept;

}  // namespace cosched::detail
