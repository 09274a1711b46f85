#!/usr/bin/env python3
"""Turns tools/bench/run's raw result lines ("run=R system=S workload=W key=value ...") into one
Markdown table: workload | quorumfs | ZooKeeper | ratio | machine limit it approaches. Each figure
is the median over the runs. Usage: table.py RESULTS [--title TEXT] [--check]
(--check: exit 1 if any row is missing for either system, or measured nothing)"""
import statistics
import sys


def load(path):
    res = {}
    for line in open(path):
        kv = dict(t.split("=", 1) for t in line.split() if "=" in t)
        if "system" not in kv or "workload" not in kv:
            continue
        res.setdefault((kv["system"], kv["workload"]), []).append(kv)
    return res


def med(res, system, workload, key):
    vals = []
    for kv in res.get((system, workload), []):
        v = kv.get(key)
        if v is None:
            continue
        vals.append(float("inf") if v == "inf" else float(v))
    return statistics.median(vals) if vals else None


def fmt(v, unit):
    if v is None:
        return "-"
    if v == float("inf"):
        return "never"
    if unit == "ops/s" or unit == "nodes/s":
        return f"{v:,.0f}"
    if unit == "µs" or unit == "ms":
        return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"
    return f"{v:,.0f}"


def main():
    path = sys.argv[1]
    title = sys.argv[sys.argv.index("--title") + 1] if "--title" in sys.argv else ""
    r = load(path)
    m = lambda w, k: med(r, "machine", w, k)
    fs50, fsr = m("fsync", "p50_us"), m("fsync", "ops_per_s")
    tcp50 = m("tcp-rtt", "p50_us")
    fu50, fur = m("fuse-rtt", "p50_us"), m("fuse-rtt", "ops_per_s")
    fw50, fwr = m("fuse-write", "p50_us"), m("fuse-write-par", "ops_per_s")
    nodes = next((kv.get("nodes") for kv in r.get(("quorumfs", "memory"), [])), "?")

    def lim(fmtstr, *vals):
        return "-" if any(v is None for v in vals) else fmtstr.format(*vals)

    # a write through the leader's mount: its four FUSE requests, and one follower's durable
    # accept (a round trip and a flush; the leader's own flush runs meanwhile)
    write_floor = lim("no-op FUSE write p50 {:.0f} µs + fsync p50 {:.0f} µs + TCP RTT {:.0f} µs"
                      " = {:.0f} µs", fw50, fs50, tcp50,
                      (fw50 or 0) + (fs50 or 0) + (tcp50 or 0))
    rows = [
        ("write throughput, many writers, distinct nodes", "write", "ops_per_s", "ops/s", 1,
         lim("no-op FUSE write (open O_TRUNC + write + close), as many writers: {:,.0f}/s;"
             " fsync one at a time: {:,.0f}/s", fwr, fsr)),
        ("write throughput, many writers, distinct nodes, through .zk/multi (one set per"
         " transaction, one descriptor per writer)", "write-multi", "ops_per_s", "ops/s", 1,
         "two FUSE requests a write, no open or close (ZooKeeper: its distinct-node figure)"),
        ("write throughput, many writers, one hot node", "write-hot", "ops_per_s", "ops/s", 1,
         "the kernel's inode lock: one O_TRUNC write of a node per mount at a time"),
        ("write throughput, one hot node, overwritten in place (open without O_TRUNC)",
         "write-hot-inplace", "ops_per_s", "ops/s", 1,
         lim("as distinct nodes: {:,.0f}/s (ZooKeeper: its one hot-node figure)", fwr)),
        ("single-writer write latency p50", "write-lat", "p50_us", "µs", 0, write_floor),
        ("single-writer write latency p99", "write-lat", "p99_us", "µs", 0, write_floor),
        ("single-writer write latency p999", "write-lat", "p999_us", "µs", 0, write_floor),
        ("read throughput, many readers", "read", "ops_per_s", "ops/s", 1,
         lim("no-op FUSE request, 1 thread: {:,.0f}/s (open+read+close is 3-4 requests)", fur)),
        ("read latency p50 (one reader)", "read-lat", "p50_us", "µs", 0,
         lim("no-op FUSE round trip p50 {:.1f} µs", fu50)),
        ("read latency p99 (one reader)", "read-lat", "p99_us", "µs", 0,
         lim("no-op FUSE round trip p50 {:.1f} µs", fu50)),
        ("stat throughput (getxattr vs exists)", "stat", "ops_per_s", "ops/s", 1,
         lim("no-op FUSE getxattr, 1 thread: {:,.0f}/s", fur)),
        ("lock cycle (ephemeral-sequential create + delete)", "lock", "ops_per_s", "ops/s", 1,
         "the kernel's directory lock: one create and one unlink per directory per mount"),
        ("lock cycle through .zk/multi (one descriptor, its session, per client)", "lock-multi",
         "ops_per_s", "ops/s", 1, "2 writes a cycle: half the write throughput"
         " (ZooKeeper: its lock figure)"),
        ("watch wake-up latency p50 (write on node 1, watcher on node 3)", "watch", "p50_us",
         "µs", 0, write_floor),
        ("watch wake-up latency p99", "watch", "p99_us", "µs", 0, write_floor),
        ("failover: kill -9 of the leader to the first acknowledged write", "failover",
         "failover_ms", "ms", 0, "election timeout: quorumfs 500-1000 ms; ZooKeeper tickTime 2000 ms"),
        (f"populate {nodes} nodes of 100 B (1000 creates per multi)", "populate", "nodes_per_s",
         "nodes/s", 1, lim("fsync one at a time: {:,.0f}/s", fsr)),
        (f"resident memory per node, {nodes} nodes (largest node)", "memory", "rss_mib",
         "MiB", 0, "-"),
        (f"resident memory per node after restart", "memory-restarted", "rss_mib", "MiB", 0,
         "-"),
        (f"restart of all nodes with {nodes} nodes to the first write", "restart",
         "restart_ms", "ms", 0, "-"),
    ]
    if title:
        print(f"*{title}*\n")
    print("| workload | quorumfs | ZooKeeper | ratio | machine limit it approaches |")
    print("|---|---:|---:|---|---|")
    # ZooKeeper's setData has no in-place or multi variant; its lock cycle holds one session
    zk_of = {"write-multi": "write", "write-hot-inplace": "write-hot", "lock-multi": "lock"}
    for label, w, key, unit, higher, limit in rows:
        q, z = med(r, "quorumfs", w, key), med(r, "zookeeper", zk_of.get(w, w), key)
        ratio = "-"
        if q is not None and z is not None and z not in (0, float("inf")) and q != float("inf"):
            x = q / z
            better = x >= 1 if higher else x <= 1
            ratio = f"{x:.2f}x ({'win' if better else 'LOSE'})"
        print(f"| {label} ({unit}) | {fmt(q, unit)} | {fmt(z, unit)} | {ratio} | {limit} |")
    if "--check" in sys.argv:
        # the smoke test: every row measured for both systems, something done, a failover ended
        bad = [f"{s} {label}" for label, w, key, unit, higher, limit in rows
               for s in ("quorumfs", "zookeeper")
               if med(r, s, zk_of.get(w, w) if s == "zookeeper" else w, key)
               in (None, 0, float("inf"))]
        bad += [f"machine {w}" for w in ("fsync", "tcp-rtt", "fuse-rtt", "fuse-write",
                                         "fuse-write-par")
                if m(w, "ops_per_s") in (None, 0)]
        if bad:
            print("bench: not measured: " + "; ".join(bad), file=sys.stderr)
            sys.exit(1)
    print()
    print("Ratio = quorumfs / ZooKeeper; throughput: higher is better, latency, time and memory:"
          " lower is better. Medians over the runs.")
    print(f"Machine: fsync (4 KiB + fdatasync) p50 {fmt(fs50, 'µs')} µs; loopback TCP RTT p50 "
          f"{fmt(tcp50, 'µs')} µs; no-op FUSE round trip p50 {fmt(fu50, 'µs')} µs; no-op FUSE "
          f"write (open O_TRUNC + write 1 KiB + close, 16 server threads) p50 {fmt(fw50, 'µs')} "
          f"µs alone, {fmt(fwr, 'ops/s')}/s with as many writers as quorumfs's rows.")


main()
