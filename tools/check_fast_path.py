#!/usr/bin/env python3
"""Check the inline allocation fast path in the disassembly of probe functions.

Usage:
  check_fast_path.py [--objdump PATH] [--budget NAME=N ...] [--show NAME ...] OBJECT.o

OBJECT.o is tests/fast_path/fast_path_probe.cpp compiled at -O2 and never
linked. Each extern "C" function probe_* in it is one fast path of the public
header. For each probe, its code and its compiler-split cold part
(probe_*.cold) must contain:

  - no instruction with a lock prefix, no mfence/lfence/sfence, no xchg with
    a memory operand (an implicit lock), no syscall;
  - no call or jump that leaves the probe, except to the slow paths
    mgc::internal::alloc_slow, alloc_tiny_slow and alloc_typed_slow.

It prints, per probe, the instructions from the entry to the first ret in
address order (the path that succeeds: the slow paths are out of line and
cold) and the total. --budget NAME=N fails when probe NAME needs more than
N instructions to its first ret. --show NAME prints NAME's listing.

The object is read with `objdump -d -r -C`: calls in an unlinked object have
no resolved target, so their relocations name the callee.
"""

import argparse
import re
import subprocess
import sys

ALLOWED_CALLEES = re.compile(r"^mgc::internal::(alloc_slow|alloc_tiny_slow|alloc_typed_slow)\(")
FENCES = {"mfence", "lfence", "sfence"}
SYSCALLS = {"syscall", "sysenter", "int", "int3"}
PREFIXES = {"lock", "rep", "repz", "repnz", "repe", "repne", "bnd", "notrack", "data16", "cs", "ds", "xacquire",
            "xrelease"}

SECTION_RE = re.compile(r"^Disassembly of section (\S+):$")
FUNC_RE = re.compile(r"^([0-9a-f]+) <(.+)>:$")
INSN_RE = re.compile(r"^\s*([0-9a-f]+):\t(.*)$")
RELOC_RE = re.compile(r"^\s*([0-9a-f]+): (R_\S+)\t(.*)$")


class Insn:
    def __init__(self, addr, text):
        self.addr = addr
        self.text = text.split("#")[0].strip()  # drop objdump's comments
        words = self.text.split()
        self.prefixes = []
        while words and words[0] in PREFIXES:
            self.prefixes.append(words.pop(0))
        self.mnemonic = words[0] if words else ""
        self.operands = " ".join(words[1:])
        self.relocs = []  # (type, symbol) of relocations inside this instruction

    def is_branch(self):
        return self.mnemonic.startswith("j") or self.mnemonic.startswith("call")

    def is_nop(self):
        return self.mnemonic.startswith("nop") or (self.mnemonic == "xchg" and self.operands == "ax,ax")


class Function:
    def __init__(self, name, section, addr):
        self.name = name
        self.section = section
        self.addr = addr
        self.insns = []

    def code(self):
        """Instructions without the alignment padding after the last one."""
        insns = list(self.insns)
        while insns and insns[-1].is_nop():
            insns.pop()
        return insns


def disassemble(objdump, obj):
    out = subprocess.run([objdump, "-d", "-r", "-C", "--no-show-raw-insn", "-M", "intel", obj],
                         check=True, capture_output=True, text=True).stdout
    functions = []
    section = None
    current = None
    for line in out.splitlines():
        m = SECTION_RE.match(line)
        if m:
            section, current = m.group(1), None
            continue
        m = FUNC_RE.match(line)
        if m:
            current = Function(m.group(2), section, int(m.group(1), 16))
            functions.append(current)
            continue
        if current is None:
            continue
        m = RELOC_RE.match(line)
        if m:
            if current.insns:
                symbol = re.sub(r"[-+]0x[0-9a-f]+$", "", m.group(3).strip())
                current.insns[-1].relocs.append((m.group(2), symbol))
            continue
        m = INSN_RE.match(line)
        if m and m.group(2).strip():
            current.insns.append(Insn(int(m.group(1), 16), m.group(2)))
    return functions


