#!/usr/bin/env python3
"""Run mallocgc's benchmarks and its peers; print one markdown report.

    python3 tools/bench_table.py <build dir>

Runs, from <build dir> (bench/CMakeLists.txt builds them):

  bench_malloc          mallocgc: the seed's four and PairMgc/<size>
  bench_malloc_threads  mallocgc: Malloc8 from one and from two threads
  bench_boehm           Boehm GC: the seed's four, Malloc8 from 1 and 2 threads
  bench/go              Go: the seed's four, Malloc8Parallel with -cpu 1,2
                        (`go test -bench`, offline)
  bench_workloads_*     binary-trees and GCBench on mallocgc, Boehm GC and
                        mimalloc (explicit frees); bench/go/workloads on Go
                        (built here with `go build`, offline)
  bench_pairs_<peer>    glibc, mimalloc, jemalloc, tcmalloc: Pair/<size>
  bench_heap_growth     mallocgc growing a fresh heap, MALLOCGC_HUGEPAGES=0 and 1
  bench_page_touch      the same touch pattern on plain mmap'd memory
  boehm/libgc.so.1      mallocgc's Boehm-compatible library: the Debian
                        programs of tests/compat/programs (run_workload.py
                        --bench) on it and on the system's Boehm GC

and prints the medians of several repetitions side by side, with ratios,
as markdown on stdout; the same text goes to <build dir>/bench_table.md.
Progress goes to stderr. A missing peer is reported with the Debian package
that installs it. Exit status: 0 unless mallocgc's own benchmarks are
missing or fail (peers missing or failing never fail the run).

Environment:
  BENCH_REPS            repetitions of every benchmark, medians taken (5)
  BENCH_MIN_TIME        Google Benchmark's --benchmark_min_time, seconds (0.5)
  BENCH_GO_BENCHTIME    go test -benchtime (1s)
  BENCH_HEAP_MIB        MiB grown by each heap-growth run (256)
  BENCH_GC_REPS         runs of binary-trees and of GCBench per system, medians
                        taken (3: binary-trees takes 10-40 s a run here)
  BENCH_PROF_ROUNDS     rounds of the seed's four at each heap-profiling rate
                        (3; see "Heap profiling's cost")
  BENCH_TREES_DEPTH     binary-trees depth (21)
  BENCH_GO              the go command (default /usr/lib/go-1.19/bin/go, then go on PATH)
  BENCH_PROGRAM_RUNS    runs of each Debian program workload per library (3)
  BENCH_PROGRAM_SCALE   their size, test or bench (bench)
  BENCH_PROGRAMS        a comma-separated subset of the workloads (all)

Standard library only.
"""

import datetime
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

SEED_FOUR = ["Malloc8", "Malloc16", "MallocTypeInfo8", "MallocTypeInfo16"]
PAIR_SIZES = [8, 16, 64, 256]
PAIR_PEERS = ["glibc", "mimalloc", "jemalloc", "tcmalloc"]

# Debian package that installs each peer, and a piece of the file name of
# the shared object that must own the allocation function in its executable.
PACKAGES = {
    "go": "golang-1.19-go",
    "boehm": "libgc-dev",
    "glibc": "libc6-dev",
    "mimalloc": "libmimalloc-dev",
    "jemalloc": "libjemalloc-dev",
    "tcmalloc": "libgoogle-perftools-dev",
}
# The collector workloads: system -> executable under the build dir (Go's
# is built by build_go_workloads). mimalloc frees every node by hand.
# mallocgc-concurrent: the same executable with mostly-concurrent marking
# (WORKLOAD_ENV), beside the default stop-the-world one.
WORKLOAD_SYSTEMS = ["mallocgc", "mallocgc-concurrent", "mallocgc-noprof", "go", "boehm", "mimalloc"]
WORKLOAD_EXES = {
    "mallocgc": "bench_workloads_mgc",
    "mallocgc-concurrent": "bench_workloads_mgc",
    "mallocgc-noprof": "bench_workloads_mgc",
    "boehm": "bench_workloads_boehm",
    "mimalloc": "bench_workloads_mimalloc",
}
WORKLOAD_FIELDS = [
    "wall_s", "cpu_s", "peak_rss_mib", "gc_cycles", "pauses", "pause_max_ms", "pause_p99_ms", "pause_total_ms",
    "stall_max_ms",
]
WORKLOAD_ENV = {
    "mallocgc-concurrent": {"MALLOCGC_DEBUG": "gcstoptheworld=0"},
    "mallocgc-noprof": {"MALLOCGC_MEMPROFILERATE": "0"},
}
# Heap profiling's cost on the seed's four: sampling off, at the default
# rate, and at a high rate where the samples' cost stands out of the noise.
PROFILE_RATES = ["0", "524288", "4096"]
PROFILE_SIZES = {"Malloc8": 8, "Malloc16": 16, "MallocTypeInfo8": 8, "MallocTypeInfo16": 16}
PAUSE_RING = 256  # pauses kept by mallocgc's stats() and Go's MemStats

MALLOC_FROM = {"glibc": "libc.so", "mimalloc": "mimalloc", "jemalloc": "jemalloc", "tcmalloc": "tcmalloc"}

