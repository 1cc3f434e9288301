// The public heap profile calls (mgc::write_heap_profile,
// mgc::set_memprofile_rate) and MALLOCGC_HEAPPROFILE's profile at exit.
//
// Owns: the file name of the profile written at exit.
#pragma once

namespace mgc::internal {

// Write the heap profile to path when the program exits (atexit). Once.
void write_heap_profile_at_exit(const char* path);

}  // namespace mgc::internal
