#!/usr/bin/env python3
"""Summary tables for bench/run: all-hit throughput (wrk rounds, TSV) and
cold-key storms (storm.py JSON).  Reports, never fails on slow numbers."""

import argparse
import json
import math
import statistics


ROW_NAMES = {
    "static": "(1) static document, plain nginx",
    "edge": "(2) edge_orch all-hit, 3 fragments",
    "lua1": "(3) Lua capture_multi + shared dict",
    "pc": "(4) proxy_cache hit, 1 fragment",
}
STORM_NAMES = {
    "module": "edge_orch (3 fragments)",
    "lua": "Lua dict lock (3 fragments)",
    "proxy_cache": "proxy_cache_lock (1 fragment)",
}
FRAGMENTS = {
    "module": ["cms", "recs", "ads"],
    "lua": ["cms", "recs", "ads"],
    "proxy_cache": ["cms"],
}
BUCKETS = [(0, 2), (2, 5), (5, 10), (10, 50), (50, 250), (250, 550),
           (550, math.inf)]


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * p / 100.0
    f = int(k)
    c = min(f + 1, len(v) - 1)
    return v[f] + (v[c] - v[f]) * (k - f)


def fmt(x, nd=1):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return "%.*f" % (nd, x)


def table(headers, rows, aligns):
    w = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            w[i] = max(w[i], len(c))
    out = []
    line = "  ".join(h.ljust(w[i]) if aligns[i] == "l" else h.rjust(w[i])
                     for i, h in enumerate(headers))
    out.append(line)
    out.append("  ".join("-" * w[i] for i in range(len(headers))))
    for r in rows:
        out.append("  ".join(c.ljust(w[i]) if aligns[i] == "l"
                             else c.rjust(w[i]) for i, c in enumerate(r)))
    return "\n".join(out)


def md_table(headers, rows, aligns):
    out = ["| " + " | ".join(headers) + " |",
           "|" + "|".join(":---" if a == "l" else "---:" for a in aligns)
           + "|"]
    for r in rows:
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
    return "\n".join(out)


def load_hit(path):
    rows = {}
    with open(path) as f:
        head = f.readline().rstrip("\n").split("\t")
        for line in f:
            rec = dict(zip(head, line.rstrip("\n").split("\t")))
            rows.setdefault(rec["row"], []).append(rec)
    return rows


def hit_summary(rows, clk_tck=100):
    """Per row: the best round (highest req/s: other load on the machine
    only ever lowers throughput), the median over rounds, and the worker's
    CPU time per request (median over rounds; other load changes it little
    because it counts only the time the worker itself ran)."""
    res = {}
    for name, recs in rows.items():
        for r in recs:
            r["rps_f"] = float(r["rps"])
            reqs = float(r.get("reqs") or 0)
            if reqs > 0 and "worker_user_ticks" in r:
                tick_us = 1e6 / clk_tck
                r["us_user"] = float(r["worker_user_ticks"]) * tick_us / reqs
                r["us_sys"] = float(r["worker_sys_ticks"]) * tick_us / reqs
                r["us_req"] = r["us_user"] + r["us_sys"]
            else:
                r["us_req"] = (float(r["worker_cpu"]) * 1e4 / r["rps_f"]
                               if r["rps_f"] > 0 else float("nan"))
                r["us_user"] = r["us_sys"] = float("nan")
        best = max(recs, key=lambda r: r["rps_f"])
        res[name] = {
            "rps": best["rps_f"],
            "rps_median": statistics.median(r["rps_f"] for r in recs),
            "p50": float(best["p50_ms"]),
            "p99": float(best["p99_ms"]),
            "p99_median": statistics.median(float(r["p99_ms"])
                                            for r in recs),
            "bytes": float(best["bytes_per_resp"]),
            "us_req": statistics.median(r["us_req"] for r in recs),
            "us_user": statistics.median(r["us_user"] for r in recs),
            "us_sys": statistics.median(r["us_sys"] for r in recs),
            "wcpu": float(best["worker_cpu"]),
            "wrk": float(best["wrk_cpu"]),
            "other": float(best["other_cpu"]),
            "other_max": max(float(r["other_cpu"]) for r in recs),
            "errors": "; ".join(sorted(set(r.get("errors", "").strip()
                                           for r in recs) - {""})),
            "n": len(recs),
        }
    return res