TIME_UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def log(msg):
    print(f"bench_table: {msg}", file=sys.stderr, flush=True)


def env_int(name, default):
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        sys.exit(f"bench_table: {name}={value!r} is not an integer")


def env_float(name, default):
    value = os.environ.get(name, "")
    try:
        return float(value) if value else default
    except ValueError:
        sys.exit(f"bench_table: {name}={value!r} is not a number")


def fmt_ns(v):
    if v is None:
        return "—"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}"


def find_executable(build, name):
    """The built executable `name` under build/, or None."""
    for d in (build / "bench", build):
        p = d / name
        if p.is_file() and os.access(p, os.X_OK):
            return p
    for root, dirs, files in os.walk(build):
        dirs[:] = [d for d in dirs if d not in ("CMakeFiles", "bench-go", "_deps", "Testing")]
        if name in files:
            p = Path(root) / name
            if os.access(p, os.X_OK):
                return p
    return None


class Report:
    def __init__(self):
        self.commands = []  # every command run, for the record
        self.notes = []  # missing peers and failures, printed at the end
        self.failed = False  # mallocgc's own benchmarks failed


def run(report, cmd, cwd=None, env=None, timeout=900):
    """Run cmd; return (returncode, stdout, stderr). Never raises for the command's failure."""
    shown = " ".join(shlex.quote(str(c)) for c in cmd)
    if env is not None:
        extra = {k: v for k, v in env.items() if os.environ.get(k) != v}
        if extra:
            shown = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(extra.items())) + " " + shown
    if cwd is not None:
        shown = f"(cd {shlex.quote(str(cwd))} && {shown})"
    report.commands.append(shown)
    log(f"running {shown}")
    try:
        p = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, "", f"timed out after {timeout} s"
    except OSError as e:
        return -1, "", str(e)
    return p.returncode, p.stdout, p.stderr


def last_line(text):
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return lines[-1] if lines else "(no output)"


def run_gbench(report, exe, reps, min_time, extra_args=(), env_extra=None):
    """Run a Google Benchmark executable; return ({name: median ns}, context, error)."""
    env = None
    if env_extra:
        env = dict(os.environ)
        env.update(env_extra)
    rc, out, err = run(
        report,
        [exe, f"--benchmark_repetitions={reps}", "--benchmark_format=json", f"--benchmark_min_time={min_time}",
         *extra_args],
        env=env,
    )
    if rc != 0:
        return {}, {}, f"{exe.name} exited with status {rc}: {last_line(err)}"
    try:
        data = json.loads(out)
    except json.JSONDecodeError as e:
        return {}, {}, f"{exe.name}: output is not JSON ({e})"
    samples, errors = {}, []
    for b in data.get("benchmarks", []):
        if b.get("error_occurred"):
            errors.append(f"{b.get('run_name', b.get('name'))}: {b.get('error_message')}")
            continue
        if b.get("run_type", "iteration") != "iteration":
            continue
        scale = TIME_UNIT_NS.get(b.get("time_unit", "ns"), 1.0)
        samples.setdefault(b.get("run_name", b["name"]), []).append(b["real_time"] * scale)
    medians = {name: statistics.median(v) for name, v in samples.items()}
    error = "; ".join(sorted(set(errors))) or None
    return medians, data.get("context", {}), error


def go_command():
    explicit = os.environ.get("BENCH_GO")
    if explicit:
        return explicit if shutil.which(explicit) else None
    if os.access("/usr/lib/go-1.19/bin/go", os.X_OK):
        return "/usr/lib/go-1.19/bin/go"
    return shutil.which("go")


GO_LINE = re.compile(
    r"^Benchmark(?P<name>\w+?)(?:-\d+)?\s+\d+\s+(?P<ns>[\d.]+) ns/op(?:\s+[\d.]+ B/op\s+(?P<allocs>\d+) allocs/op)?"
)


def go_env(build):
    """The environment of every go command: offline, caches under build/bench-go, Go's defaults."""
    gohome = build / "bench-go"
    env = dict(os.environ)
    for k in ("GOGC", "GOMEMLIMIT", "GODEBUG", "GOMAXPROCS"):  # Go's defaults, as the seed measured
        env.pop(k, None)
    env.update(
        GOCACHE=str(gohome / "cache"),
        GOPATH=str(gohome / "path"),
        GOPROXY="off",
        GOFLAGS="-mod=mod",
        GO111MODULE="on",
        GOTOOLCHAIN="local",
    )
    gohome.mkdir(parents=True, exist_ok=True)
    return env


def run_go(report, build, reps, benchtime):
    """Run bench/go offline; return ({name: median ns}, version label, error)."""
    go = go_command()
    if go is None:
        return None, None, None
    rc, out, _ = run(report, [go, "version"])
    m = re.search(r"go(\d+\.\d+)(\.\d+)?", out)
    label = f"Go {m.group(1)}" if m else "Go"
    version = m.group(0) if m else "unknown"
    env = go_env(build)
    seed_four = "^Benchmark(" + "|".join(SEED_FOUR) + ")$"
    cmd = [go, "test", "-run", "^$", "-bench", seed_four, "-benchmem", "-count", str(reps), "-benchtime", benchtime]
    rc, out, err = run(report, cmd, cwd=REPO / "bench" / "go", env=env)
    if rc != 0:
        return {}, label, f"go test exited with status {rc}: {last_line(err or out)}"
    samples, bad_allocs = {}, set()
    for line in out.splitlines():
        m = GO_LINE.match(line.strip())
        if not m:
            continue
        samples.setdefault(m.group("name"), []).append(float(m.group("ns")))
        if m.group("allocs") is not None and m.group("allocs") != "1":
            bad_allocs.add(m.group("name"))
    error = None
    if bad_allocs:
        error = "allocs/op is not 1 (the result did not escape) for " + ", ".join(sorted(bad_allocs))
    return {k: statistics.median(v) for k, v in samples.items()}, f"{label} ({version})", error


