#!/usr/bin/env python3
"""Instructions per request from two callgrind profiles of the same server
(bench/run --callgrind): one after N1 requests, one after N2; startup and
shutdown cancel out in the difference.

    cgdiff.py [--top K] NAME:FILE1:FILE2:N1:N2 ...
Prints Ir/request per NAME (and the ratio to the first NAME), then the K
functions with the most Ir/request for every NAME but the first."""

import argparse
import collections
import re
import subprocess


def profile(path):
    out = subprocess.run(["callgrind_annotate", "--threshold=100", path],
                         capture_output=True, text=True).stdout
    total = 0
    funcs = collections.Counter()
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([\s\d.]+%\)\s+(.*)$", line)
        if not m:
            continue
        n = int(m.group(1).replace(",", ""))
        name = m.group(2)
        if "PROGRAM TOTALS" in name:
            total = n
            continue
        obj = re.search(r"\[([^\]]*)\]\s*$", name)
        name = re.sub(r"\s*\[[^\]]*\]\s*$", "", name)
        name = re.sub(r"^.*:(?=[A-Za-z_][A-Za-z_0-9.]*$)", "", name)
        if obj:
            name += " (" + obj.group(1).rsplit("/", 1)[-1] + ")"
        funcs[name] += n
    return total, funcs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("runs", nargs="+")
    a = ap.parse_args()

    rows = []
    for spec in a.runs:
        name, f1, f2, n1, n2 = spec.split(":")
        n = int(n2) - int(n1)
        t1, p1 = profile(f1)
        t2, p2 = profile(f2)
        per = {k: (p2[k] - p1.get(k, 0)) / n for k in p2}
        rows.append((name, (t2 - t1) / n, per))

    base = rows[0][1]
    print("   %-8s %12s %8s" % ("server", "Ir/request", "x first"))
    for name, ir, _ in rows:
        print("   %-8s %12.0f %8.2f" % (name, ir, ir / base))
    for name, ir, per in rows[1:]:
        print()
        print("   %s: top functions, Ir/request (exclusive)" % name)
        for k, v in sorted(per.items(), key=lambda x: -x[1])[:a.top]:
            print("   %8.0f  %5.1f%%  %s" % (v, 100.0 * v / ir, k[:100]))


if __name__ == "__main__":
    main()
