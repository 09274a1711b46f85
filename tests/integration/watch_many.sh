#!/usr/bin/env bash
# Many watchers (3 real daemons): rounds of watch files on one node, waited on with poll and
# epoll by one process, fired by writes made through another node: every watcher wakes once, with
# the right event, and none is missed (a stress for poll wake-ups). Then 5000 watchers of one node:
# the daemon's RSS per watcher and the time from the write's return to the last wake-up (printed,
# not asserted).
. "$(dirname "$0")/cluster_lib.sh"
cl_init 3 "$@"
cl_start_all || exit 1
L=$(cl_wait_leader 20 1 2 3) || { fail "no leader"; finish; }
W=$((L % 3 + 1)) X=$(((L + 1) % 3 + 1)) # watchers on W, writes through X
mkdir "$T/m$X/cfg"
for i in $(seq 0 7); do echo 0 >"$T/m$X/cfg/n$i"; done
cl_wait_same 20 1 2 3 || fail "nodes differ"
ulimit -n 12000 2>/dev/null || true

cat >"$T/w.py" <<'PY'
import os, select, sys, time
mw, mx, mode, rounds, per = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
pid = int(sys.argv[6])

def rss_kb():
    with open("/proc/%d/status" % pid) as f:
        for l in f:
            if l.startswith("VmRSS:"):
                return int(l.split()[1])

def version(path):
    return int(os.getxattr(path, "user.zk.version"))

def round_(r, nodes, use_epoll, deadline_s=30):
    fds = {}
    for i in range(per):
        n = nodes[i % len(nodes)]
        fd = os.open("%s/.zk/watch/cfg/%s" % (mw, n), os.O_RDONLY | os.O_NONBLOCK)
        fds[fd] = n
    if use_epoll:
        ep = select.epoll(sizehint=per)
        for fd in fds:
            ep.register(fd, select.EPOLLIN)
    else:
        p = select.poll()
        for fd in fds:
            p.register(fd, select.POLLIN)
    before = {n: version("%s/cfg/%s" % (mw, n)) for n in nodes}
    t0 = time.monotonic()
    for n in nodes:  # through the other node
        with open("%s/cfg/%s" % (mx, n), "w") as f:
            f.write("%d-%d" % (r, t0))
    t_written = time.monotonic()
    woke, last = set(), t_written
    end = t_written + deadline_s
    while len(woke) < len(fds) and time.monotonic() < end:
        evs = ep.poll(1.0) if use_epoll else p.poll(1000)
        for fd, ev in evs:
            if fd in woke:
                continue
            data = os.read(fd, 4096).decode()
            want = "NodeDataChanged /cfg/%s\n" % fds[fd]
            if data != want:
                print("BAD event on %s: %r" % (fds[fd], data)); sys.exit(1)
            woke.add(fd)
            last = time.monotonic()
            if use_epoll:
                ep.unregister(fd)
            else:
                p.unregister(fd)
    missed = [fds[fd] for fd in fds if fd not in woke]
    if missed:
        # a miss: is the watch fired in the daemon (read returns) and only the poll lost?
        fd = [f for f in fds if f not in woke][0]
        try:
            late = os.read(fd, 4096).decode()
        except OSError as e:
            late = "read error %d" % e.errno
        print("MISSED %d of %d wake-ups (%s, round %d); first missed %s, a read now gives %r"
              % (len(missed), len(fds), "epoll" if use_epoll else "poll", r, missed[0], late))
        sys.exit(1)
    for fd in fds:
        os.close(fd)
    if use_epoll:
        ep.close()
    return (last - t_written) * 1000

if mode == "stress":
    nodes = ["n%d" % i for i in range(8)]
    worst = 0
    for r in range(rounds):
        worst = max(worst, round_(r, nodes, r % 2 == 1))
    print("stress: %d rounds x %d watchers (poll and epoll alternating), none missed; slowest last wake-up %.0f ms after the writes"
          % (rounds, per, worst))
else:
    base = rss_kb()
    fds = []
    t0 = time.monotonic()
    for i in range(per):
        fds.append(os.open("%s/.zk/watch/cfg/n0" % mw, os.O_RDONLY | os.O_NONBLOCK))
    t_open = time.monotonic() - t0
    held = rss_kb()
    ep = select.epoll(sizehint=per)
    for fd in fds:
        ep.register(fd, select.EPOLLIN)
    t0 = time.monotonic()
    with open("%s/cfg/n0" % mx, "w") as f:
        f.write("many")
    t_written = time.monotonic()
    woke = 0
    end = t_written + 60
    while woke < per and time.monotonic() < end:
        for fd, ev in ep.poll(1.0):
            ep.unregister(fd)
            woke += 1
    t_last = time.monotonic()
    if woke < per:
        print("MISSED %d of %d" % (per - woke, per)); sys.exit(1)
    print("many: %d watchers of one node: daemon RSS +%d KiB (%.0f bytes per watcher), opened in %.0f ms; "
          "write %.0f ms, last of %d wake-ups %.0f ms after the write returned"
          % (per, held - base, (held - base) * 1024.0 / per, t_open * 1000, (t_written - t0) * 1000,
             woke, (t_last - t_written) * 1000))
    for fd in fds:
        os.close(fd)
PY
out=$(python3 "$T/w.py" "$T/m$W" "$T/m$X" stress 40 400 "${CL_PID[$W]}" 2>&1)
rc=$?
echo "     $out"
check "40 rounds of 400 watchers on node $W, writes through node $X: every watcher woke once" test "$rc" -eq 0
out=$(python3 "$T/w.py" "$T/m$W" "$T/m$X" many 1 5000 "${CL_PID[$W]}" 2>&1)
rc=$?
echo "     $out"
check "5000 watchers of one node all wake on one write" test "$rc" -eq 0
finish
