// Memory for allocator metadata: spans, caches, side tables, type layouts.
//
// Metadata lives off the collected heap, in memory mapped for it alone, so
// the collector never mistakes it for objects or scans it as roots (Go:
// fixalloc and persistentalloc). Blocks are power-of-two sized from 16 B to
// 64 KiB, carved from 1 MiB mappings, recycled through per-size free lists
// and never returned to the OS.
//
// Owns: its free lists, behind its own lock. Takes no other lock, so it may
// be called with the heap lock or a central lock held.
#pragma once

#include <atomic>
#include <cstddef>

namespace mgc::internal {

inline constexpr std::size_t kMaxMetaBlock = 64 * 1024;

// A zeroed block of at least size bytes (size <= kMaxMetaBlock), 16-byte
// aligned; nullptr when the OS refuses memory.
void* meta_alloc(std::size_t size);

// Test hook: the next n calls of meta_alloc return nullptr, as when the OS
// refuses and no freed block of the size is left (what os::inject_failures
// cannot reach while freed blocks are recycled).
extern std::atomic<int> debug_refuse_meta_allocs;

// Give back a block from meta_alloc(size), with the same size.
void meta_free(void* p, std::size_t size);

// Bytes of metadata mapped from the OS so far. Takes no lock: usable with
// the world stopped (the pacer's memory-limit goal).
std::size_t meta_sys_bytes();

// Hold the metadata lock across fork() (see runtime/collect).
void meta_lock();
void meta_unlock();

}  // namespace mgc::internal
