#!/usr/bin/env python3
"""Cold-key storm client for bench/run.

For each key: open N connections to the server under test, then send N
requests for the same cold key as close together as possible (one tight
loop of send() calls), and time each response.  The mock upstream sleeps
for a fixed time per fetch and records how many fetches it got for each
key and how long each took; after the storm the client reads that from the
mock's /_stats endpoint.

Per request:
    latency   = time the complete response was seen - time it was sent
    wake      = latency - mock fetch time (the longest fetch of the key)
    behind    = time the complete response was seen - time the (last)
                fetching request's response was seen: how long after the
                request that fetched a waiter got its answer, without the
                skew of the client's burst and without the fetch's own
                overhead (proxying, validation, storing)
A request whose response says it fetched from the upstream itself (module,
Lua: a Cache-Status member with fwd=miss and no "collapsed"; proxy_cache:
MISS) is the "fetcher"; all others are "waiters", split by whether they ran
in the fetcher's worker (X-Worker header) or another one.

Times are taken at the return of the select() call that reported the data,
not after this (single-threaded) client parsed earlier responses, so a
burst of simultaneous responses is not serialised by the client.

Usage:
    storm.py --port P --path /storm --label module --keys K1,K2 \
             --mock-port M --n 100 --json out.json
Prints one line per key and writes all samples to --json.
"""

import argparse
import json
import selectors
import socket
import sys
import time
import urllib.request


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * p / 100.0
    f = int(k)
    c = min(f + 1, len(v) - 1)
    return v[f] + (v[c] - v[f]) * (k - f)


class Conn:
    __slots__ = ("sock", "buf", "t_send", "t_done", "status", "headers",
                 "clen", "hlen", "done", "error")

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.t_send = None
        self.t_done = None
        self.status = None
        self.headers = {}
        self.clen = None
        self.hlen = None
        self.done = False
        self.error = None

    def feed(self, data, t):
        self.buf += data
        if self.hlen is None:
            i = self.buf.find(b"\r\n\r\n")
            if i < 0:
                return
            self.hlen = i + 4
            lines = self.buf[:i].decode("latin-1").split("\r\n")
            try:
                self.status = int(lines[0].split()[1])
            except (IndexError, ValueError):
                self.status = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                self.headers[name.strip().lower()] = value.strip()
            cl = self.headers.get("content-length")
            self.clen = int(cl) if cl is not None else None
        if self.clen is not None and len(self.buf) - self.hlen >= self.clen:
            self.done = True
            self.t_done = t


def storm_one(host, port, path, key, n, timeout):
    conns = []
    for _ in range(n):
        s = socket.create_connection((host, port), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conns.append(Conn(s))

    # let the server accept them all before the burst
    time.sleep(0.05)

    req = ("GET %s?k=%s HTTP/1.1\r\nHost: bench\r\nX-Bench-Key: %s\r\n"
           "Connection: close\r\n\r\n" % (path, key, key)).encode()

    sel = selectors.DefaultSelector()
    for c in conns:
        c.sock.setblocking(False)
        sel.register(c.sock, selectors.EVENT_READ, c)

    clock = time.perf_counter
    for c in conns:
        c.t_send = clock()
        c.sock.send(req)
    burst = clock() - conns[0].t_send

    pending = n
    deadline = clock() + timeout
    while pending and clock() < deadline:
        events = sel.select(timeout=0.5)
        t = clock()
        for skey, _ in events:
            c = skey.data
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                data = b""
                c.error = str(e)
            if data:
                c.feed(data, t)
            if not data or c.done:
                if not c.done:
                    c.t_done = t
                    c.error = c.error or "closed early"
                    c.done = True
                sel.unregister(c.sock)
                pending -= 1

    for c in conns:
        if not c.done:
            c.error = "timeout"
        try:
            c.sock.close()
        except OSError:
            pass
    sel.close()
    return conns, burst


def mock_stats(mock_port, key):
    url = "http://127.0.0.1:%d/_stats?k=%s" % (mock_port, key)
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read().decode())