def check_probe(name, parts):
    """Returns a list of problems of probe `name` made of `parts`."""
    problems = []
    part_names = {p.name for p in parts}
    part_sections = {p.section for p in parts}
    for part in parts:
        for insn in part.code():
            where = f"{part.name}+{insn.addr - part.addr:#x}: {insn.text}"
            if "lock" in insn.prefixes or insn.mnemonic.startswith("lock"):
                problems.append(f"lock prefix: {where}")
            if insn.mnemonic in FENCES:
                problems.append(f"fence: {where}")
            if insn.mnemonic == "xchg" and ("[" in insn.operands or "PTR" in insn.operands):
                problems.append(f"xchg with memory (implicitly locked): {where}")
            if insn.mnemonic in SYSCALLS:
                problems.append(f"system call or trap: {where}")
            if not insn.is_branch():
                continue
            if insn.relocs:
                for _, symbol in insn.relocs:
                    if symbol.startswith("."):
                        # Section-relative: a jump into this object's own code,
                        # allowed only into a section that holds a part of
                        # this probe (its .cold part in .text.unlikely).
                        if symbol not in part_sections:
                            problems.append(f"branch into section {symbol} without a part of {name}: {where}")
                    elif not ALLOWED_CALLEES.match(symbol) and symbol not in part_names:
                        problems.append(f"call or jump to {symbol} (only the slow paths are allowed): {where}")
                continue
            m = re.search(r"<([^>+]+)(\+0x[0-9a-f]+)?>", insn.operands)
            if not m:
                problems.append(f"indirect call or jump: {where}")
            elif m.group(1) not in part_names:
                problems.append(f"call or jump to {m.group(1)} (only the slow paths are allowed): {where}")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("object", help="the probe object file")
    ap.add_argument("--objdump", default="objdump")
    ap.add_argument("--budget", action="append", default=[], metavar="NAME=N",
                    help="fail when probe NAME takes more than N instructions to its first ret")
    ap.add_argument("--show", action="append", default=[], metavar="NAME", help="print the listing of probe NAME")
    args = ap.parse_args()

    budgets = {}
    for b in args.budget:
        name, _, n = b.partition("=")
        if not n.isdigit():
            ap.error(f"--budget wants NAME=N, got {b!r}")
        budgets[name] = int(n)

    functions = disassemble(args.objdump, args.object)
    probes = sorted({f.name for f in functions if f.name.startswith("probe_") and "." not in f.name})
    if not probes:
        print(f"check_fast_path: no probe_* functions in {args.object}")
        return 1
    for name in list(budgets) + args.show:
        if name not in probes:
            print(f"check_fast_path: no function {name} in {args.object}")
            return 1
    others = [f.name for f in functions if not f.name.startswith("probe_")]
    if others:
        print("check_fast_path: note: out-of-line functions in the object: " + ", ".join(others))

    failures = 0
    print(f"{'probe':<24} {'to first ret':>12} {'total':>6} {'cold':>5}  result")
    for name in probes:
        parts = [f for f in functions if f.name == name or f.name.startswith(name + ".")]
        main_part = next(f for f in parts if f.name == name)
        code = main_part.code()
        to_ret = next((i + 1 for i, insn in enumerate(code) if insn.mnemonic.startswith("ret")), None)
        total = sum(len(p.code()) for p in parts)
        cold = total - len(code)
        problems = check_probe(name, parts)
        if to_ret is None:
            problems.append("no ret in the function's main part")
        elif name in budgets and to_ret > budgets[name]:
            problems.append(f"{to_ret} instructions to the first ret, budget {budgets[name]}")
        result = "ok" if not problems else "FAIL"
        shown = "-" if to_ret is None else str(to_ret)
        budget = f" (budget {budgets[name]})" if name in budgets else ""
        print(f"{name:<24} {shown:>12} {total:>6} {cold:>5}  {result}{budget}")
        for p in problems:
            print(f"    {p}")
        failures += bool(problems)

    for name in args.show:
        print(f"\n{name}:")
        parts = [f for f in functions if f.name == name or f.name.startswith(name + ".")]
        for part in parts:
            if part.name != name:
                print(f"  {part.name} ({part.section}):")
            for insn in part.code():
                text = insn.text
                if insn.is_branch() and insn.relocs:
                    # An unlinked object's branch shows a placeholder target:
                    # name the relocation's instead.
                    symbol = insn.relocs[0][1]
                    cold = [p.name for p in parts if p.section == symbol and p.name != name]
                    text = f"{insn.mnemonic:<6} {cold[0] if cold else symbol}"
                print(f"    {insn.addr:6x}:  {text}")

    if failures:
        print(f"\ncheck_fast_path: {failures} of {len(probes)} probes FAILED")
        return 1
    print(f"\ncheck_fast_path: all {len(probes)} probes ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