GO_PARALLEL_LINE = re.compile(r"^BenchmarkMalloc8Parallel(?:-(?P<cpu>\d+))?\s+\d+\s+(?P<ns>[\d.]+) ns/op")


def run_go_parallel(report, build, reps, benchtime):
    """Go's Malloc8Parallel with -cpu 1,2; return ({threads: median aggregate ns/op}, error)."""
    go = go_command()
    if go is None:
        return None, None
    cmd = [go, "test", "-run", "^$", "-bench", "^BenchmarkMalloc8Parallel$", "-cpu", "1,2",
           "-count", str(reps), "-benchtime", benchtime]
    rc, out, err = run(report, cmd, cwd=REPO / "bench" / "go", env=go_env(build))
    if rc != 0:
        return {}, f"go test exited with status {rc}: {last_line(err or out)}"
    samples = {}
    for line in out.splitlines():
        m = GO_PARALLEL_LINE.match(line.strip())
        if m:  # go test omits the -N suffix when GOMAXPROCS is 1
            samples.setdefault(int(m.group("cpu") or 1), []).append(float(m.group("ns")))
    return {k: statistics.median(v) for k, v in samples.items()}, None


def build_go_workloads(report, build):
    """go build bench/go/workloads offline; return (executable or None, error or None)."""
    go = go_command()
    if go is None:
        return None, None
    exe = build / "bench-go" / "workloads"
    env = go_env(build)
    rc, out, err = run(report, [go, "build", "-o", exe, "./workloads"], cwd=REPO / "bench" / "go", env=env)
    if rc != 0:
        return None, f"go build ./workloads exited with status {rc}: {last_line(err or out)}"
    return exe, None


def run_workloads(report, exes, benches, reps):
    """Run each workload on each system reps times, round-robin (so that a
    slow spell of a shared machine falls on every system alike).

    exes: {system: executable}; benches: [(key, argv tail)]. Returns
    {key: {system: {"median": {field: value or None}, "runs": n,
    "version": str or None, "check": value, "error": str or None}}}.
    """
    results = {key: {sys_: {"rows": [], "error": None} for sys_ in exes} for key, _ in benches}
    for _ in range(reps):
        for key, args in benches:
            for system, exe in exes.items():
                r = results[key][system]
                if r["error"]:
                    continue
                env = None
                if system in WORKLOAD_ENV:
                    env = dict(os.environ)
                    env.update(WORKLOAD_ENV[system])
                rc, out, err = run(report, [exe, *args], env=env, timeout=600)
                if rc != 0:
                    r["error"] = f"{Path(exe).name} {' '.join(args)} exited with status {rc}: {last_line(err or out)}"
                    continue
                try:
                    row = json.loads(last_line(out))
                except json.JSONDecodeError:
                    r["error"] = f"{Path(exe).name} {' '.join(args)}: unexpected output {last_line(out)!r}"
                    continue
                r["rows"].append(row)
    for key in results:
        for system, r in results[key].items():
            rows = r.pop("rows")
            r["runs"] = len(rows)
            r["median"] = {}
            for f in WORKLOAD_FIELDS:
                vals = [row.get(f) for row in rows if row.get(f) is not None]
                r["median"][f] = statistics.median(vals) if vals else None
            r["max_cycles"] = max((row.get("gc_cycles") or 0 for row in rows), default=0)
            r["version"] = rows[0].get("version") if rows else None
            checks = {row.get("check") for row in rows}
            r["check"] = next(iter(checks)) if len(checks) == 1 else None
            if len(checks) > 1:
                r["error"] = r["error"] or f"its check differs between runs: {sorted(checks)}"
    return results


def run_growth(report, exe, args, env_extra, reps):
    """Run a heap-growth executable reps times; return (medians dict, error)."""
    rows, error = [], None
    env = dict(os.environ)
    env.update(env_extra)
    for _ in range(reps):
        rc, out, err = run(report, [exe, *args], env=env)
        if rc != 0:
            error = f"{exe.name} exited with status {rc}: {last_line(err or out)}"
            break
        try:
            rows.append(json.loads(last_line(out)))
        except json.JSONDecodeError:
            error = f"{exe.name}: unexpected output {last_line(out)!r}"
            break
    if error or not rows:
        return None, error or "no output"
    return {k: statistics.median(r[k] for r in rows) for k in ("ms_per_mib", "ns_per_16b", "anon_huge_mib")}, None


PROGRAM_RUNNER = REPO / "tests" / "compat" / "programs" / "run_workload.py"


