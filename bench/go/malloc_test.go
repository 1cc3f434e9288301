// The seed's four on Go's own allocator: the peer that mallocgc is modelled
// on. Run from this directory (tools/bench_table.py does, offline):
//
//	GOPROXY=off GOFLAGS=-mod=mod go test -run '^$' -bench . -benchmem -count 5
//
// (tools/bench_table.py runs the seed's four, then Malloc8Parallel alone
// with -cpu 1,2.)
//
// The bodies are those of Go 1.19's runtime/malloc_test.go, except that
// each result escapes to the heap: there, escape analysis keeps the object
// on the stack and the benchmarks report 0 allocs/op. Here a store that is
// never taken makes p escape, so -benchmem must show 1 allocs/op. The
// collector runs as in any program (default GOGC).
package mallocbench

import (
	"sync/atomic"
	"testing"
	"unsafe"
)

var mallocSink uintptr

// escapeSink.b is never true; storing p into escapeSink.x in a branch the
// compiler cannot rule out makes p escape.
var escapeSink struct {
	b bool
	x any
}

func BenchmarkMalloc8(b *testing.B) {
	var x uintptr
	for i := 0; i < b.N; i++ {
		p := new(int64)
		if escapeSink.b {
			escapeSink.x = p
		}
		x ^= uintptr(unsafe.Pointer(p))
	}
	mallocSink = x
}

func BenchmarkMalloc16(b *testing.B) {
	var x uintptr
	for i := 0; i < b.N; i++ {
		p := new([2]int64)
		if escapeSink.b {
			escapeSink.x = p
		}
		x ^= uintptr(unsafe.Pointer(p))
	}
	mallocSink = x
}

func BenchmarkMallocTypeInfo8(b *testing.B) {
	var x uintptr
	for i := 0; i < b.N; i++ {
		p := new(struct{ p [1]*int })
		if escapeSink.b {
			escapeSink.x = p
		}
		x ^= uintptr(unsafe.Pointer(p))
	}
	mallocSink = x
}

func BenchmarkMallocTypeInfo16(b *testing.B) {
	var x uintptr
	for i := 0; i < b.N; i++ {
		p := new(struct{ p [2]*int })
		if escapeSink.b {
			escapeSink.x = p
		}
		x ^= uintptr(unsafe.Pointer(p))
	}
	mallocSink = x
}

// BenchmarkMalloc8Parallel is Malloc8 from GOMAXPROCS goroutines at once
// (b.RunParallel); ns/op is per allocation of all goroutines together, so
// -cpu 1,2 gives the two-thread scaling that bench_malloc_threads measures
// for mallocgc.
func BenchmarkMalloc8Parallel(b *testing.B) {
	b.RunParallel(func(pb *testing.PB) {
		var x uintptr
		for pb.Next() {
			p := new(int64)
			if escapeSink.b {
				escapeSink.x = p
			}
			x ^= uintptr(unsafe.Pointer(p))
		}
		atomic.AddUintptr(&mallocSink, x)
	})
}
