#!/usr/bin/env python3
"""Debian programs linked against Boehm's libgc.so.1, run on the system's
library and on ours (LD_LIBRARY_PATH=<dir>), outputs compared byte for byte.

Each workload makes its input in a private temporary directory, runs the
program(s) with a fixed environment (LC_ALL=C.UTF-8, TZ=UTC, PATH=/usr/bin:/bin,
a private HOME and TMPDIR, nothing else: no GC_* variable reaches the
collector) and writes a transcript: every step's exit status and standard
output, plus its standard error where the program's own messages are part
of the behaviour (lines from the collector, "GC Warning: ...", are left out
of it). The private directory's path is replaced by $WORK. The transcript of
"ours" must equal the system's, byte for byte.

Workloads (--scale test is for the test suite, bench for benchmarks):

  chase_symlinks   chase(1) over thousands of symlink chains (relative,
                   absolute, through other directories, 35 hops that warn,
                   loops, dangling): -f list, -0 list, changed thresholds,
                   -D (no loop detection), --verbose. Chase keeps its loop
                   detection records in the collected heap.
  mmv_rename       mmv(1) renaming thousands of files by patterns: with
                   case changes, recursively (';'), 2- and 3-cycles that it
                   breaks through temporary names, collisions it refuses
                   (-g), copies (-c), a dry run (-n); then the sorted tree
                   with each file's contents.
  debfoster_status debfoster(8) on a generated dpkg status file of
                   thousands of packages (dependencies with alternatives and
                   versions, virtual packages, Pre-Depends, Recommends,
                   Suggests, holds, essential and removed packages): keeper
                   file creation, show keepers/orphans/depends/dependents/
                   related, -i, -o overrides, removals marked (-m). The
                   status, available and keeper files are set in a config
                   file given with -c (DpkgStatus, DpkgAvailable,
                   KeeperFile), so nothing outside the private directory is
                   read for them or written; InstallCmd, RemoveCmd and
                   InfoCmd are /bin/false besides. Not -p (providers): its
                   answer varies from run to run on Boehm itself.
  w3m_dump         w3m -dump of generated HTML (MB of tables with colspan,
                   rowspan and nested tables, nested lists, links with the
                   reference list, entities, UTF-8 text, pre, forms).
  ecl_binary_trees ECL: the binary-trees benchmark (ecl/binary_trees.lisp).
  ecl_threads      ECL: allocating threads joined, 160+ short-lived threads,
                   producer/consumer hand-off under a lock and condition
                   variable while a thread forces collections
                   (ecl/threads.lisp). Threaded.
  ecl_weak         ECL: weak pointers and the four kinds of weak hash
                   tables across ext:gc and si:gc (ecl/weak.lisp).
  ecl_finalizers   ECL: finalizers run for garbage and not for live
                   objects, removed finalizers, resurrection, garbage of
                   exited threads (ecl/finalizers.lisp). Threaded.
  ecl_heap_limit   ECL: ext:set-limit 'ext:heap-size hit, storage-exhausted
                   caught, recovered, the CONTINUE restart, the limit lifted
                   (ecl/heap_limit.lisp).
  ecl_compiler     ECL: compile-file (gcc, then dlopen of the result), calls
                   into the compiled code, COMPILE at run time
                   (ecl/compiler.lisp, ecl/compiler_input.lisp).
  guile_repl       guile -c with arguments (gc-stats' keys and invariants),
                   exit codes, an error's exit status, the REPL (guile -q)
                   reading a fixed and a generated input.
  guile_compile    compile-file of Debian's modules (-O2) and one of ours,
                   guild compile -O1 and -O0: the sha256 of every .go (and
                   whether it equals Debian's), then loading and calling
                   them, with and without auto-compilation.
  guile_binary_trees  guile: binary-trees run by the evaluator.
  guile_symbols_strings  guile: strings and symbols across (gc); the weak
                   symbol table.
  guile_hash_tables  guile: equal?, eqv? and eq? hash tables.
  guile_vectors    guile: large vectors, bytevectors, uniform vectors.
  guile_bignums    guile: bignums (GMP's memory is collected memory).
  guile_guardians  guile: guardians, port finalizers.
  guile_weak       guile: weak-key, weak-value, doubly weak tables, weak
                   vectors, object properties (guile's own kinds and mark
                   procedures).
  guile_threads    guile: threads allocating while another calls (gc),
                   short-lived threads, mutex and condition variable,
                   futures, par-map, n-par-map. Threaded.

The guile scripts (guile/*.scm, after guile/common.scm) print the same
kind of lines on standard output; standard error is compared only where
it is the program's own message (the REPL, the compiler). They run with
GUILE_AUTO_COMPILE=0 unless the step is about auto-compilation.

The ECL scripts print fixed lines ("...: ok"); where a conservative
collector may keep a few dead objects, they check "at least 90%", and put
the real counts on standard error, which is not compared for ECL. Each runs
as `ecl --norc`, loading its script under a handler that turns a Lisp error
into exit status 70 (ECL's debugger would wait on standard input).

Which library a run used is checked, not assumed: every program runs with
LD_DEBUG=libs into a private file, and the path from which the dynamic
loader initialised libgc.so.1 must be <dir>/libgc.so.1 for ours (a symlink
there to the system's library counts as ours: that is how the runner is
validated while our library does not exist) and a file in
/usr/lib/x86_64-linux-gnu or /lib/x86_64-linux-gnu for the system's.

Usage:
  run_workload.py --list [--threaded]
  run_workload.py --workload NAME --ours DIR [--scale test|bench]
                  [--repeat N] [--timeout SECONDS] [--save DIR]
  run_workload.py --workload NAME --ours DIR --bench [--runs K]

Exit status: 0 when the outputs match, 1 on a mismatch, a crash, a time-out
or a run of the system's library that went wrong (then the workload itself
is broken), 77 when a program the workload needs is not installed, 2 on a
usage error. --repeat N runs ours N times against one system run. --bench
runs the two libraries alternately K times and prints one JSON line with
the median wall time and median peak RSS of each: the wall time of the
programs only (input generation excluded), the largest peak RSS of the
programs of a run (GNU time's %M for each, in KiB; see TIME_PROGRAM).
"""