def run_programs(report, build, runs, scale, only):
    """The Debian programs on both libraries: {workload: bench JSON}."""
    libdir = build / "boehm"
    if not (libdir / "libgc.so.1").exists():
        report.notes.append(f"**mallocgc: {libdir}/libgc.so.1 is not built.**")
        report.failed = True
        return {}
    rc, stdout, _ = run(report, [sys.executable, str(PROGRAM_RUNNER), "--list"], timeout=60)
    if rc != 0:
        report.notes.append("tests/compat/programs/run_workload.py --list failed.")
        return {}
    names = stdout.split()
    if only:
        names = [n for n in names if n in only]
    results = {}
    for name in names:
        log(f"program workload {name}")
        rc, stdout, stderr = run(report, [sys.executable, str(PROGRAM_RUNNER), "--workload", name, "--ours",
                                          str(libdir), "--bench", "--scale", scale, "--runs", str(runs)], timeout=3600)
        if rc == 77:
            results[name] = {"error": "program not installed"}
            continue
        line = last_line(stdout)
        try:
            results[name] = json.loads(line)
        except ValueError:
            results[name] = {"error": f"exit {rc}: {last_line(stderr) or line}"}
        if rc != 0 and "error" not in results[name]:
            results[name]["error"] = "outputs differ from the system library's"
    return results


def programs_section(programs, runs, scale):
    out = ["## Debian programs on mallocgc's libgc.so.1", ""]
    out.append("Each workload of `tests/compat/programs/run_workload.py` (what each does is listed there), run "
               f"`--scale {scale}` on the system's Boehm GC 8.2.2 and on mallocgc's `libgc.so.1` "
               f"(`LD_LIBRARY_PATH`), alternately, {runs} times each; medians of wall time and of peak RSS of the "
               "workload's programs. Outputs are compared on every run. Ratio = mallocgc / Boehm.")
    out.append("")
    out.append("| workload | Boehm s | mallocgc s | ratio | Boehm MiB | mallocgc MiB | ratio | output |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, r in programs.items():
        if "system" not in r:
            out.append(f"| {name} | | | | | | | {r.get('error', 'failed')} |")
            continue
        bw, mw = r["system"]["wall_s_median"], r["ours"]["wall_s_median"]
        br, mr = r["system"]["maxrss_kib_median"] / 1024, r["ours"]["maxrss_kib_median"] / 1024
        match = "same" if r.get("match") and "error" not in r else r.get("error", "differs")
        out.append(f"| {name} | {bw:.2f} | {mw:.2f} | {fmt_ratio(mw, bw)} | {br:.1f} | {mr:.1f} | "
                   f"{fmt_ratio(mr, br)} | {match} |")
    out.append("")
    return out


def host_line(build):
    cpus = os.cpu_count()
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    thp = "unknown"
    try:
        m = re.search(r"\[(\w+)\]", Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text())
        thp = m.group(1) if m else thp
    except OSError:
        pass
    build_type = "unknown"
    try:
        m = re.search(r"^CMAKE_BUILD_TYPE:\w+=(.*)$", (build / "CMakeCache.txt").read_text(), re.M)
        build_type = (m.group(1) or "(none)") if m else build_type
    except OSError:
        pass
    rev = "no commit"
    try:
        p = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        if p.returncode == 0:
            rev = p.stdout.strip()
            d = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"], capture_output=True, text=True)
            if d.stdout.strip():
                rev += " + uncommitted changes"
    except OSError:
        rev = "unknown"
    return (
        f"Host: {cpus} CPUs ({model}), Linux {platform.release()}, transparent huge pages `{thp}`; "
        f"build type {build_type}; git {rev}."
    ), build_type


def fmt_num(v, digits=2):
    if v is None:
        return "—"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.{digits}f}"


