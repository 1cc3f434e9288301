// The heap profile in pprof's format (Go: runtime/pprof's writeHeapProto
// and its protobuf builder): a gzipped profile.proto message.
//
// Sample types, as Go writes them: alloc_objects/count, alloc_space/bytes,
// inuse_objects/count, inuse_space/bytes (pprof's default view is the last).
// Each bucket's raw counts are scaled by 1 / (1 - exp(-size / rate)) (Go:
// scaleHeapSample), rate being the sampling rate in force when the profile
// is written. In-use figures are those of the last mark (objects found dead
// then, or freed since, are gone), allocation figures are up to the moment.
//
// So that pprof can symbolize: one mapping per executable segment of every
// loaded object (dl_iterate_phdr) with its file and its GNU build ID, and
// function names from each file's full symbol table (.symtab) where it has
// one (local functions and GCC's ".cold" parts included, named after their
// function), else from dladdr (the dynamic symbol table; a program's own
// functions are there when it is linked with -rdynamic). `go tool pprof`
// symbolizes only Go binaries by itself, so the names must be here.
// Locations are return addresses minus one, inside the call instruction.
//
// The encoding is written by hand (varints and length-delimited fields);
// the gzip member holds stored (uncompressed) deflate blocks and the CRC32
// computed here, so no compression library is needed.
//
// Owns: nothing. World running; allocates from the system malloc.
#pragma once

namespace mgc::internal {

// Write the profile to path. false (errno set) when the file cannot be
// written.
bool write_pprof_heap_profile(const char* path);

}  // namespace mgc::internal