def is_fetcher(label, cache_status):
    cs = cache_status or ""
    if label == "proxy_cache":
        return cs.strip().upper() in ("MISS", "EXPIRED", "BYPASS")
    for member in cs.split(","):
        if "fwd=miss" in member and "collapsed" not in member:
            return True
        if "fwd=request" in member:
            return True
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--label", required=True)
    ap.add_argument("--keys", required=True)
    ap.add_argument("--mock-port", type=int, required=True)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--pause", type=float, default=0.3)
    ap.add_argument("--json", required=True)
    a = ap.parse_args()

    out = {"label": a.label, "n": a.n, "keys": []}
    keys = a.keys.split(",")

    # one storm on a throw-away key first: the first burst of a fresh
    # client and server (connection set-up to the mock, first-time code
    # paths) can take tens of ms and is not what is measured
    storm_one(a.host, a.port, a.path, keys[0] + "-warmup", a.n, a.timeout)
    time.sleep(a.pause)

    for key in keys:
        conns, burst = storm_one(a.host, a.port, a.path, key, a.n, a.timeout)
        time.sleep(0.05)  # the mock records a fetch's time when it ends
        st = mock_stats(a.mock_port, key)

        fetches = st.get("fetches", {})           # fragment -> count
        mock_ms = max(st.get("max_ms", {}).values() or [float("nan")])

        fetcher_workers = set()
        samples = []
        fetch_done = [c.t_done for c in conns if c.t_done is not None
                      and is_fetcher(a.label, c.headers.get("cache-status"))]
        t_ref = max(fetch_done) if fetch_done else None
        for c in conns:
            lat = (c.t_done - c.t_send) * 1000.0 if c.t_done else None
            fetcher = is_fetcher(a.label, c.headers.get("cache-status"))
            worker = c.headers.get("x-worker", "?")
            if fetcher:
                fetcher_workers.add(worker)
            samples.append({
                "status": c.status, "error": c.error, "lat_ms": lat,
                "behind_ms": ((c.t_done - t_ref) * 1000.0
                              if c.t_done and t_ref else None),
                "fetcher": fetcher, "worker": worker,
                "cache_status": c.headers.get("cache-status"),
            })

        for s in samples:
            s["same_worker"] = s["worker"] in fetcher_workers
            s["wake_ms"] = (s["lat_ms"] - mock_ms
                            if s["lat_ms"] is not None else None)

        waiters = [s["wake_ms"] for s in samples
                   if not s["fetcher"] and s["wake_ms"] is not None
                   and s["status"] == 200]
        ok = sum(1 for s in samples if s["status"] == 200)
        workers = sorted(set(s["worker"] for s in samples))

        rec = {
            "key": key, "fetches": fetches, "mock_ms": mock_ms,
            "burst_ms": burst * 1000.0, "ok": ok, "workers": workers,
            "fetcher_workers": sorted(fetcher_workers), "samples": samples,
        }
        out["keys"].append(rec)

        behind = [s["behind_ms"] for s in samples
                  if not s["fetcher"] and s["behind_ms"] is not None
                  and s["status"] == 200]
        print("  %-11s %-24s fetches %-26s %3d/%d ok  mock %.0f ms  "
              "%2d waiters  wake p50 %5.1f p99 %5.1f ms  behind fetcher p50 "
              "%5.1f p99 %5.1f ms  (burst %.1f ms, %d workers)"
              % (a.label, key, json.dumps(fetches, sort_keys=True), ok, a.n,
                 mock_ms, len(waiters), pct(waiters, 50), pct(waiters, 99),
                 pct(behind, 50), pct(behind, 99), burst * 1000.0,
                 len(workers)), flush=True)

        time.sleep(a.pause)

    with open(a.json, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    sys.exit(main())