def workload_section(workloads, missing, depth, gc_reps, go_label, boehm_label):
    """The binary-trees and GCBench tables, as markdown lines."""
    labels = {
        "mallocgc": "mallocgc",
        "mallocgc-concurrent": "mallocgc, concurrent mark (`gcstoptheworld=0`)",
        "mallocgc-noprof": "mallocgc, heap profiling off (`MALLOCGC_MEMPROFILERATE=0`)",
        "go": go_label.split(" (")[0],
        "boehm": boehm_label,
        "mimalloc": "mimalloc, explicit free",
    }
    titles = {"binary-trees": f"binary-trees {depth}", "gcbench": "GCBench"}
    out = ["## binary-trees and GCBench (collector on, default settings)", ""]
    out.append(
        f"Medians of {gc_reps} runs, each a fresh process; the systems take turns. One thread allocates. "
        "Wall: start of `main` to the end of the work. CPU: user + system time of every thread of the process "
        "(collector threads included). Peak RSS: `ru_maxrss`. Cycles: collections during the run. Pauses: "
        "mallocgc `stats().pause_ns`, Go `MemStats.PauseNs` (a cycle's two stop-the-world pauses summed), Boehm "
        "`GC_EVENT_START` to `GC_EVENT_END`; p99 is the nearest rank. Max stall (mallocgc): the longest wait of an "
        "allocation for a cycle another thread ran (`Stats::gc_stall_max_ns`; with the concurrent mark, the heap "
        "reached the goal before the mark ended). Nodes: mallocgc `alloc_typed` "
        "(two pointer words), Go `&node{}`, Boehm `GC_MALLOC`; mimalloc frees every node with `mi_free` "
        "(no collector: the floor). binary-trees: the Benchmarks Game algorithm, one thread. GCBench: Boehm "
        "and Ellis's classic C version (stretch tree 18, long-lived tree 16, 500,000 doubles, trees 4 to 16)."
    )
    out.append("")
    out.append("| benchmark | system | wall s | CPU s | peak RSS MiB | cycles | max pause ms | p99 pause ms | "
               "max stall ms |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    footnotes = []
    for key, title in titles.items():
        for system in WORKLOAD_SYSTEMS:
            name = labels[system]
            r = workloads.get(key, {}).get(system)
            if system in missing:
                out.append(f"| {title} | {name} | {missing[system]} | | | | | | |")
                continue
            if r is None or (r["error"] and r["runs"] == 0):
                out.append(f"| {title} | {name} | failed (see below) | | | | | | |")
                continue
            m = r["median"]
            cycles = "—" if m["gc_cycles"] is None else f"{m['gc_cycles']:.0f}"
            stall = "—" if m["stall_max_ms"] is None else fmt_num(m["stall_max_ms"])
            out.append(f"| {title} | {name} | {fmt_num(m['wall_s'])} | {fmt_num(m['cpu_s'])} | "
                       f"{fmt_num(m['peak_rss_mib'], 1)} | {cycles} | {fmt_num(m['pause_max_ms'])} | "
                       f"{fmt_num(m['pause_p99_ms'])} | {stall} |")
            if system in ("mallocgc", "mallocgc-concurrent", "mallocgc-noprof", "go") and r["max_cycles"] > PAUSE_RING:
                footnotes.append(f"{title}, {name}: {r['max_cycles']} cycles; max and p99 cover the last "
                                 f"{PAUSE_RING} pauses (total of all pauses: {fmt_num(m['pause_total_ms'])} ms).")
    out.append("")
    if footnotes:
        out.extend(f"- {f}" for f in footnotes)
        out.append("")

    def med(key, system, field):
        r = workloads.get(key, {}).get(system)
        if r is None or system in missing or r["runs"] == 0:
            return None
        return r["median"][field]

    out.append("Ratios of the medians (mallocgc / peer; below 1: mallocgc is faster or smaller):")
    out.append("")
    out.append(f"| benchmark | wall / {labels['go']} | wall / Boehm | wall / mimalloc | "
               f"RSS / {labels['go']} | RSS / Boehm | RSS / mimalloc |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    for key, title in titles.items():
        for ours, suffix in (("mallocgc", ""), ("mallocgc-concurrent", ", concurrent mark")):
            cells = []
            for field in ("wall_s", "peak_rss_mib"):
                m = med(key, ours, field)
                cells.extend(fmt_ratio(m, med(key, peer, field)) for peer in ("go", "boehm", "mimalloc"))
            out.append(f"| {title}{suffix} | " + " | ".join(cells) + " |")
    out.append("")
    return out


def run_profiling(report, exe, rounds, min_time):
    """The seed's four at each of PROFILE_RATES, rate after rate in rounds,
    each a fresh process. Returns ({rate: {name: median ns}}, error)."""
    samples = {rate: {} for rate in PROFILE_RATES}
    flt = "--benchmark_filter=^(" + "|".join(SEED_FOUR) + ")$"
    for _ in range(rounds):
        for rate in PROFILE_RATES:
            res, _, error = run_gbench(report, exe, 1, min_time, [flt], {"MALLOCGC_MEMPROFILERATE": rate})
            if error:
                return None, error
            for name, v in res.items():
                samples[rate].setdefault(name, []).append(v)
    return {rate: {n: statistics.median(v) for n, v in by.items()} for rate, by in samples.items()}, None


def profiling_section(prof, prof_error, rounds, workloads, depth):
    """Heap profiling on against off, as markdown lines."""
    out = ["## Heap profiling's cost (on at the default rate against off)", ""]
    if prof is None:
        out.append(f"Not measured: {prof_error}.")
        out.append("")
        return out
    out.append(
        f"The seed's four with `MALLOCGC_MEMPROFILERATE` 0 (off), 524288 (the default, 512 KiB) and 4096, "
        f"the rates taking turns, {rounds} rounds of fresh processes, medians. The direct ratio is within "
        "the noise of this machine (about 5% between runs of one setting), so the overhead is also given "
        "amplified: a sample costs the same at any rate, so the cost of the samples at 4096 (128 times as "
        "many), divided by 128, is their cost at the default rate.")
    out.append("")
    out.append("| benchmark | off ns/op | default ns/op | default / off | rate 4096 ns/op | µs per sample | "
               "overhead at the default rate (amplified) |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    for name in SEED_FOUR:
        off, on, hi = (prof[r].get(name) for r in PROFILE_RATES)
        if off is None or on is None or hi is None:
            out.append(f"| {name} | {fmt_ns(off)} | {fmt_ns(on)} | — | {fmt_ns(hi)} | — | — |")
            continue
        per_sample_us = (hi - off) * 4096 / PROFILE_SIZES[name] / 1000
        amplified = (hi / off - 1) / 128 * 100
        out.append(f"| {name} | {fmt_ns(off)} | {fmt_ns(on)} | {on / off:.3f} | {fmt_ns(hi)} | "
                   f"{per_sample_us:.2f} | {amplified:.2f}% |")
    out.append("")
    rows = []
    for key, title in (("binary-trees", f"binary-trees {depth}"), ("gcbench", "GCBench")):
        on = workloads.get(key, {}).get("mallocgc")
        off = workloads.get(key, {}).get("mallocgc-noprof")
        if not on or not off or not on["runs"] or not off["runs"]:
            continue
        w_on, w_off = on["median"]["wall_s"], off["median"]["wall_s"]
        rows.append(f"| {title} | {fmt_num(w_off)} | {fmt_num(w_on)} | {fmt_ratio(w_on, w_off)} |")
    if rows:
        out.append("The collector workloads (the table above): wall time with heap profiling at the default rate "
                   "against off, medians.")
        out.append("")
        out.append("| workload | off wall s | default wall s | default / off |")
        out.append("|---|---:|---:|---:|")
        out.extend(rows)
        out.append("")
    return out


def scaling_section(scaling, reps):
    """The two-thread Malloc8 table, as markdown lines."""
    out = ["## Two threads allocating (Malloc8)", ""]
    out.append(
        f"Medians of {reps} runs. ns per allocation of all threads together (wall time / allocations); "
        "scaling = throughput with two threads / with one (2.00 is perfect; target for mallocgc with the "
        "collector on: 1.8 or more). Results are dropped at once (collector on) except on the warm-heap row, "
        "where each thread keeps 2^20 results and frees them with `mgc::free`, untimed."
    )
    out.append("")
    out.append("| system | 1 thread ns/op | 2 threads ns/op | scaling |")
    out.append("|---|---:|---:|---:|")
    for label, row in scaling.items():
        one, two = row.get(1), row.get(2)
        out.append(f"| {label} | {fmt_ns(one)} | {fmt_ns(two)} | {fmt_ratio(one, two)} |")
    out.append("")
    return out


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    build = Path(argv[1]).resolve()
    if not build.is_dir():
        print(f"bench_table: {build} is not a directory", file=sys.stderr)
        return 2
    reps = env_int("BENCH_REPS", 5)
    min_time = env_float("BENCH_MIN_TIME", 0.5)
    go_benchtime = os.environ.get("BENCH_GO_BENCHTIME", "1s")
    heap_mib = env_int("BENCH_HEAP_MIB", 256)
    gc_reps = env_int("BENCH_GC_REPS", 3)
    prof_rounds = env_int("BENCH_PROF_ROUNDS", 3)
    trees_depth = env_int("BENCH_TREES_DEPTH", 21)
    program_runs = env_int("BENCH_PROGRAM_RUNS", 3)
    program_scale = os.environ.get("BENCH_PROGRAM_SCALE", "bench")
    program_only = {n for n in os.environ.get("BENCH_PROGRAMS", "").split(",") if n}
    report = Report()
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()[0]

    # --- run everything -----------------------------------------------------
    mgc, mgc_ctx = {}, {}
    exe = find_executable(build, "bench_malloc")
    if exe is None:
        report.notes.append(f"**mallocgc: bench_malloc is not built under {build}** (configure with -DMALLOCGC_BUILD_BENCH=ON).")
        report.failed = True
    else:
        mgc, mgc_ctx, error = run_gbench(report, exe, reps, min_time)
        missing = [n for n in SEED_FOUR + [f"PairMgc/{s}" for s in PAIR_SIZES] if n not in mgc]
        if error or missing:
            report.failed = True
            report.notes.append(f"**mallocgc failed**: {error or 'no result for ' + ', '.join(missing)}.")

    prof, prof_error = None, "bench_malloc is not built"
    exe = find_executable(build, "bench_malloc")
    if exe is not None:
        prof, prof_error = run_profiling(report, exe, prof_rounds, min_time)
        if prof_error:
            report.failed = True
            report.notes.append(f"**mallocgc, heap profiling's cost: {prof_error}.**")

    boehm, boehm_label = None, "Boehm"
    exe = find_executable(build, "bench_boehm")
    if exe is None:
        report.notes.append(f"Boehm GC: bench_boehm is not built; install {PACKAGES['boehm']} and reconfigure.")
    else:
        boehm, ctx, error = run_gbench(report, exe, reps, min_time)
        boehm_label = ctx.get("allocator", "boehm").replace("boehm", "Boehm")
        if error:
            report.notes.append(f"Boehm GC failed: {error}.")

    go, go_label, error = run_go(report, build, reps, go_benchtime)
    if go is None:
        report.notes.append(f"Go: no go command found; install {PACKAGES['go']}.")
        go_label = "Go 1.19"
    elif error:
        report.notes.append(f"Go: {error}.")

    pairs = {}  # peer -> {size: ns}
    for peer in PAIR_PEERS:
        exe = find_executable(build, f"bench_pairs_{peer}")
        if exe is None:
            report.notes.append(f"{peer}: bench_pairs_{peer} is not built; install {PACKAGES[peer]} and reconfigure.")
            continue
        res, ctx, error = run_gbench(report, exe, reps, min_time)
        if error:
            report.notes.append(f"{peer} failed: {error}.")
        origin = ctx.get("malloc_from", "")
        if origin and MALLOC_FROM[peer] not in origin:
            report.notes.append(f"{peer}: its allocation function resolved to {origin}, not {peer}: its column is dropped.")
            continue
        pairs[peer] = {s: res.get(f"Pair/{s}") for s in PAIR_SIZES}

    growth = []  # (label, medians or None, error)
    exe = find_executable(build, "bench_heap_growth")
    if exe is None:
        report.notes.append("**mallocgc: bench_heap_growth is not built.**")
        report.failed = True
    else:
        for value in ("0", "1"):
            res, error = run_growth(report, exe, [f"--mib={heap_mib}"], {"MALLOCGC_HUGEPAGES": value}, reps)
            growth.append((f"mallocgc, `MALLOCGC_HUGEPAGES={value}`", res, error))
            if error:
                report.failed = True
    exe = find_executable(build, "bench_page_touch")
    if exe is None:
        report.notes.append("bench_page_touch is not built.")
    else:
        for advise, label in (("none", "mmap, no advice"), ("huge", "mmap + `MADV_HUGEPAGE`")):
            res, error = run_growth(report, exe, [f"--mib={heap_mib}", f"--advise={advise}"], {}, reps)
            growth.append((label, res, error))

    # Two threads: {row label: {threads: ns/op}}; mallocgc's rows first.
    scaling = {}
    exe = find_executable(build, "bench_malloc_threads")
    if exe is None:
        report.notes.append("**mallocgc: bench_malloc_threads is not built.**")
        report.failed = True
    else:
        res, _, error = run_gbench(report, exe, reps, min_time)
        for name, label in (("Malloc8Threads", "mallocgc, collector on"),
                            ("Malloc8ThreadsWarm", "mallocgc, warm heap (batches freed untimed)")):
            scaling[label] = {t: res.get(f"{name}/real_time/threads:{t}") for t in (1, 2)}
        if error or any(v is None for row in scaling.values() for v in row.values()):
            report.failed = True
            report.notes.append(f"**mallocgc: bench_malloc_threads failed**: {error or 'results missing'}.")
    go_par, error = run_go_parallel(report, build, reps, go_benchtime)
    if go_par is not None:
        scaling[f"{go_label.split(' (')[0]} (`b.RunParallel`, `-cpu 1,2`)"] = {t: go_par.get(t) for t in (1, 2)}
        if error:
            report.notes.append(f"Go Malloc8Parallel: {error}.")
    if boehm is not None:
        scaling[f"{boehm_label} (`GC_MALLOC_ATOMIC(8)`)"] = {
            t: boehm.get(f"Malloc8Threads/real_time/threads:{t}") for t in (1, 2)}

    # binary-trees and GCBench, round-robin over the systems.
    workload_exes, workload_missing = {}, {}
    for system in WORKLOAD_SYSTEMS:
        if system == "go":
            exe, error = build_go_workloads(report, build)
            if error:
                report.notes.append(f"Go workloads: {error}.")
                workload_missing[system] = "build failed (see below)"
            elif exe is None:
                workload_missing[system] = f"not installed (Debian: {PACKAGES['go']})"
        else:
            exe = find_executable(build, WORKLOAD_EXES[system])
            if exe is None:
                if system.startswith("mallocgc"):
                    report.notes.append(f"**mallocgc: {WORKLOAD_EXES[system]} is not built.**")
                    report.failed = True
                    workload_missing[system] = "not built"
                else:
                    workload_missing[system] = f"not installed (Debian: {PACKAGES[system]})"
        if exe is not None:
            workload_exes[system] = exe
    workload_benches = [("binary-trees", ["binary-trees", str(trees_depth)]), ("gcbench", ["gcbench"])]
    workloads = run_workloads(report, workload_exes, workload_benches, gc_reps)
    for key, _ in workload_benches:
        for system, r in workloads[key].items():
            if r["error"]:
                if system.startswith("mallocgc"):
                    report.failed = True
                    report.notes.append(f"**mallocgc {key} failed**: {r['error']}.")
                else:
                    report.notes.append(f"{system} {key} failed: {r['error']}.")
        checks = {r["check"] for r in workloads[key].values() if not r["error"] and r["runs"]}
        if len(checks) > 1:
            report.notes.append(f"{key}: the systems disagree on the check figure: "
                                + ", ".join(f"{s} {r['check']}" for s, r in workloads[key].items()) + ".")

    programs = run_programs(report, build, program_runs, program_scale, program_only)
    for name, r in programs.items():
        if r.get("error") and r["error"] != "program not installed":
            report.failed = True
            report.notes.append(f"**mallocgc's libgc.so.1, {name}: {r['error']}.**")

    # --- the report ----------------------------------------------------------
    load_after = os.getloadavg()[0]
    host, build_type = host_line(build)
    out = []
    out.append("# mallocgc benchmarks")
    out.append("")
    out.append(f"Command: `{shlex.join(['python3', *argv])}` "
               f"(BENCH_REPS={reps}, BENCH_MIN_TIME={min_time:g} s, BENCH_GO_BENCHTIME={go_benchtime}, "
               f"BENCH_HEAP_MIB={heap_mib}, BENCH_GC_REPS={gc_reps}, BENCH_TREES_DEPTH={trees_depth})")
    out.append(f"Date: {started.strftime('%Y-%m-%d %H:%M UTC')}. {host} "
               f"Load average (1 min) {load_before:.2f} at the start, {load_after:.2f} at the end.")
    if build_type not in ("Release", "unknown"):
        out.append(f"**Warning: build type {build_type}, not Release: these figures do not measure the optimized build.**")
    out.append("")
    out.append(f"Medians of {reps} runs, wall-clock time. Ratio = mallocgc / peer (below 1: mallocgc is faster). "
               "On a shared 2-core machine differences within about 10% are noise; compare ratios from one run only.")
    out.append("")

    out.append("## The seed's four (ns per allocation)")
    out.append("")
    out.append("mallocgc: collector on at default pacing (GOGC=100); each result is stored to a global and "
               "reclaimed once dropped, as in Go and Boehm. "
               "Go: default GOGC, results escape (1 allocs/op). "
               "Boehm: `GC_INIT()` defaults, `GC_THREADS`, collector on. Nothing freed by hand in Go or Boehm.")
    out.append("")
    out.append(f"| benchmark | mallocgc ns/op | {go_label.split(' (')[0]} ns/op | ratio | Boehm ns/op | ratio |")
    out.append("|---|---:|---:|---:|---:|---:|")
    for name in SEED_FOUR:
        m = mgc.get(name)
        g = go.get(name) if go else None
        b = boehm.get(name) if boehm else None
        out.append(f"| {name} | {fmt_ns(m)} | {fmt_ns(g)} | {fmt_ratio(m, g)} | {fmt_ns(b)} | {fmt_ratio(m, b)} |")
    peers_used = [l for l in ((go_label if go else None), (boehm_label if boehm else None)) if l]
    if peers_used:
        out.append("")
        out.append("Peers: " + ", ".join(peers_used) + ".")
    out.append("")

    out.append("## Allocate + free of one object (ns per pair)")
    out.append("")
    out.append("mallocgc: `mgc::alloc_noscan(size)` (inline, zeroes the object) then `mgc::free`. "
               "Peers: `malloc` + `free` through the PLT (mimalloc: `mi_malloc` + `mi_free`). "
               "Ratio: mallocgc / the fastest peer of the row.")
    out.append("")
    out.append("| size | mallocgc | glibc | mimalloc | jemalloc | tcmalloc | ratio to fastest peer |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    for s in PAIR_SIZES:
        m = mgc.get(f"PairMgc/{s}")
        vals = {peer: pairs.get(peer, {}).get(s) for peer in PAIR_PEERS}
        present = {k: v for k, v in vals.items() if v is not None}
        if present:
            fastest = min(present, key=present.get)
            ratio = f"{fmt_ratio(m, present[fastest])} ({fastest})"
        else:
            ratio = "—"
        cells = " | ".join(fmt_ns(vals[p]) for p in PAIR_PEERS)
        out.append(f"| {s} B | {fmt_ns(m)} | {cells} | {ratio} |")
    out.append("")

    out.append("## Heap growth (fresh memory from the OS)")
    out.append("")
    out.append(f"Each run is a fresh process that grows by {heap_mib} MiB and writes one byte per 4 KiB page: "
               "mallocgc as `mgc::alloc_noscan(4096)` objects, the reference lines as plain `mmap`. "
               "Per 16-byte object: the same cost spread over the 65,536 16-byte objects of a MiB. "
               "Huge pages: MiB of the process backed by transparent huge pages at the end (median).")
    out.append("")
    out.append("| memory | ms per MiB | ns per 16-byte object | MiB in huge pages |")
    out.append("|---|---:|---:|---:|")
    for label, res, error in growth:
        if res is None:
            out.append(f"| {label} | failed: {error} | | |")
        else:
            huge = "?" if res["anon_huge_mib"] < 0 else f"{res['anon_huge_mib']:.0f}"
            out.append(f"| {label} | {res['ms_per_mib']:.3f} | {fmt_ns(res['ns_per_16b'])} | {huge} |")
    out.append("")

    out.extend(workload_section(workloads, workload_missing, trees_depth, gc_reps, go_label, boehm_label))
    out.extend(profiling_section(prof, prof_error, prof_rounds, workloads, trees_depth))
    out.extend(scaling_section(scaling, reps))
    out.extend(programs_section(programs, program_runs, program_scale))

    if report.notes:
        out.append("## Missing or failed")
        out.append("")
        out.extend(f"- {n}" for n in report.notes)
        out.append("")
    out.append("<details><summary>Commands run</summary>")
    out.append("")
    out.extend(f"    {c}" for c in report.commands)
    out.append("")
    out.append("</details>")

    text = "\n".join(out) + "\n"
    sys.stdout.write(text)
    sys.stdout.flush()
    try:
        (build / "bench_table.md").write_text(text)
        log(f"wrote {build / 'bench_table.md'}")
    except OSError as e:
        log(f"could not write {build / 'bench_table.md'}: {e}")
    if report.failed:
        log("mallocgc's own benchmarks failed or are missing")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
