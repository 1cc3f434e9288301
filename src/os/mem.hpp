// Address space and memory from the operating system (Linux).
//
// Go's mem.go describes memory as a state machine; ours has three states:
//   Reserved  - address space taken, PROT_NONE, costs no memory;
//   Committed - readable and writable; pages cost memory once touched;
//   Released  - committed but handed back (MADV_DONTNEED): reads as zero
//               and costs nothing until touched again.
// Owns: the mmap/mprotect/madvise calls. Never touches heap metadata.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mgc::internal::os {

// Reserve size bytes of address space aligned to align (a power of two),
// PROT_NONE. nullptr when the OS refuses.
void* reserve(std::size_t size, std::size_t align);

// Make [p, p+size) readable and writable. false when the OS refuses
// (commit charge exhausted); the range is then left reserved.
bool commit(void* p, std::size_t size);

// Hand the pages of [p, p+size) back; they stay committed and read as zero.
void release(void* p, std::size_t size);

// Ask for transparent huge pages on [p, p+size) (MADV_HUGEPAGE).
void advise_huge_pages(void* p, std::size_t size);

// Readable, writable, zeroed memory for metadata, page-aligned. nullptr
// when the OS refuses.
void* map_metadata(std::size_t size);
void unmap(void* p, std::size_t size);

// Test hook (failure injection): every call above that asks the OS for
// memory (reserve, commit, map_metadata) is numbered from 1 in the order
// made; calls first .. first+count-1 fail as if the OS had refused.
// inject_failures(0, 0) turns it off. memory_requests() is how many such
// calls were made so far.
void inject_failures(std::uint64_t first, std::uint64_t count);
std::uint64_t memory_requests();

}  // namespace mgc::internal::os