import argparse
import dataclasses
import difflib
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ECL_DIR = HERE / "ecl"
GUILE_DIR = HERE / "guile"
LIBGC = "libgc.so.1"
SYSTEM_LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu")
CLIENT_PATH = "/usr/bin:/bin"
EXIT_SKIP = 77

# Lines of the collector's own diagnostics: Boehm prints "GC Warning: ..."
# where ours may print nothing, and neither is the program's behaviour.
COLLECTOR_LINE = re.compile(rb"^(GC Warning|GC_[A-Za-z_]+)[: ].*\n?", re.MULTILINE)
# GNU time (Debian's package time) measures each program's peak RSS. The
# rusage of a child of this runner would not do: a process's peak RSS
# starts from that of the process it was forked from (the kernel carries it
# across exec), which is this Python's, about 14 MiB, more than most of the
# programs use. time's own, about 1 MiB, is what each figure carries
# instead, on both libraries alike.
TIME_PROGRAM = shutil.which("time", path="/usr/bin:/bin")
TIME_SIGNAL_LINE = re.compile(r"Command terminated by signal (\d+)")
LD_INIT_LINE = re.compile(r"calling init: (\S*/" + re.escape(LIBGC) + r")\s*$", re.MULTILINE)


class Skip(Exception):
    """The workload cannot run here (a program is missing)."""


class RunFailed(Exception):
    """A run could not finish (time-out, a program that would not start)."""


# --- deterministic input ------------------------------------------------------


