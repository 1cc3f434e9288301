#!/usr/bin/env python3
"""Validate a collector trace written by mallocgc (MALLOCGC_TRACE, mgc::write_trace).

Checks that the file is JSON in Chrome's trace-event object format, that
every event is well formed, that complete events nest properly on each
thread, that stops of the world lie inside cycles and the phases of a stop
inside it, that mark workers ran inside a stop, and whatever the options
require (cycles, mark workers on several threads, sweep or scavenge events,
dropped events). Exits 1 with one line per problem, 0 when all is well.
"""
import argparse
import collections
import json
import sys

EPS = 0.002  # microseconds: timestamps are printed with three decimals


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--min-cycles", type=int, default=0)
    ap.add_argument("--min-worker-tids", type=int, default=0,
                    help="mark worker events on at least this many threads")
    ap.add_argument("--require-sweep", action="store_true")
    ap.add_argument("--require-scavenge", action="store_true")
    ap.add_argument("--require-dropped", action="store_true")
    ap.add_argument("--max-events", type=int, default=0)
    args = ap.parse_args()

    problems = []

    def bad(msg):
        problems.append(msg)

    with open(args.trace) as f:
        doc = json.load(f)
    if not isinstance(doc, dict) or not isinstance(doc.get("traceEvents"), list):
        print("not a trace-event object: no traceEvents list")
        return 1
    events = doc["traceEvents"]
    complete = []
    names = {}
    for e in events:
        ph = e.get("ph")
        if not isinstance(e.get("pid"), int) or not isinstance(e.get("tid"), int):
            bad("event without integer pid/tid: %r" % e)
            continue
        if ph == "M":
            if e.get("name") == "thread_name":
                names[e["tid"]] = e["args"]["name"]
            continue
        if not isinstance(e.get("name"), str) or not isinstance(e.get("ts"), (int, float)):
            bad("event without name or ts: %r" % e)
            continue
        if ph == "X":
            if not isinstance(e.get("dur"), (int, float)) or e["dur"] < 0:
                bad("complete event without a duration: %r" % e)
                continue
            complete.append(e)
        elif ph == "C":
            if not isinstance(e.get("args"), dict) or not e["args"]:
                bad("counter without values: %r" % e)
        else:
            bad("unexpected phase %r" % ph)

    def end(e):
        return e["ts"] + e["dur"]

    def inside(inner, outer):
        return inner["ts"] >= outer["ts"] - EPS and end(inner) <= end(outer) + EPS

    by_name = collections.defaultdict(list)
    by_tid = collections.defaultdict(list)
    for e in complete:
        by_name[e["name"]].append(e)
        by_tid[e["tid"]].append(e)

    # Proper nesting per thread: sorted by start (longest first on ties),
    # each event either lies inside the innermost open one or starts after
    # it ends.
    for tid, evs in by_tid.items():
        evs = sorted(evs, key=lambda e: (e["ts"], -e["dur"]))
        stack = []
        for e in evs:
            while stack and not inside(e, stack[-1]):
                if e["ts"] < end(stack[-1]) - EPS:
                    bad("tid %d: %s at %.3f+%.3f overlaps %s at %.3f+%.3f without nesting" %
                        (tid, e["name"], e["ts"], e["dur"], stack[-1]["name"], stack[-1]["ts"], stack[-1]["dur"]))
                    break
                stack.pop()
            stack.append(e)
        if tid not in names:
            bad("tid %d has events but no thread_name" % tid)

    cycles = by_name["GC cycle"]
    stops = by_name["stop the world"]
    if len(cycles) < args.min_cycles:
        bad("%d cycles, expected at least %d" % (len(cycles), args.min_cycles))
    if cycles and not stops:
        bad("cycles but no stop of the world")
    for s in stops:
        if not any(c["tid"] == s["tid"] and inside(s, c) for c in cycles):
            bad("stop of the world at %.3f is inside no cycle of its thread" % s["ts"])
    for c in cycles:
        if not any(s["tid"] == c["tid"] and inside(s, c) for s in stops):
            bad("cycle at %.3f has no stop of the world" % c["ts"])
    for phase in ("stop threads", "start threads", "mark", "mark roots", "checkmark", "mark: termination"):
        for p in by_name[phase]:
            if not any(s["tid"] == p["tid"] and inside(p, s) for s in stops):
                bad("%s at %.3f is inside no stop of the world of its thread" % (phase, p["ts"]))
    # Mostly-concurrent cycles: the mark between the two stops runs inside
    # "mark: concurrent" on the collecting thread (its rounds of written
    # pages too), its helpers at the same time on theirs.
    concurrent = by_name["mark: concurrent"]
    for c in concurrent:
        if not any(k["tid"] == c["tid"] and inside(c, k) for k in cycles):
            bad("concurrent mark at %.3f is inside no cycle of its thread" % c["ts"])
        if any(s["tid"] == c["tid"] and inside(c, s) for s in stops):
            bad("concurrent mark at %.3f runs inside a stop of the world" % c["ts"])
    for r in by_name["mark: written pages"]:
        if not any(c["tid"] == r["tid"] and inside(r, c) for c in concurrent):
            bad("round of written pages at %.3f is inside no concurrent mark of its thread" % r["ts"])
    workers = by_name["mark worker"]
    for w in workers:
        if not any(inside(w, s) for s in stops) and not any(inside(w, c) for c in concurrent):
            bad("mark worker on tid %d at %.3f ran outside every stop of the world and concurrent mark" %
                (w["tid"], w["ts"]))
    worker_tids = {w["tid"] for w in workers}
    if len(worker_tids) < args.min_worker_tids:
        bad("mark workers on %d threads, expected at least %d" % (len(worker_tids), args.min_worker_tids))
    if cycles and not workers:
        bad("cycles but no mark worker event")
    sweeps = [e for e in complete if "sweep" in e.get("cat", "").split(",")]
    if args.require_sweep and not sweeps:
        bad("no sweep event")
    scavenges = [e for e in complete if "scavenge" in e.get("cat", "").split(",")]
    if args.require_scavenge and not scavenges:
        bad("no scavenge event")
    other = doc.get("otherData", {})
    if args.require_dropped and not other.get("events_dropped"):
        bad("no events dropped: %r" % other)
    if args.max_events and len(events) > args.max_events:
        bad("%d events, expected at most %d" % (len(events), args.max_events))

    for p in problems[:50]:
        print(p)
    print("%s: %d events, %d cycles, %d stops, mark workers on %d threads, %d sweep and %d scavenge events, "
          "%s dropped" % (args.trace, len(events), len(cycles), len(stops), len(worker_tids), len(sweeps),
                          len(scavenges), other.get("events_dropped")))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
