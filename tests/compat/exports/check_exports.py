#!/usr/bin/env python3
"""Compare the dynamic symbols libgc.so.1 exports with Boehm GC 8.2's.

libgc-8.2-exports.tsv beside this file lists every GC_ symbol Debian's
libgc.so.1 (Boehm GC 8.2.2) exports, with its kind (func or data), whether
a public header declares it and which Debian programs import it. The
library under test must export exactly those symbols, each of the same
kind (a program compiled against Boehm's headers reads a data symbol as a
variable), and nothing else of its own: the core's C++ symbols stay inside.

It must also need no shared library that Boehm's does not (libc.so.6 and
the dynamic loader, read with --objdump): a program that does not load
libm or libstdc++ itself would map them for the collector, about 0.5 MiB
(libm) and 1.3 MiB (libstdc++) of resident memory Boehm's library does
not cost.

Usage: check_exports.py --nm NM [--objdump OBJDUMP] LIBRARY
Exit status 0 when they match; otherwise every difference is printed.
"""
import argparse
import os
import subprocess
import sys

# nm's type letters of defined dynamic symbols, by Boehm's two kinds.
KIND_OF_TYPE = {"T": "func", "W": "func", "i": "func",
                "D": "data", "B": "data", "R": "data", "V": "data", "u": "data"}


def expected_symbols(tsv):
    symbols = {}
    with open(tsv, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header[:2] != ["symbol", "kind"]:
            sys.exit(f"{tsv}: unexpected header {header}")
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) >= 2:
                symbols[fields[0]] = fields[1]
    return symbols


def exported_symbols(nm, library):
    out = subprocess.run([nm, "-D", "--defined-only", library], check=True,
                         capture_output=True, text=True).stdout
    symbols = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        _, letter, name = parts
        symbols[name] = KIND_OF_TYPE.get(letter, f"unknown type {letter}")
    return symbols


# What Debian's libgc.so.1 (Boehm GC 8.2.2) needs.
BOEHM_NEEDED = {"libc.so.6", "ld-linux-x86-64.so.2"}
# The sanitizers' runtimes, which a sanitizer build of the library needs
# by construction (the asan preset), as would Boehm's built the same way.
SANITIZER_RUNTIMES = ("libasan.so", "libubsan.so", "libtsan.so", "liblsan.so")
# What only a ThreadSanitizer build needs as well: libgcc's unwinder, shared
# (see the library's link options in CMakeLists.txt).
TSAN_ALSO = ("libgcc_s.so",)


def needed_libraries(objdump, library):
    out = subprocess.run([objdump, "-p", library], check=True, capture_output=True, text=True).stdout
    return {line.split()[1] for line in out.splitlines() if line.split()[:1] == ["NEEDED"]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--nm", default="nm")
    parser.add_argument("--objdump", default="")
    parser.add_argument("library")
    args = parser.parse_args()
    tsv = os.path.join(os.path.dirname(os.path.abspath(__file__)), "libgc-8.2-exports.tsv")
    want = expected_symbols(tsv)
    have = exported_symbols(args.nm, args.library)
    problems = []
    for name in sorted(want):
        if name not in have:
            problems.append(f"missing: {name} ({want[name]})")
        elif have[name] != want[name]:
            problems.append(f"wrong kind: {name} is {have[name]}, Boehm's is {want[name]}")
    for name in sorted(have):
        if name not in want:
            problems.append(f"exported but not Boehm's: {name} ({have[name]})")
    if args.objdump:
        for lib in sorted(needed_libraries(args.objdump, args.library) - BOEHM_NEEDED):
            tsan = any(n.startswith("libtsan.so") for n in needed_libraries(args.objdump, args.library))
            if not lib.startswith(SANITIZER_RUNTIMES) and not (tsan and lib.startswith(TSAN_ALSO)):
                problems.append(f"needs {lib}, which Boehm's libgc.so.1 does not")
    functions = sum(1 for k in want.values() if k == "func")
    print(f"{len(want)} symbols expected ({functions} functions, {len(want) - functions} data), "
          f"{len(have)} exported by {args.library}")
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} difference(s)")
        return 1
    print("the exported symbol set and kinds match Boehm GC 8.2.2's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
