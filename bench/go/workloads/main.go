// Command workloads runs binary-trees or GCBench on Go's collector, at the
// default settings (GOGC=100, GOMAXPROCS = the CPUs), and prints the
// workload's usual lines and then one line of JSON with the fields of
// bench/gc_workload.h. The same algorithms as bench/gc_workloads.hpp and
// bench/workloads_boehm.c; keep them in step.
//
//	workloads binary-trees [depth (21)]
//	workloads gcbench
//
// tools/bench_table.py builds it offline:
//
//	GOPROXY=off GOFLAGS=-mod=mod go build -o <build>/bench-go/workloads ./workloads
//
// Pauses come from runtime.MemStats: PauseNs keeps the last 256 cycles'
// stop-the-world pauses (both of a cycle's pauses summed), PauseTotalNs
// every one.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"syscall"
	"time"
)

// rssGuard aborts the run when the peak RSS passes BENCH_RSS_LIMIT_MIB
// (4096), as gcw_guard_rss does in C.
func rssGuard() {
	limit := int64(4096)
	if v, err := strconv.ParseInt(os.Getenv("BENCH_RSS_LIMIT_MIB"), 10, 64); err == nil && v > 0 {
		limit = v
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil && ru.Maxrss > limit*1024 {
		fmt.Fprintf(os.Stderr, "peak RSS %d MiB is over BENCH_RSS_LIMIT_MIB=%d\n", ru.Maxrss/1024, limit)
		os.Exit(3)
	}
}

// --- binary-trees ------------------------------------------------------------

type treeNode struct{ left, right *treeNode }

func bottomUpTree(depth int) *treeNode {
	if depth <= 0 {
		return &treeNode{}
	}
	left := bottomUpTree(depth - 1)
	right := bottomUpTree(depth - 1)
	return &treeNode{left, right}
}

func (n *treeNode) itemCheck() int64 {
	if n.left == nil {
		return 1
	}
	return 1 + n.left.itemCheck() + n.right.itemCheck()
}

func binaryTrees(n int) int64 {
	const minDepth = 4
	maxDepth := n
	if maxDepth < minDepth+2 {
		maxDepth = minDepth + 2
	}
	stretchDepth := maxDepth + 1
	var total int64

	check := bottomUpTree(stretchDepth).itemCheck()
	fmt.Printf("stretch tree of depth %d\t check: %d\n", stretchDepth, check)
	total += check
	rssGuard()

	longLived := bottomUpTree(maxDepth)

	for d := minDepth; d <= maxDepth; d += 2 {
		iterations := int64(1) << (maxDepth - d + minDepth)
		guardMask := int64(0)
		if d+1 < 20 {
			guardMask = int64(1)<<(20-(d+1)) - 1
		}
		check = 0
		for i := int64(1); i <= iterations; i++ {
			check += bottomUpTree(d).itemCheck()
			if i&guardMask == 0 {
				rssGuard()
			}
		}
		fmt.Printf("%d\t trees of depth %d\t check: %d\n", iterations, d, check)
		total += check
	}

	check = longLived.itemCheck()
	fmt.Printf("long lived tree of depth %d\t check: %d\n", maxDepth, check)
	return total + check
}

// --- GCBench -----------------------------------------------------------------

type gcbenchNode struct {
	left, right *gcbenchNode
	i, j        int32
}

const (
	kStretchTreeDepth   = 18     // about 16 MiB
	kLongLivedTreeDepth = 16     // about 4 MiB
	kArraySize          = 500000 // about 4 MiB
	kMinTreeDepth       = 4
	kMaxTreeDepth       = 16
)

func treeSize(i int) int { return (1 << (i + 1)) - 1 }
func numIters(i int) int { return 2 * treeSize(kStretchTreeDepth) / treeSize(i) }

// populate builds a tree top-down, assigning to older objects.
func populate(depth int, node *gcbenchNode) {
	if depth <= 0 {
		return
	}
	depth--
	node.left = &gcbenchNode{}
	node.right = &gcbenchNode{}
	populate(depth, node.left)
	populate(depth, node.right)
}

// makeTree builds a tree bottom-up.
func makeTree(depth int) *gcbenchNode {
	if depth <= 0 {
		return &gcbenchNode{}
	}
	left := makeTree(depth - 1)
	right := makeTree(depth - 1)
	return &gcbenchNode{left: left, right: right}
}

func countNodes(n *gcbenchNode) int64 {
	if n == nil {
		return 0
	}
	return 1 + countNodes(n.left) + countNodes(n.right)
}

// sink keeps the top-down trees' roots on the heap, as in C: without it
// escape analysis would put each root (not its children) on the stack.
var sink *gcbenchNode

func timeConstruction(depth int) {
	iters := numIters(depth)
	fmt.Printf("Creating %d trees of depth %d\n", iters, depth)
	t0 := time.Now()
	for i := 0; i < iters; i++ {
		temp := &gcbenchNode{}
		sink = temp
		populate(depth, temp)
	}
	sink = nil
	fmt.Printf("\tTop down construction took %d msec\n", time.Since(t0).Milliseconds())
	t0 = time.Now()
	for i := 0; i < iters; i++ {
		makeTree(depth)
	}
	fmt.Printf("\tBottom up construction took %d msec\n", time.Since(t0).Milliseconds())
	rssGuard()
}

func gcbench() int64 {
	fmt.Printf("Garbage Collector Test\n")
	fmt.Printf(" Live storage will peak at %d bytes.\n\n", 2*24*treeSize(kLongLivedTreeDepth)+8*kArraySize)
	fmt.Printf(" Stretching memory with a binary tree of depth %d\n", kStretchTreeDepth)
	makeTree(kStretchTreeDepth)

	fmt.Printf(" Creating a long-lived binary tree of depth %d\n", kLongLivedTreeDepth)
	longLived := &gcbenchNode{}
	populate(kLongLivedTreeDepth, longLived)

	fmt.Printf(" Creating a long-lived array of %d doubles\n", kArraySize)
	array := make([]float64, kArraySize)
	for i := 0; i < kArraySize/2; i++ {
		array[i] = 1.0 / float64(i)
	}

	for d := kMinTreeDepth; d <= kMaxTreeDepth; d += 2 {
		timeConstruction(d)
	}

	// The classic's "fake reference" that keeps both alive to the end.
	nodes := countNodes(longLived)
	if nodes != int64(treeSize(kLongLivedTreeDepth)) || array[1000] != 1.0/1000 {
		fmt.Fprintln(os.Stderr, "GCBench failed: the long-lived tree or array was damaged")
		os.Exit(1)
	}
	return nodes
}

// --- main --------------------------------------------------------------------

func usage() {
	fmt.Fprintf(os.Stderr, "usage: %s binary-trees [depth (21)] | gcbench\n", os.Args[0])
	os.Exit(2)
}

// num prints a float as JSON.
func num(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }

func main() {
	start := time.Now()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	if len(os.Args) < 2 {
		usage()
	}
	bench, param := os.Args[1], 0
	var check int64
	switch {
	case bench == "binary-trees" && len(os.Args) <= 3:
		param = 21
		if len(os.Args) == 3 {
			v, err := strconv.Atoi(os.Args[2])
			if err != nil || v < 1 || v > 30 {
				usage()
			}
			param = v
		}
		check = binaryTrees(param)
	case bench == "gcbench" && len(os.Args) == 2:
		param = kMaxTreeDepth
		check = gcbench()
	default:
		usage()
	}
	wall := time.Since(start).Seconds()

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	cycles := ms.NumGC - ms0.NumGC
	n := cycles
	if n > uint32(len(ms.PauseNs)) {
		n = uint32(len(ms.PauseNs))
	}
	pauses := make([]uint64, 0, n)
	for i := uint32(0); i < n; i++ {
		pauses = append(pauses, ms.PauseNs[(ms.NumGC-1-i)%uint32(len(ms.PauseNs))])
	}
	sort.Slice(pauses, func(a, b int) bool { return pauses[a] < pauses[b] })
	maxMs, p99Ms := 0.0, 0.0
	if n > 0 {
		rank := (int(n)*99 + 99) / 100 // nearest rank, as gcw_print
		maxMs = float64(pauses[n-1]) * 1e-6
		p99Ms = float64(pauses[rank-1]) * 1e-6
	}

	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	user := float64(ru.Utime.Sec) + float64(ru.Utime.Usec)*1e-6
	sys := float64(ru.Stime.Sec) + float64(ru.Stime.Usec)*1e-6
	fmt.Printf("{\"bench\": %q, \"param\": %d, \"system\": \"go\", \"version\": %q, \"wall_s\": %s, \"cpu_s\": %s, "+
		"\"user_s\": %s, \"sys_s\": %s, \"peak_rss_mib\": %s, \"gc_cycles\": %d, \"pauses\": %d, "+
		"\"pause_max_ms\": %s, \"pause_p99_ms\": %s, \"pause_total_ms\": %s, \"check\": %d}\n",
		bench, param, runtime.Version(), num(wall), num(user+sys), num(user), num(sys),
		strconv.FormatFloat(float64(ru.Maxrss)/1024, 'f', 1, 64), cycles, n, num(maxMs), num(p99Ms),
		num(float64(ms.PauseTotalNs-ms0.PauseTotalNs)*1e-6), check)
}