def storm_summary(path):
    with open(path) as f:
        d = json.load(f)
    label = d["label"]
    frags = FRAGMENTS.get(label, [])
    counts = []
    bad_keys = 0
    ok = total = 0
    wake, wake_same, wake_other, lat, behind = [], [], [], [], []
    mock = []
    for k in d["keys"]:
        fk = k["fetches"]
        per = [int(fk.get(f, 0)) for f in frags]
        counts.extend(per)
        if any(c != 1 for c in per):
            bad_keys += 1
        mock.append(k["mock_ms"])
        for s in k["samples"]:
            total += 1
            if s["status"] == 200:
                ok += 1
            if s["fetcher"] or s["status"] != 200 or s["wake_ms"] is None:
                continue
            wake.append(s["wake_ms"])
            lat.append(s["lat_ms"])
            if s.get("behind_ms") is not None:
                behind.append(s["behind_ms"])
            (wake_same if s["same_worker"] else wake_other).append(
                s["wake_ms"])
    hist = []
    for lo, hi in BUCKETS:
        hist.append(sum(1 for w in wake if lo <= w < hi))
    return {
        "label": label, "keys": len(d["keys"]), "n": d["n"],
        "fetch_min": min(counts) if counts else 0,
        "fetch_max": max(counts) if counts else 0,
        "fetch_mean": statistics.mean(counts) if counts else 0,
        "bad_keys": bad_keys, "ok": ok, "total": total,
        "waiters": len(wake),
        "wake_p50": pct(wake, 50), "wake_p99": pct(wake, 99),
        "wake_max": max(wake) if wake else float("nan"),
        "same_n": len(wake_same), "same_p99": pct(wake_same, 99),
        "other_n": len(wake_other), "other_p50": pct(wake_other, 50),
        "other_p99": pct(wake_other, 99),
        "lat_p50": pct(lat, 50), "mock_ms": statistics.median(mock),
        "behind_p50": pct(behind, 50), "behind_p99": pct(behind, 99),
        "hist": hist,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hit")
    ap.add_argument("--storm-other", nargs="*", default=[])
    ap.add_argument("--storm", nargs="+", required=True)
    ap.add_argument("--doc-bytes", type=int, required=True)
    ap.add_argument("--mock-ms", type=int, required=True)
    ap.add_argument("--conns", type=int, required=True)
    ap.add_argument("--duration", type=int, required=True)
    ap.add_argument("--rounds", type=int, required=True)
    ap.add_argument("--static", default="return")
    ap.add_argument("--markdown")
    ap.add_argument("--clk-tck", type=int, default=100)
    a = ap.parse_args()

    hit = hit_summary(load_hit(a.hit), a.clk_tck) if a.hit else {}
    base = hit.get("static", {}).get("rps") or float("nan")
    edge = hit.get("edge", {}).get("rps", float("nan"))
    lua = hit.get("lua1", {}).get("rps", float("nan"))

    base_us = hit.get("static", {}).get("us_req") or float("nan")
    h_head = ["row", "req/s", "x (1)", "median req/s", "p50 ms", "p99 ms",
              "worker us/req (user+sys)", "x (1) cost", "bytes/resp",
              "CPU % worker/wrk/other"]
    h_align = ["l"] + ["r"] * 9
    h_rows = []
    for key in ("static", "edge", "lua1", "pc"):
        r = hit.get(key)
        if not r:
            continue
        name = ROW_NAMES[key]
        if r["errors"]:
            name += " [" + r["errors"] + "]"
        h_rows.append([name, "%.0f" % r["rps"], "%.2f" % (r["rps"] / base),
                       "%.0f" % r["rps_median"], fmt(r["p50"], 2),
                       fmt(r["p99"], 2),
                       "%s (%s+%s)" % (fmt(r["us_req"], 1), fmt(r["us_user"], 1),
                                       fmt(r["us_sys"], 1)),
                       "%.2f" % (r["us_req"] / base_us),
                       "%.0f" % r["bytes"],
                       "%.0f/%.0f/%.0f%s" % (r["wcpu"], r["wrk"], r["other"],
                                             " (!)" if r["other"] > 15
                                             else "")])

    storms = [storm_summary(p) for p in a.storm]
    s_head = ["storm", "fetches per key+fragment", "keys != 1", "200s",
              "waiters", "wake p50", "wake p99", "wake max",
              "same-worker p99", "other-worker p50/p99",
              "behind fetcher p50/p99", "waiter latency p50"]
    s_align = ["l", "l"] + ["r"] * 10
    s_rows = []
    for s in storms:
        if s["fetch_min"] == s["fetch_max"]:
            fetches = "%d (all %d keys)" % (s["fetch_min"], s["keys"])
        else:
            fetches = "%d-%d (mean %.2f)" % (s["fetch_min"], s["fetch_max"],
                                             s["fetch_mean"])
        s_rows.append([
            STORM_NAMES.get(s["label"], s["label"]), fetches,
            "%d/%d" % (s["bad_keys"], s["keys"]),
            "%d/%d" % (s["ok"], s["total"]), str(s["waiters"]),
            fmt(s["wake_p50"]) + " ms", fmt(s["wake_p99"]) + " ms",
            fmt(s["wake_max"]) + " ms",
            "%s (%d)" % (fmt(s["same_p99"]), s["same_n"]),
            "%s / %s (%d)" % (fmt(s["other_p50"]), fmt(s["other_p99"]),
                              s["other_n"]),
            "%s / %s ms" % (fmt(s["behind_p50"]), fmt(s["behind_p99"])),
            fmt(s["lat_p50"]) + " ms"])

    b_head = ["waiter wake latency"] + [
        ("%g-%g ms" % (lo, hi)) if hi != math.inf else (">= %g ms" % lo)
        for lo, hi in BUCKETS]
    b_align = ["l"] + ["r"] * len(BUCKETS)
    b_rows = [[STORM_NAMES.get(s["label"], s["label"])]
              + [str(c) for c in s["hist"]] for s in storms]

    others = dict(x.split("=", 1) for x in a.storm_other if "=" in x)
    if others:
        s_head.append("other CPU %")
        s_align.append("r")
        for row, s in zip(s_rows, storms):
            o = others.get(s["label"], "")
            row.append(o + (" (!)" if o and float(o) > 15 else ""))

    mod = next((s for s in storms if s["label"] == "module"), None)
    targets = []

    def target(name, value, goal, met):
        targets.append([name, value, goal, "met" if met else "MISSED"])

    if hit:
        ratio1 = edge / base
        target("all-hit req/s vs (1) static", "%.2fx" % ratio1, ">= 0.75x",
               ratio1 >= 0.75)
        ratio3 = edge / lua
        target("all-hit req/s vs (3) Lua", "%.2fx" % ratio3, ">= 2x",
               ratio3 >= 2)
        e_us = hit.get("edge", {}).get("us_req", float("nan"))
        l_us = hit.get("lua1", {}).get("us_req", float("nan"))
        target("all-hit worker CPU/request: (1) / (2)",
               "%.2fx" % (base_us / e_us), ">= 0.75x",
               base_us / e_us >= 0.75)
        target("all-hit worker CPU/request: (3) / (2)",
               "%.2fx" % (l_us / e_us), ">= 2x", l_us / e_us >= 2)
    if mod:
        target("storm: upstream fetches per key (per fragment)",
               "%d-%d over %d keys" % (mod["fetch_min"], mod["fetch_max"],
                                       mod["keys"]),
               "1", mod["fetch_min"] == 1 and mod["fetch_max"] == 1)
        target("storm: waiter wake p99 (client latency - mock)",
               fmt(mod["wake_p99"]) + " ms", "< 10 ms", mod["wake_p99"] < 10)
        target("storm: waiter wake p99 (behind the fetching request)",
               fmt(mod["behind_p99"]) + " ms", "< 10 ms",
               mod["behind_p99"] < 10)
        target("storm: all requests answered 200",
               "%d/%d" % (mod["ok"], mod["total"]), "all",
               mod["ok"] == mod["total"])
    t_head = ["target (edge_orch)", "measured", "goal", ""]
    t_align = ["l", "r", "r", "l"]

    static_desc = ("`return 200` with the document" if a.static == "return"
                   else "static file, open_file_cache + sendfile")
    notes = [] if not hit else [
        "All-hit: wrk -t1 -c%d -d%ds --latency, %d round(s) per row, "
        "interleaved; req/s, p50, p99 and the CPU split are from the best "
        "round of each row (other load only lowers throughput), 'median "
        "req/s' over all rounds. One nginx worker per server. (1) is %s, "
        "%d bytes of body; (2) and (3) answer the same bytes; (4) answers "
        "one fragment only." % (a.conns, a.duration, a.rounds, static_desc,
                                a.doc_bytes),
        "worker us/req: CPU time of the nginx worker (user + system, incl. "
        "the loopback TCP work done in its context) per request, median "
        "over rounds: the server's cost, little affected by other load. "
        "x (1) cost = that of (2)-(4) relative to (1). CPU %: of one core "
        "during the best round; other = all other processes on the "
        "machine; (!) = over 15 %: measured while something else ran.",
    ]
    notes += [
        "Storm: wake = client latency - mock fetch time (%d ms); behind "
        "fetcher = when a waiter's response arrived - when the fetching "
        "request's response arrived (no skew of the client's burst, no "
        "fetch overhead); waiters are "
        "requests that did not fetch themselves; same-/other-worker: "
        "relative to the worker that fetched; the histogram is of wake; "
        "other CPU %%: all other processes on the machine during that storm."
        % a.mock_ms,
    ]

    print()
    print("== results")
    if h_rows:
        print()
        print(table(h_head, h_rows, h_align))
    print()
    print(table(s_head, s_rows, s_align))
    print()
    print(table(b_head, b_rows, b_align))
    print()
    print(table(t_head, targets, t_align))
    print()
    for n in notes:
        print("   " + n)

    if a.markdown:
        with open(a.markdown, "w") as f:
            if h_rows:
                f.write(md_table(h_head, h_rows, h_align) + "\n\n")
            f.write(md_table(s_head, s_rows, s_align) + "\n\n")
            f.write(md_table(b_head, b_rows, b_align) + "\n\n")
            f.write(md_table(t_head, targets, t_align) + "\n\n")
            for n in notes:
                f.write(n + "\n\n")


if __name__ == "__main__":
    main()