class Lcg:
    """A small generator of our own: inputs must be the same on every Python."""

    def __init__(self, seed):
        self.state = (seed * 2654435761 + 12345) & 0xFFFFFFFFFFFFFFFF

    def next(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        return self.state >> 33

    def below(self, n):
        return self.next() % n

    def pick(self, items):
        return items[self.below(len(items))]


WORDS = tuple(
    "alpha Bravo charlie Delta echo Foxtrot golf Hotel india Juliett kilo Lima mike November"
    " oscar Papa quebec Romeo sierra Tango uniform Victor whiskey Xray yankee Zulu".split()
)


# --- one run of a workload on one library ---------------------------------------


@dataclasses.dataclass
class RunResult:
    transcript: bytes
    wall: float  # seconds spent in the programs, input generation excluded
    maxrss_kib: int  # the largest peak RSS of the programs run
    problems: list  # crashes, time-outs, wrong library, unexpected exit codes
    stderr_tail: str  # the last step's standard error, for failure reports


class Run:
    """The private directory, fixed environment and transcript of one run."""

    def __init__(self, root, scale, ours_dir, deadline):
        self.root = root
        self.data = root / "data"
        self.scale = scale
        self.ours_dir = ours_dir
        self.deadline = deadline
        self.home = root / "home"
        self.tmp = root / "tmp"
        self.ld_debug = root / "ld-debug"
        for d in (self.data, self.home, self.tmp, self.ld_debug):
            d.mkdir()
        self.env = {
            "PATH": CLIENT_PATH,
            "HOME": str(self.home),
            "TMPDIR": str(self.tmp),
            "LC_ALL": "C.UTF-8",
            "TZ": "UTC",
            "TERM": "dumb",
            # The loader's record of what it loaded, one file per process.
            "LD_DEBUG": "libs",
            "LD_DEBUG_OUTPUT": str(self.ld_debug / "ld"),
        }
        if ours_dir is not None:
            self.env["LD_LIBRARY_PATH"] = str(ours_dir)
        self.out = bytearray()
        self.wall = 0.0
        self.maxrss = 0
        self.problems = []
        self.stderr_tail = ""
        self.steps = 0

    def pick(self, test, bench):
        return test if self.scale == "test" else bench

    def note(self, text):
        """Adds text that the runner itself produced (a listing) to the transcript."""
        self.out += text.encode()

    def run(self, label, argv, cwd=None, stdin=None, keep_stderr=False, expect=(0,), unordered=False):
        """Runs one program; its exit status and output go to the transcript.

        stdin is a path or None (/dev/null). keep_stderr puts the program's
        standard error in the transcript too. expect lists the exit statuses
        that the workload means: another one is a problem even if both
        libraries agree on it. unordered: the output's words are compared as
        a sorted list, for output whose order follows the objects' addresses
        on Boehm too (its own order changes with its heap's layout).
        """
        self.steps += 1
        tag = f"{self.steps:02d}"
        out_path = self.root / f"step{tag}.out"
        err_path = self.root / f"step{tag}.err"
        rss_path = self.root / f"step{tag}.rss"
        logs_before = set(self.ld_debug.iterdir())
        command = argv
        if TIME_PROGRAM:
            command = [TIME_PROGRAM, "-f", "%M", "-o", str(rss_path), "--", *argv]
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise RunFailed(f"time-out before step {label!r}")
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            with open(stdin, "rb") if stdin else open(os.devnull, "rb") as inp:
                started = time.monotonic()
                try:
                    proc = subprocess.Popen(
                        command,
                        cwd=cwd or self.data,
                        env=self.env,
                        stdin=inp,
                        stdout=out,
                        stderr=err,
                        start_new_session=True,
                    )
                except OSError as e:
                    raise RunFailed(f"{argv[0]}: {e}") from e
                status, rusage, timed_out = wait_with_timeout(proc, remaining)
                elapsed = time.monotonic() - started
        self.wall += elapsed
        code = os.waitstatus_to_exitcode(status)
        maxrss = rusage.ru_maxrss
        if TIME_PROGRAM and not timed_out:
            code, maxrss = time_report(rss_path, code, maxrss)
        self.maxrss = max(self.maxrss, maxrss)
        stdout = self.filter(out_path.read_bytes())
        stderr = self.filter(err_path.read_bytes())
        if unordered:
            stdout = b"[words, sorted]\n" + b"\n".join(sorted(stdout.split())) + b"\n"
        self.stderr_tail = stderr.decode(errors="replace")[-3000:]
        self.out += f"=== {label}\n".encode()
        self.out += stdout
        if stdout and not stdout.endswith(b"\n"):
            self.out += b"\n[no newline at end of output]\n"
        if keep_stderr and stderr:
            self.out += b"--- stderr\n" + COLLECTOR_LINE.sub(b"", stderr)
        if timed_out:
            self.out += b"[timed out]\n"  # reported by run_once, from RunFailed
        elif code < 0:
            name = signal.Signals(-code).name
            self.out += f"[killed by {name}]\n".encode()
            self.problems.append(f"step {label!r} killed by {name}")
        else:
            self.out += f"[exit {code}]\n".encode()
            if code not in expect:
                self.problems.append(f"step {label!r} exited {code}, expected {expect}")
        self.check_library(label, sorted(set(self.ld_debug.iterdir()) - logs_before))
        if timed_out:
            raise RunFailed(f"step {label!r} timed out")
        return code

    def filter(self, data):
        return data.replace(str(self.root).encode(), b"$WORK")

    def check_library(self, label, logs):
        """The loader's records of the step's processes (time, the program,
        whatever it ran): libgc.so.1 loaded, and only from where expected."""
        text = "".join(log.read_text(errors="replace") for log in logs)
        loaded = LD_INIT_LINE.findall(text)
        if not loaded:
            self.problems.append(f"step {label!r}: {LIBGC} was not loaded (no loader record)")
            return
        for path in loaded:
            directory = os.path.dirname(os.path.normpath(path))
            if self.ours_dir is not None:
                ok = directory == str(self.ours_dir)
                want = str(self.ours_dir)
            else:
                ok = directory in SYSTEM_LIB_DIRS
                want = " or ".join(SYSTEM_LIB_DIRS)
            if not ok:
                self.problems.append(f"step {label!r} loaded {path}, expected one from {want}")

    def result(self):
        return RunResult(bytes(self.out), self.wall, self.maxrss, self.problems, self.stderr_tail)


def time_report(path, code, maxrss):
    """The exit code and peak RSS (KiB) of a program run under GNU time.

    time exits with the program's status, or with the number of the signal
    that killed it, which its report says ("Command terminated by signal
    N"); the report's last line is the peak RSS. Without a report (time
    could not run the program) what the runner saw stands.
    """
    try:
        text = path.read_text()
        lines = text.strip().splitlines()
        rss = int(lines[-1])
    except (OSError, ValueError, IndexError):
        return code, maxrss
    killed = TIME_SIGNAL_LINE.search(text)
    return (-int(killed.group(1)) if killed else code), rss


def wait_with_timeout(proc, timeout):
    """Waits for proc with os.wait4, which gives its own rusage (peak RSS).

    A timer kills the process group (the program and whatever it started:
    gcc under ECL) if it outlives timeout.
    """
    timed_out = threading.Event()

    def kill():
        timed_out.set()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        while True:
            try:
                _, status, rusage = os.wait4(proc.pid, 0)
                break
            except InterruptedError:
                continue
    finally:
        timer.cancel()
    # Popen must not wait for a process that is already reaped.
    proc.returncode = os.waitstatus_to_exitcode(status)
    return status, rusage, timed_out.is_set()


# --- the workloads --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    func: object
    programs: tuple
    threaded: bool
    timeout: int  # seconds for one run at --scale test; bench gets 10x
    # A bug of ours this workload shows and that is not fixed yet (README,
    # "Known bugs"): its tests get the label known_bug, which the test
    # preset leaves out, so that CI stays meaningful; run it by hand.
    known_bug: str = ""


WORKLOADS = {}


def workload(name, programs, threaded=False, timeout=120, known_bug=""):
    def register(func):
        WORKLOADS[name] = Workload(name, func, programs, threaded, timeout, known_bug)
        return func

    return register


# chase ---------------------------------------------------------------------


@workload("chase_symlinks", programs=("chase",))
def chase_symlinks(run):
    n = run.pick(3000, 30000)
    tree = run.data / "tree"
    targets = tree / "targets"
    links = tree / "links"
    for d in range(64):
        (targets / f"{d:02d}").mkdir(parents=True)
    for d in range(97):
        (links / f"c{d:02d}").mkdir(parents=True)
    entries, good = [], []
    for i in range(n):
        rng = Lcg(i)
        target = targets / f"{i % 64:02d}" / f"file{i:06d}"
        target.touch()
        if i % 101 == 0:
            length = 35  # past chase's warning threshold (30 hops)
        else:
            length = 1 + rng.below(12)
        # Hop k lives in a directory of its own choosing, so relative links
        # climb out of one directory into another.
        hops = [links / f"c{rng.below(97):02d}" / f"l{i:06d}_{k:02d}" for k in range(length)]
        kind = "loop" if i % 53 == 0 else "dangling" if i % 41 == 0 else "good"
        for k, hop in enumerate(hops):
            if k + 1 < length:
                dest = hops[k + 1]
            elif kind == "loop":
                dest = hops[0]
            elif kind == "dangling":
                dest = target.with_name(f"missing{i:06d}")
            else:
                dest = target
            if i % 5 == 0 and k + 1 == length:
                link_text = str(dest)  # absolute; printed as $WORK/...
            else:
                link_text = os.path.relpath(dest, hop.parent)
            os.symlink(link_text, hop)
        # Absolute names: after a failure chase stays in the directory it
        # had moved to, and a relative name after it is not found.
        entries.append(str(hops[0]))
        if kind == "good":
            good.append(str(hops[0].relative_to(run.data)))
    # A fixed shuffle, so that the list is not in creation order.
    order = sorted(range(n), key=lambda i: (i * 7919) % n if n % 7919 else i)
    listing = [entries[i] for i in order] + [
        str(targets / "00" / "file000000"),
        str(tree / "nowhere"),
    ]
    (run.data / "list").write_text("".join(e + "\n" for e in listing))
    (run.data / "list0").write_bytes(b"".join(e.encode() + b"\0" for e in good))
    loops = [entries[i] for i in range(0, n, 53)]
    (run.data / "loops").write_text("".join(e + "\n" for e in loops))

    run.run("chase -f list", ["chase", "-f", "list"], keep_stderr=True, expect=(1,))
    run.run("chase -0 list0", ["chase", "-0", "list0"], keep_stderr=True)
    run.run(
        "chase -w 10 -l 40 -f list",
        ["chase", "-w", "10", "-l", "40", "-f", "list"],
        keep_stderr=True,
        expect=(1,),
    )
    run.run(
        "chase -D -l 60 -f loops",
        ["chase", "-D", "-l", "60", "-f", "loops"],
        keep_stderr=True,
        expect=(1,),
    )
    run.run("chase --verbose (200 names)", ["chase", "--verbose"] + good[:200], keep_stderr=True)


# mmv -----------------------------------------------------------------------


@workload("mmv_rename", programs=("mmv",))
def mmv_rename(run):
    n = run.pick(3000, 30000)
    photos = run.data / "photos"
    photos.mkdir()
    for i in range(n):
        word = Lcg(i).pick(WORDS)
        (photos / f"IMG_{i:05d}_{word}.JPG").write_text(f"photo {i}\n")
    albums = max(10, n // 300)
    for a in range(albums):
        album = photos / f"album{a:02d}"
        album.mkdir()
        for j in range(n // albums):
            (album / f"pic{j:04d}.Jpeg").write_text(f"album {a} picture {j}\n")
    # Pairs that swap (2-cycles) and triples that rotate (3-cycles).
    for i in range(n // 4):
        a, b = f"{2 * i:05d}", f"{2 * i + 1:05d}"
        (photos / f"s_{a}_{b}").write_text(f"{a}-{b}\n")
        (photos / f"s_{b}_{a}").write_text(f"{b}-{a}\n")
    for i in range(n // 6):
        x, y, z = (f"{3 * i + k:05d}" for k in range(3))
        for p, q, r in ((x, y, z), (y, z, x), (z, x, y)):
            (photos / f"r_{p}_{q}_{r}").write_text(f"{p}{q}{r}\n")
    # Groups of three that would all land on one name.
    for i in range(n // 10):
        for k in "abc":
            (photos / f"dup{i:04d}_{k}.txt").write_text(f"dup {i} {k}\n")
    (photos / "copies").mkdir()

    run.run(
        "mmv -v -m case and order",
        ["mmv", "-v", "-m", "IMG_*_*.JPG", "#l2_#1.jpg"],
        cwd=photos,
        keep_stderr=True,
    )
    run.run(
        "mmv -v -m recursive",
        ["mmv", "-v", "-m", ";*.Jpeg", "#1#u2.jpeg"],
        cwd=photos,
        keep_stderr=True,
    )
    run.run(
        "mmv -v -m 2-cycles", ["mmv", "-v", "-m", "s_*_*", "s_#2_#1"], cwd=photos, keep_stderr=True
    )
    run.run(
        "mmv -v -m 3-cycles",
        ["mmv", "-v", "-m", "r_*_*_*", "r_#2_#3_#1"],
        cwd=photos,
        keep_stderr=True,
    )
    run.run(
        "mmv -v -g collisions",
        ["mmv", "-v", "-g", "-m", "dup*_?.txt", "dup#1.txt"],
        cwd=photos,
        keep_stderr=True,
        expect=(1,),
    )
    run.run(
        "mmv -v -c copies",
        ["mmv", "-v", "-c", "*_0*.jpg", "copies/#2-#1.jpg"],
        cwd=photos,
        keep_stderr=True,
    )
    run.run(
        "mmv -n dry run",
        ["mmv", "-n", "copies/*-*.jpg", "copies/#2.#1"],
        cwd=photos,
        keep_stderr=True,
    )
    lines = []
    for dirpath, dirnames, filenames in os.walk(photos):
        dirnames.sort()
        for f in sorted(filenames):
            path = Path(dirpath) / f
            lines.append(f"{path.relative_to(photos)}: {path.read_text().strip()}\n")
    run.note("=== listing\n" + "".join(sorted(lines)))


# debfoster -----------------------------------------------------------------


LAYERS = 5


def make_dpkg_status(n):
    """A dpkg status file of n packages with a dependency graph."""
    sections = (
        "utils",
        "libs",
        "devel",
        "doc",
        "net",
        "admin",
        "text",
        "games",
        "science",
        "contrib/misc",
        "non-free/graphics",
        "python",
        "perl",
        "x11",
    )
    virtuals = [f"virtual-{v:03d}" for v in range(max(8, n // 60))]
    names = []
    for i in range(n):
        rng = Lcg(i + 7)
        stem = f"{WORDS[i % len(WORDS)].lower()}{i:05d}"
        kind = rng.below(10)
        if kind < 3:
            names.append(f"lib{stem}")
        elif kind == 3:
            names.append(f"{stem}-dev")
        elif kind == 4:
            names.append(f"{stem}-doc")
        else:
            names.append(stem)
    chunks = []
    for i, name in enumerate(names):
        rng = Lcg(i + 99)
        if i < 15:
            priority = "required"
        elif i < 40:
            priority = "important"
        elif i < 120:
            priority = "standard"
        else:
            priority = "optional" if rng.below(5) else "extra"
        if i % 89 == 0 and i > 0:
            status = "deinstall ok config-files"
        elif i % 97 == 0 and i > 0:
            status = "hold ok installed"
        else:
            status = "install ok installed"
        fields = [
            f"Package: {name}",
            f"Status: {status}",
            f"Priority: {priority}",
            f"Section: {rng.pick(sections)}",
            f"Installed-Size: {10 + rng.below(50000)}",
            f"Maintainer: Maintainer {i % 300} <m{i % 300}@example.org>",
            f"Architecture: {'all' if rng.below(4) == 0 else 'amd64'}",
            f"Version: {i % 7}.{i % 13}-{1 + i % 3}",
        ]
        if i < 10:
            fields.append("Essential: yes")

        layer = i * LAYERS // n
        lower = (layer + 1) * n // LAYERS  # the first package of the next layer

        def deps(count):
            # On packages of the layers below, as a system's graph is
            # (applications on libraries on base libraries), so that it is
            # shallow: debfoster's work grows fast with depth. A few point
            # back up: cycles, which debfoster must survive.
            out = []
            for _ in range(count):
                if rng.below(40) == 0 and i > 0:
                    j = rng.below(i)
                elif lower < n:
                    j = lower + rng.below(n - lower)
                else:
                    continue
                dep = names[j]
                r = rng.below(6)
                if r == 0:
                    dep += f" (>= {j % 7}.0)"
                elif r == 1:
                    dep += f" | {rng.pick(virtuals)}"
                elif r == 2 and j + 1 < n:
                    dep += f" | {names[j + 1]} (<< 99)"
                out.append(dep)
            return out

        for field, count in (
            ("Pre-Depends", rng.below(2) if rng.below(8) == 0 else 0),
            ("Depends", rng.below(5)),
            ("Recommends", rng.below(3)),
            ("Suggests", rng.below(3)),
        ):
            got = deps(count)
            if field == "Depends" and rng.below(7) == 0:
                got.append(rng.pick(virtuals))
            if got:
                fields.append(f"{field}: {', '.join(got)}")
        if rng.below(9) == 0:
            provided = sorted({rng.pick(virtuals) for _ in range(1 + rng.below(3))})
            fields.append(f"Provides: {', '.join(provided)}")
        if rng.below(40) == 0:
            fields.append(f"Task: task{rng.below(5)}")
        if status != "deinstall ok config-files":
            fields.append(f"Description: package number {i} ({name})")
            fields.append(f" Generated for the collector's tests; {WORDS[i % 26]} line one.")
            fields.append(" .")
            fields.append(f" Second paragraph with {rng.below(1000)} words.")
        chunks.append("\n".join(fields) + "\n")
    return names, "\n".join(chunks)


@workload("debfoster_status", programs=("debfoster",))
def debfoster_status(run):
    n = run.pick(4000, 20000)
    names, status = make_dpkg_status(n)
    (run.data / "status").write_text(status)
    (run.data / "available").write_text("")
    # Every option is given, so that a local /etc/debfoster.conf (read
    # before the -c file) changes nothing.
    (run.data / "debfoster.conf").write_text(
        f"DpkgStatus = {run.data / 'status'}\n"
        f"DpkgAvailable = {run.data / 'available'}\n"
        f"KeeperFile = {run.data / 'keepers'}\n"
        "InstallCmd = /bin/false\n"
        "RemoveCmd = /bin/false\n"
        "InfoCmd = /bin/false\n"
        "MaxPriority = standard\n"
        "UseHold = yes\n"
        "UseEssential = yes\n"
        "UsePreDepends = yes\n"
        "UseRecommends = yes\n"
        "UseSuggests = no\n"
        "UseTasks = no\n"
        "KeepSections = games\n"
        "NokeepSections = doc\n"
        "GuessDepends = dev, doc\n"
        "NegativeKeepers = no\n"
        "Verbose = no\n"
        "Force = no\n"
        "Quiet = no\n"
    )
    base = ["debfoster", "-c", "debfoster.conf"]
    run.run("show orphans, no keeper file", base + ["-n", "-s"], keep_stderr=True)
    run.run("show orphans, default rules ignored", base + ["-n", "-i", "-s"], keep_stderr=True)
    # Not -t (tasks): debfoster 2.7 crashes with it on Boehm too.
    run.run(
        "show orphans, suggests instead of recommends",
        base + ["-n", "-o", "UseSuggests=yes", "-o", "UseRecommends=no", "-s"],
        keep_stderr=True,
    )
    run.run("create keeper file (-q -m)", base + ["-q", "-m"], keep_stderr=True)
    keepers = run.data / "keepers"
    run.note("=== keeper file\n" + (keepers.read_text() if keepers.exists() else "[none]\n"))
    run.run("show keepers", base + ["-a"], keep_stderr=True)
    picks = [names[i] for i in (0, 17, n // 3, n // 2, n - 5)]
    for name in picks:
        run.run(f"show depends {name}", base + ["-d", name], keep_stderr=True)
        # In the order of debfoster's own structures, which follows their
        # addresses: on Boehm it changes with GC_INITIAL_HEAP_SIZE.
        run.run(f"show dependents {name}", base + ["-e", name], keep_stderr=True, unordered=True)
        run.run(f"show related {name}", base + ["-r", name], keep_stderr=True)
    # No -p (show providers): which providers debfoster 2.7 lists for a
    # virtual package in a large status file changes from run to run on
    # Boehm itself, with the addresses (it is stable with ASLR off).
    # Marking removals edits only the keeper file (-m).
    run.run(
        "mark removals (-m)",
        base + ["-m", "-q", "-v"] + [p + "-" for p in picks[2:]],
        keep_stderr=True,
    )
    run.note("=== keeper file after removals\n" + keepers.read_text())
    run.run("show orphans with the keeper file", base + ["-s"], keep_stderr=True)


# w3m -----------------------------------------------------------------------


def make_html(sections):
    out = [
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">',
        "<title>Collector test page</title></head><body>\n",
        "<h1>A page for w3m &amp; the collector</h1>\n",
    ]
    for s in range(sections):
        rng = Lcg(s + 1000)
        w = functools.partial(rng.pick, WORDS)  # a random word
        out.append(f'<h2 id="s{s}">Section {s}: {w()} {w()}</h2>\n<p>')
        for k in range(12):
            out.append(
                f'{w()} <a href="http://example.org/{s}/{k}">{w()} link {k}</a> '
                f"<b>{w()}</b> <i>{w()}</i> &lt;{k}&gt; caf&eacute; &#x263A; "
                f"na\u00efve \u00fcber \u65e5\u672c "
            )
        out.append('</p>\n<table border="1" cellpadding="2">\n<tr>')
        cols = 4 + s % 4
        out.append("".join(f"<th>{w()} {c}</th>" for c in range(cols)) + "</tr>\n")
        for r in range(10 + s % 7):
            out.append("<tr>")
            c = 0
            while c < cols:
                if r % 4 == 0 and c == 0:
                    out.append(f'<td rowspan="2">{w()} r{r}</td>')
                elif r % 4 == 1 and c == 0:
                    c += 1
                    continue
                elif r == 3 and c == 1:
                    out.append(f'<td colspan="2">{w()} spans two</td>')
                    c += 1
                elif r == 5 and c == 2:
                    out.append(
                        '<td><table border="1"><tr><td>in</td><td>ner</td></tr>'
                        f'<tr><td colspan="2">{w()}</td></tr></table></td>'
                    )
                else:
                    out.append(f"<td>{rng.below(100000)} {w()}</td>")
                c += 1
            out.append("</tr>\n")
        out.append("</table>\n")

        def nested(depth):
            tag = "ul" if depth % 2 == 0 else "ol"
            parts = [f"<{tag}>"]
            for item in range(3):
                parts.append(f"<li>{w()} item {depth}.{item}")
                if depth < 3:
                    parts.append(nested(depth + 1))
                parts.append("</li>")
            parts.append(f"</{tag}>")
            return "".join(parts)

        out.append(nested(0) + "\n")
        out.append(
            "<dl>" + "".join(f"<dt>{w()}</dt><dd>{w()} {w()}</dd>" for _ in range(4)) + "</dl>\n"
        )
        out.append(f"<pre>  code {s}\n    indented {w()}\n\ttab {w()}</pre>\n")
        out.append(f"<blockquote>{w()} quoted {w()}</blockquote><hr>\n")
        if s % 10 == 0:
            out.append(
                f'<form><input type="text" value="{w()}"> <select><option>{w()}'
                f'<option selected>{w()}</select> <input type="submit" value="Go">'
                "</form>\n"
            )
    out.append("</body></html>\n")
    return "".join(out)


@workload("w3m_dump", programs=("w3m",))
def w3m_dump(run):
    html = make_html(run.pick(250, 900))
    page = run.data / "page.html"
    page.write_text(html, encoding="utf-8")
    common = ["w3m", "-dump", "-T", "text/html", "-I", "UTF-8", "-O", "UTF-8"]
    run.run(
        f"w3m -dump -cols 100, links numbered ({len(html.encode()) // 1024} KiB)",
        common + ["-cols", "100", "-o", "display_link_number=1", "page.html"],
    )
    run.run("w3m -dump -cols 60 from standard input", common + ["-cols", "60"], stdin=page)


# ECL -----------------------------------------------------------------------


def ecl(run, script, label=None, extra=""):
    """Runs ecl/<script> with *scale* (and *work*, a private directory) defined.

    A Lisp error prints a line on standard error and exits 70, instead of
    ECL's debugger waiting on standard input.
    """
    work = run.data / "ecl-work"
    work.mkdir(exist_ok=True)
    setup = (
        f"(progn (defparameter cl-user::*scale* :{run.scale})"
        f' (defparameter cl-user::*work* #p"{work}/") {extra})'
    )
    body = (
        "(handler-bind ((serious-condition (lambda (c)"
        ' (format *error-output* "~&workload error: ~A~%" c)'
        " (finish-output *error-output*) (ext:quit 70))))"
        f' (load "{ECL_DIR / script}" :verbose nil :print nil))'
    )
    run.run(
        label or f"ecl {script}",
        [
            "ecl",
            "--norc",
            "--eval",
            setup,
            "--eval",
            body,
            "--eval",
            "(progn (finish-output) (ext:quit 0))",
        ],
    )


@workload("ecl_binary_trees", programs=("ecl",), timeout=180)
def ecl_binary_trees(run):
    ecl(run, "binary_trees.lisp")


@workload("ecl_threads", programs=("ecl",), threaded=True)
def ecl_threads(run):
    ecl(run, "threads.lisp")


@workload("ecl_weak", programs=("ecl",))
def ecl_weak(run):
    ecl(run, "weak.lisp")


@workload("ecl_finalizers", programs=("ecl",), threaded=True)
def ecl_finalizers(run):
    ecl(run, "finalizers.lisp")


@workload("ecl_heap_limit", programs=("ecl",))
def ecl_heap_limit(run):
    ecl(run, "heap_limit.lisp")


@workload("ecl_compiler", programs=("ecl", "gcc"), timeout=180)
def ecl_compiler(run):
    ecl(run, "compiler.lisp")


# Guile ---------------------------------------------------------------------


def guile(run, label, script, *args, extra=(), keep_stderr=False, expect=(0,)):
    """Runs guile/<script> after guile/common.scm, with the scale as its first argument.

    The scripts print fixed facts on standard output and the counts that
    may differ between collectors on standard error, which is not compared
    unless keep_stderr. GUILE_AUTO_COMPILE=0 (set by guile_env) makes the
    evaluator run them, and no ~/.cache compilation differs between runs.
    """
    run.run(
        label or f"guile {script}",
        ["guile", *extra, "-l", str(GUILE_DIR / "common.scm"), "-s", str(GUILE_DIR / script)]
        + [run.scale, *args],
        keep_stderr=keep_stderr,
        expect=expect,
    )


def guile_env(run):
    run.env["GUILE_AUTO_COMPILE"] = "0"


def make_repl_input(count):
    """Expressions for the REPL: definitions, calls, and values it prints."""
    lines = []
    for i in range(count):
        rng = Lcg(i + 5000)
        kind = i % 6
        if kind == 0:
            lines.append(f"(define (f{i} x) (+ (* x {rng.below(100)}) {i}))")
        elif kind == 1:
            lines.append(f"(f{i - 1} {rng.below(1000)})")
        elif kind == 2:
            words = " ".join(f'"{rng.pick(WORDS)}"' for _ in range(1 + rng.below(6)))
            lines.append(f"(string-join (list {words}) \"-\")")
        elif kind == 3:
            lines.append(f"(let loop ((k 0) (acc '())) (if (= k {rng.below(2000)}) (length acc)"
                         f" (loop (+ k 1) (cons (make-vector 3 k) acc))))")
        elif kind == 4:
            numbers = " ".join(str(rng.below(99)) for _ in range(5))
            lines.append(f"(list->vector (map (lambda (x) (* x x)) '({numbers})))")
        else:
            lines.append(f"(expt {2 + rng.below(7)} {50 + rng.below(200)})")
    return "\n".join(lines) + "\n(exit)\n"


@workload("guile_repl", programs=("guile",))
def guile_repl(run):
    guile_env(run)
    command = (GUILE_DIR / "command_line.scm").read_text()
    run.run("guile -c (command_line.scm) one 'two words'", ["guile", "-c", command, "one", "two words"])
    run.run("guile -c '(exit 3)'", ["guile", "-c", "(exit 3)"], expect=(3,))
    # Its backtrace on standard error prints addresses: not compared.
    run.run("guile -c '(car 1)'", ["guile", "-c", "(car 1)"], expect=(1,))
    run.run(
        "guile -q < repl_input.scm",
        ["guile", "-q"],
        stdin=GUILE_DIR / "repl_input.scm",
        keep_stderr=True,
        expect=(5,),
    )
    generated = run.data / "repl-generated.scm"
    # Each expression the REPL compiles registers root sets with the
    # collector; the system's Boehm aborts past 2048 of them ("Too many root
    # sets", at about 1,900 expressions). mallocgc has no such limit, but
    # the bench compares the two, so bench stays under it.
    count = run.pick(200, 1500)
    generated.write_text(make_repl_input(count))
    run.run(f"guile -q < {count} generated expressions", ["guile", "-q"], stdin=generated, keep_stderr=True)


# Debian's modules for guile_compile, compiled by compile-file at the default
# level (-O2), by guild's compile script at -O1 (into ~/.cache, private),
# and one at -O0; bench compiles more and larger ones.
GUILE_COMPILE_O2 = ("srfi/srfi-26.scm", "ice-9/string-fun.scm", "ice-9/common-list.scm", "ice-9/streams.scm")
GUILE_COMPILE_O2_BENCH = ("ice-9/vlist.scm", "srfi/srfi-43.scm", "srfi/srfi-69.scm", "srfi/srfi-19.scm")
GUILE_COMPILE_O1 = ("srfi/srfi-2.scm", "ice-9/receive.scm", "ice-9/and-let-star.scm", "srfi/srfi-31.scm",
                    "ice-9/hash-table.scm")
GUILE_COMPILE_O1_BENCH = ("ice-9/format.scm", "srfi/srfi-60.scm", "srfi/srfi-41.scm", "ice-9/calling.scm")
GUILE_COMPILE_O0 = "ice-9/pretty-print.scm"
GUILD_COMPILE = "(apply (module-ref (resolve-module '(scripts compile)) 'main) (cdr (command-line)))"


@workload("guile_compile", programs=("guile",))
def guile_compile(run):
    # GUILE_AUTO_COMPILE=0 except for the last step, which is about
    # auto-compilation (into the private HOME).
    guile_env(run)
    share = Path("/usr/share/guile/3.0")
    o2 = GUILE_COMPILE_O2 + run.pick((), GUILE_COMPILE_O2_BENCH)
    o1 = GUILE_COMPILE_O1 + run.pick((), GUILE_COMPILE_O1_BENCH)
    # Our own module, on the load path through -L, so that its .go records
    # its name as mgc/compiled.scm, not a path under $WORK.
    src = run.data / "src" / "mgc"
    src.mkdir(parents=True)
    shutil.copyfile(GUILE_DIR / "compiled_module.scm", src / "compiled.scm")
    go = run.data / "go"
    go.mkdir()
    guile(run, "compile-file (default -O2)", "compile.scm", "go", *o2, "mgc/compiled.scm",
          extra=("-L", "src"), keep_stderr=True)
    run.run(
        "guild compile -O1 (into ~/.cache)",
        ["guile", "-c", GUILD_COMPILE, "-O1"] + [str(share / n) for n in o1],
        keep_stderr=True,
    )
    target = go / (GUILE_COMPILE_O0[:-4] + ".go")
    run.run(
        "guild compile -O0 -o",
        ["guile", "-c", GUILD_COMPILE, "-O0", "-o", str(target.relative_to(run.data)),
         str(share / GUILE_COMPILE_O0)],
        keep_stderr=True,
    )
    note_go_files(run, "compiled")
    # Not the -O1 ones: Guile would take Debian's .go before the ones in
    # ~/.cache (its fallback path).
    modules = [(n[:-4].replace("/", " "), f"go/{n[:-4]}.go") for n in o2 + ("mgc/compiled.scm", GUILE_COMPILE_O0)]
    args = [a for m in modules for a in m]
    guile(run, "load the compiled modules", "compiled_use.scm", *args, extra=("-L", "src", "-C", "go"),
          keep_stderr=True)
    # Auto-compilation of the scripts themselves, into ~/.cache.
    del run.env["GUILE_AUTO_COMPILE"]
    guile(run, "the same with auto-compilation", "compiled_use.scm", *args,
          extra=("-L", "src", "-C", "go"), keep_stderr=True)
    note_go_files(run, "auto-compiled")


GUILE_CCACHE = Path("/usr/lib/x86_64-linux-gnu/guile/3.0/ccache")


def note_go_files(run, label):
    """The sha256 and size of every .go file written so far, sorted by name.

    For those in $WORK/data/go also whether Debian ships the same bytes
    (its build compiled them at the default level too): a fact about the
    compiler's output that does not depend on this run.
    """
    lines = []
    for path in sorted(run.data.rglob("*.go")) + sorted(run.home.rglob("*.go")):
        data = path.read_bytes()
        line = f"{hashlib.sha256(data).hexdigest()}  {len(data):7d}  {path}"
        if path.is_relative_to(run.data / "go"):
            debian = GUILE_CCACHE / path.relative_to(run.data / "go")
            if debian.exists():
                same = debian.read_bytes() == data
                line += "  (same as Debian's)" if same else "  (not Debian's bytes)"
        lines.append(line + "\n")
    run.note(f"=== sha256 of the .go files ({label})\n" + run.filter("".join(lines).encode()).decode())


@workload("guile_binary_trees", programs=("guile",))
def guile_binary_trees(run):
    guile_env(run)
    guile(run, None, "binary_trees.scm")


@workload("guile_symbols_strings", programs=("guile",))
def guile_symbols_strings(run):
    guile_env(run)
    guile(run, None, "symbols_strings.scm")


@workload("guile_hash_tables", programs=("guile",))
def guile_hash_tables(run):
    guile_env(run)
    guile(run, None, "hash_tables.scm")


@workload("guile_vectors", programs=("guile",))
def guile_vectors(run):
    guile_env(run)
    guile(run, None, "vectors.scm")


@workload("guile_bignums", programs=("guile",))
def guile_bignums(run):
    guile_env(run)
    guile(run, None, "bignums.scm")


@workload("guile_guardians", programs=("guile",))
def guile_guardians(run):
    guile_env(run)
    guile(run, None, "guardians.scm")


@workload("guile_weak", programs=("guile",))
def guile_weak(run):
    guile_env(run)
    guile(run, None, "weak.scm")


@workload(
    "guile_threads",
    programs=("guile",),
    threaded=True,
    known_bug="guile 3.0.8's own races (VM stack moved under GC_call_with_alloc_lock, a mutex wake-up lost) crash or hang it now and then under load, on the system Boehm too",
)
def guile_threads(run):
    guile_env(run)
    guile(run, None, "threads.scm")


# --- running and comparing --------------------------------------------------------


def work_base():
    """Where the private directories go: tmpfs when there is one.

    The workloads make and delete tens of thousands of files; on a disk
    that costs more than the programs' own work. ECL dlopens what it
    compiles there, so a noexec mount will not do.
    """
    shm = "/dev/shm"
    try:
        st = os.statvfs(shm)
        if os.access(shm, os.W_OK | os.X_OK) and not st.f_flag & os.ST_NOEXEC:
            return shm
    except OSError:
        pass
    return None


def run_once(wl, scale, ours_dir, timeout):
    root = Path(tempfile.mkdtemp(prefix=f"mgc-{wl.name}-", dir=work_base())).resolve()
    try:
        run = Run(root, scale, ours_dir, time.monotonic() + timeout)
        try:
            wl.func(run)
        except RunFailed as e:
            run.problems.append(str(e))
        return run.result()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def describe(which, result):
    lines = [f"{which}: {p}" for p in result.problems]
    if result.problems and result.stderr_tail.strip():
        lines.append(f"{which}: standard error of the last step (end):")
        lines.append(result.stderr_tail.rstrip())
    return "\n".join(lines)


def compare(wl, reference, ours, label="ours", save=None):
    """Prints what differs; True when ours matches the reference."""
    if save:
        save.mkdir(parents=True, exist_ok=True)
        (save / f"{wl.name}.system.txt").write_bytes(reference.transcript)
        (save / f"{wl.name}.ours.txt").write_bytes(ours.transcript)
    ok = True
    if ours.problems:
        print(describe(label, ours), file=sys.stderr)
        ok = False
    if ours.transcript != reference.transcript:
        ok = False
        diff = difflib.unified_diff(
            reference.transcript.decode(errors="replace").splitlines(keepends=True),
            ours.transcript.decode(errors="replace").splitlines(keepends=True),
            fromfile=f"{wl.name} (system Boehm)",
            tofile=f"{wl.name} ({label})",
        )
        text = "".join(diff)
        if len(text) > 20000:
            text = text[:20000] + "\n[diff cut at 20000 characters]\n"
        print(f"{wl.name}: {label} differs from the system library:", file=sys.stderr)
        sys.stderr.write(text)
    return ok


def reference_ok(wl, reference):
    if reference.problems:
        print(
            f"{wl.name}: the run on the system library went wrong, the workload is broken"
            " or the system is:",
            file=sys.stderr,
        )
        print(describe("system", reference), file=sys.stderr)
        return False
    return True


def check_programs(wl):
    missing = [p for p in wl.programs if shutil.which(p, path=CLIENT_PATH) is None]
    if missing:
        raise Skip(f"{wl.name}: skipped, not installed: {', '.join(missing)}")


def main():
    parser = argparse.ArgumentParser(
        description="Run a Debian program on the system's libgc.so.1 and on ours, and compare."
    )
    parser.add_argument("--list", action="store_true", help="print the workloads' names")
    parser.add_argument(
        "--threaded", action="store_true", help="with --list: only the threaded workloads"
    )
    parser.add_argument(
        "--known-bugs",
        action="store_true",
        help="with --list: only the workloads that show a known bug (and only those)",
    )
    parser.add_argument("--workload", help="the workload to run")
    parser.add_argument("--ours", help="the directory holding our libgc.so.1")
    parser.add_argument("--scale", choices=("test", "bench"), default="test")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run ours N times against one run of the system library",
    )
    parser.add_argument(
        "--bench", action="store_true", help="time both libraries alternately and print a JSON line"
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=5,
        metavar="K",
        help="with --bench: runs of each library (default 5)",
    )
    parser.add_argument(
        "--timeout", type=float, help="seconds allowed for one run (default: the workload's own)"
    )
    parser.add_argument(
        "--save", metavar="DIR", help="write the transcripts to DIR/<workload>.<system|ours>.txt"
    )
    args = parser.parse_args()
    # Progress on stdout and problems on stderr stay in order in a log.
    sys.stdout.reconfigure(line_buffering=True)

    if args.list:
        for wl in WORKLOADS.values():
            if (wl.threaded or not args.threaded) and bool(wl.known_bug) == args.known_bugs:
                print(wl.name)
        return 0
    if not args.workload or not args.ours:
        parser.error("--workload and --ours are required (or --list)")
    wl = WORKLOADS.get(args.workload)
    if wl is None:
        parser.error(f"unknown workload {args.workload!r}; --list shows them")
    if args.repeat < 1 or args.runs < 1:
        parser.error("--repeat and --runs take a positive count")
    ours_dir = Path(os.path.abspath(args.ours))
    if not (ours_dir / LIBGC).exists():
        print(f"{wl.name}: no {LIBGC} in {ours_dir}", file=sys.stderr)
        return 1
    try:
        check_programs(wl)
    except Skip as e:
        print(e)
        return EXIT_SKIP
    timeout = args.timeout or (wl.timeout if args.scale == "test" else 10 * wl.timeout)

    if args.bench:
        return bench(wl, args.scale, ours_dir, args.runs, timeout)

    save = Path(args.save) if args.save else None
    started = time.monotonic()
    reference = run_once(wl, args.scale, None, timeout)
    if not reference_ok(wl, reference):
        return 1
    print(
        f"{wl.name}: system library {reference.wall:.2f} s, "
        f"{reference.maxrss_kib} KiB peak, {len(reference.transcript)} bytes of output"
    )
    for i in range(args.repeat):
        ours = run_once(wl, args.scale, ours_dir, timeout)
        label = "ours" if args.repeat == 1 else f"ours (run {i + 1} of {args.repeat})"
        if not compare(wl, reference, ours, label, save):
            return 1
        print(f"{wl.name}: {label} matches, {ours.wall:.2f} s, {ours.maxrss_kib} KiB peak")
    print(f"{wl.name}: passed in {time.monotonic() - started:.1f} s")
    return 0


def bench(wl, scale, ours_dir, runs, timeout):
    results = {"system": [], "ours": []}
    reference = None
    ok = True
    for i in range(runs):
        # Alternate, so that drift of the machine touches both alike.
        for which, libdir in (("system", None), ("ours", ours_dir)):
            r = run_once(wl, scale, libdir, timeout)
            if which == "system":
                if not reference_ok(wl, r):
                    return 1
                reference = reference or r
            elif not compare(wl, reference, r):
                ok = False
            results[which].append(r)
    report = {"workload": wl.name, "scale": scale, "runs": runs, "match": ok}
    for which, rs in results.items():
        report[which] = {
            "wall_s_median": round(statistics.median(r.wall for r in rs), 3),
            "maxrss_kib_median": int(statistics.median(r.maxrss_kib for r in rs)),
        }
    print(json.dumps(report, sort_keys=True))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
