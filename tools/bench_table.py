#!/usr/bin/env python3
"""Run mallocgc's benchmarks and its peers; print one markdown report.

    python3 tools/bench_table.py <build dir>

Runs, from <build dir> (bench/CMakeLists.txt builds them):

  bench_malloc          mallocgc: the seed's four and PairMgc/<size>
  bench_boehm           Boehm GC: the seed's four
  bench/go              Go: the seed's four (`go test -bench`, offline)
  bench_pairs_<peer>    glibc, mimalloc, jemalloc, tcmalloc: Pair/<size>
  bench_heap_growth     mallocgc growing a fresh heap, MALLOCGC_HUGEPAGES=0 and 1
  bench_page_touch      the same touch pattern on plain mmap'd memory

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
  BENCH_GO              the go command (default /usr/lib/go-1.19/bin/go, then go on PATH)

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


def run_gbench(report, exe, reps, min_time):
    """Run a Google Benchmark executable; return ({name: median ns}, context, error)."""
    rc, out, err = run(
        report,
        [exe, f"--benchmark_repetitions={reps}", "--benchmark_format=json", f"--benchmark_min_time={min_time}"],
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


def run_go(report, build, reps, benchtime):
    """Run bench/go offline; return ({name: median ns}, version label, error)."""
    go = go_command()
    if go is None:
        return None, None, None
    rc, out, _ = run(report, [go, "version"])
    m = re.search(r"go(\d+\.\d+)(\.\d+)?", out)
    label = f"Go {m.group(1)}" if m else "Go"
    version = m.group(0) if m else "unknown"
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
    cmd = [go, "test", "-run", "^$", "-bench", ".", "-benchmem", "-count", str(reps), "-benchtime", benchtime]
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

    # --- the report ----------------------------------------------------------
    load_after = os.getloadavg()[0]
    host, build_type = host_line(build)
    out = []
    out.append("# mallocgc benchmarks")
    out.append("")
    out.append(f"Command: `{shlex.join(['python3', *argv])}` "
               f"(BENCH_REPS={reps}, BENCH_MIN_TIME={min_time:g} s, BENCH_GO_BENCHTIME={go_benchtime}, "
               f"BENCH_HEAP_MIB={heap_mib})")
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
    out.append("mallocgc: warm heap, no collector (not built yet); each batch of 2^20 results is kept and then freed "
               "with `mgc::free`, untimed. Go: default GOGC, results escape (1 allocs/op). "
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
