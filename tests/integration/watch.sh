#!/usr/bin/env bash
# Watches as blocking reads: cat MOUNT/.zk/watch/PATH blocks until the next change of PATH and
# prints one line "EVENT PATH"; .zk/watch-children for the child list; one-shot; the watcher that
# wakes reads the new data; poll() readiness; an interrupted read answers EINTR and leaks nothing;
# thousands of watchers are woken by one change; quorumctl wait [--children] [--since VERSION].
. "$(dirname "$0")/lib.sh"
qfs_init "$@"
M=$T/mnt
start_fg "$T/data" "$M" || exit 1
has_line() { [[ -s "$1" ]]; }

# bg_watch OUT FILE: cat FILE into OUT in the background; sets WP. Waits until the watch is open.
bg_watch() {
	: >"$1"
	cat "$2" >"$1" &
	WP=$!
	wait_for 5 bash -c "ls -l /proc/$WP/fd 2>/dev/null | grep -q -- '$2'" || fail "watcher did not open $2"
}

echo v1 >"$M/cfg"
bg_watch "$T/o1" "$M/.zk/watch/cfg"
check "the watch blocks while nothing changes" bash -c "! kill -0 $WP 2>/dev/null || ! grep -q . '$T/o1'"
echo v2 >"$M/cfg"
check "a data change wakes it" wait_for 5 has_line "$T/o1"
wait "$WP"
eq "... one line: EVENT PATH" "$(cat "$T/o1")" "NodeDataChanged /cfg"

# the watcher that wakes reads the new data, never the old
: >"$T/seen"
(cat "$M/.zk/watch/cfg" >/dev/null && cat "$M/cfg" >"$T/seen") &
p=$!
wait_for 5 bash -c "ls -l /proc/\$(pgrep -P $p cat)/fd 2>/dev/null | grep -q watch/cfg"
echo v3 >"$M/cfg"
wait "$p"
eq "after waking, a read sees the new data" "$(cat "$T/seen")" v3

# created, deleted, children
bg_watch "$T/o2" "$M/.zk/watch/later"
echo x >"$M/later"
wait "$WP"
eq "watching a missing node waits for its creation" "$(cat "$T/o2")" "NodeCreated /later"
bg_watch "$T/o3" "$M/.zk/watch/later"
rm "$M/later"
wait "$WP"
eq "deletion" "$(cat "$T/o3")" "NodeDeleted /later"
mkdir "$M/app"
bg_watch "$T/o4" "$M/.zk/watch-children/app/.data"
echo c >"$M/app/c1"
wait "$WP"
eq "child list of a directory node (DIR/.data): a child created" "$(cat "$T/o4")" "NodeChildrenChanged /app"
bg_watch "$T/o5" "$M/.zk/watch-children/app/.data"
echo c2 >"$M/app/c1"
check "a child's data change is not a child-list change" bash -c "kill -0 $WP"
rm "$M/app/c1"
wait "$WP"
eq "... a child deleted" "$(cat "$T/o5")" "NodeChildrenChanged /app"
bg_watch "$T/o6" "$M/.zk/watch/app/.data"
echo d >"$M/app/.data"
wait "$WP"
eq "data watch of a directory node (DIR/.data)" "$(cat "$T/o6")" "NodeDataChanged /app"
bg_watch "$T/o7" "$M/.zk/watch-children/app/.data"
rmdir "$M/app"
wait "$WP"
eq "a child watch on a deleted node: NodeDeleted" "$(cat "$T/o7")" "NodeDeleted /app"
# a change of the root's data re-checks every watch (what a snapshot install reports in a
# cluster): the unchanged nodes' watches stay armed
bg_watch "$T/o8" "$M/.zk/watch/cfg"
echo rootdata >"$M/.data"
timeout 1 cat "$M/.zk/watch/cfg" >/dev/null
eq "a root change does not fire the watches of unchanged nodes" "$?:$(cat "$T/o8")" "124:"
echo v9 >"$M/cfg"
wait "$WP"
eq "... which still fire on their own change" "$(cat "$T/o8")" "NodeDataChanged /cfg"
if echo x 2>/dev/null >"$M/.zk/watch/cfg"; then fail "watch files are read-only"; else ok "watch files cannot be written"; fi
if mkdir "$M/.zk/watch/nd" 2>/dev/null; then fail "nothing is created under .zk/watch"; else ok "nothing is created under .zk/watch"; fi

