#!/usr/bin/env python3
"""Run a program under valgrind's memcheck and check its verdict.

check_memcheck.py --expect clean PROGRAM ARGS...   no error reported, exit 0
check_memcheck.py --expect error PROGRAM ARGS...   an invalid read of a freed
                                                   block is reported

Exits 77 (CTest's skip code here) with a message when valgrind is missing.
"""
import argparse
import re
import shutil
import subprocess
import sys

ERROR_EXIT = 99


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--expect", choices=["clean", "error"], required=True)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("memcheck test skipped: valgrind is not installed (Debian: apt-get install valgrind)")
        return 77
    cmd = [valgrind, "--tool=memcheck", "--error-exitcode=%d" % ERROR_EXIT, "--track-origins=no"] + args.command
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    out = r.stdout
    m = re.search(r"ERROR SUMMARY: (\d+) errors", out)
    errors = int(m.group(1)) if m else -1
    if args.expect == "clean":
        if r.returncode != 0 or errors != 0:
            print(out[-20000:])
            print("FAILED: expected a clean run, got exit %d and %d errors" % (r.returncode, errors))
            return 1
        print("clean run: 0 errors")
        return 0
    if r.returncode != ERROR_EXIT or errors < 1 or "Invalid read" not in out or "free'd" not in out:
        print(out[-20000:])
        print("FAILED: expected an invalid read of a freed block, got exit %d and %d errors" % (r.returncode, errors))
        return 1
    print("reported: %d errors, an invalid read of a freed block" % errors)
    return 0


if __name__ == "__main__":
    sys.exit(main())