# one-shot, poll, interrupt, many watchers (Python)
cat >"$T/w.py" <<'PY'
import os, select, signal, sys, time, resource
M, what = sys.argv[1], sys.argv[2]
if what == "oneshot":
    fd = os.open(M + "/.zk/watch/cfg", os.O_RDONLY)
    os.system("echo a >" + M + "/cfg; echo b >" + M + "/cfg")
    first = os.read(fd, 4096)
    second = os.read(fd, 4096)
    print(repr(first.decode()), repr(second.decode()))
elif what == "poll":
    fds = {os.open(M + "/.zk/watch/p%d" % i, os.O_RDONLY): i for i in range(3)}
    r, _, _ = select.select(list(fds), [], [], 0.2)
    print("before:", len(r), end=" ")
    open(M + "/p1", "w").write("x")
    r, _, _ = select.select(list(fds), [], [], 5)
    print("after:", sorted(fds[f] for f in r), os.read(r[0], 100).decode().strip())
elif what == "intr":
    class Stop(Exception): pass
    def h(*a): raise Stop()
    signal.signal(signal.SIGALRM, h)
    n = 0
    for i in range(int(sys.argv[3])):
        fd = os.open(M + "/.zk/watch/cfg", os.O_RDONLY)
        signal.setitimer(signal.ITIMER_REAL, 0.02)
        try:
            os.read(fd, 100)
        except Stop:
            n += 1
        os.close(fd)
    print(n)
elif what == "many":
    N = int(sys.argv[3])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, N + 100)), hard))
    fds = [os.open(M + "/.zk/watch/hot", os.O_RDONLY) for _ in range(N)]
    p = select.poll()
    for f in fds: p.register(f, select.POLLIN)
    assert p.poll(100) == []
    t0 = time.time()
    open(M + "/hot", "w").write("go")
    woke = set()
    while len(woke) < N and time.time() - t0 < 20:
        for f, ev in p.poll(1000):
            woke.add(f); p.unregister(f)
    t1 = time.time()
    ok = all(os.read(f, 100) == b"NodeCreated /hot\n" for f in fds)
    print(len(woke), ok, "%.0f" % ((t1 - t0) * 1000))
PY
eq "one-shot: the first read gets the event, the next end of file" "$(python3 "$T/w.py" "$M" oneshot)" "'NodeDataChanged /cfg\\n' ''"
eq "poll/select: only the fired watch is readable" "$(python3 "$T/w.py" "$M" poll)" "before: 0 after: [1] NodeCreated /p1"
eq "200 reads interrupted by a signal all return (EINTR)" "$(timeout 60 python3 "$T/w.py" "$M" intr 200)" 200
out=$(timeout 60 python3 "$T/w.py" "$M" many 3000)
read -r woke okall ms <<<"$out"
eq "3000 watchers on one node: one change wakes them all" "$woke $okall" "3000 True"
echo "     3000 watchers woken in $ms ms"

# quorumctl wait
v=$(ver "$M/cfg")
echo changed-before >"$M/cfg"
eq "wait --since: a change made before the wait began returns at once" "$(timeout 5 "$QFSCTL" wait --since "$v" "$M/cfg")" "NodeDataChanged /cfg"
v=$(ver "$M/cfg")
timeout 1 "$QFSCTL" wait --since "$v" "$M/cfg" >/dev/null
eq "wait --since the current version blocks (timed out after 1 s)" "$?" 124
timeout 10 "$QFSCTL" wait --since "$v" "$M/cfg" >"$T/q1" &
qp=$!
wait_for 5 bash -c "ls -l /proc/\$(pgrep -P $qp)/fd 2>/dev/null | grep -q watch/cfg"
echo after >"$M/cfg"
wait "$qp"
eq "... until the next change" "$(cat "$T/q1")" "NodeDataChanged /cfg"
mkdir "$M/kids"
cv=$(zk "$M/kids" cversion)
echo 1 >"$M/kids/a"
eq "wait --children --since: a child created before" "$(timeout 5 "$QFSCTL" wait --children --since "$cv" "$M/kids")" "NodeChildrenChanged /kids"
timeout 10 "$QFSCTL" wait --children "$M/kids" >"$T/q2" &
qp=$!
wait_for 5 bash -c "ls -l /proc/$qp/fd /proc/\$(pgrep -P $qp)/fd 2>/dev/null | grep -q 'watch-children/kids'"
echo 2 >"$M/kids/b"
wait "$qp"
eq "wait --children" "$(cat "$T/q2")" "NodeChildrenChanged /kids"

# nothing leaked: ASan checks the daemon at exit
stop_pid "$PID" "$M" || fail "stop"
check "the daemon exits without leaks (LeakSanitizer)" bash -c "! grep -q 'LeakSanitizer\|AddressSanitizer' '$T/data.log'"
finish
