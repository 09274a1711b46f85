#!/usr/bin/env bash
# Read-your-writes when writes are answered before their apply is committed (rp_read_wait): on a
# 3-node cluster, everything a process does through one mount right after its write, create,
# append, unlink or mkdir returned sees it: the data, user.zk.version, the size (stat, and a
# listing's READDIRPLUS attributes), a truncating reopen of a node just created, an append after
# a write; and a watcher woken on another node reads the new value. In both read modes.
. "$(dirname "$0")/cluster_lib.sh"
cl_init 3 "$@"
N=${QFS_RYW_ROUNDS:-150}
cat >"$T/ryw.py" <<'PY'
import os, sys
m, n = sys.argv[1], int(sys.argv[2])
bad = []
def want(what, got, exp):
    if got != exp and len(bad) < 8:
        bad.append("%s: got %r, want %r" % (what, got, exp))
def put(p, data, flags=os.O_WRONLY | os.O_TRUNC):
    fd = os.open(p, flags, 0o644)
    os.write(fd, data)
    os.close(fd)
def get(p):
    with open(p, "rb") as f:
        return f.read()
d = os.path.join(m, "ryw")
os.mkdir(d)
k = os.path.join(d, "k")
put(k, b"", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
ver = 0
for i in range(n):
    v = (b"v%d-" % i) * (1 + i % 40)
    put(k, v); ver += 1
    want("cat after write %d" % i, get(k), v)
    want("version after write %d" % i, os.getxattr(k, "user.zk.version"), b"%d" % ver)
    want("stat size after write %d" % i, os.stat(k).st_size, len(v))
    sizes = {e.name: e.stat().st_size for e in os.scandir(d)}
    want("listing size after write %d" % i, sizes.get("k"), len(v))
    put(k, b"+", os.O_WRONLY | os.O_APPEND); ver += 1
    want("cat after append %d" % i, get(k), v + b"+")
    c = os.path.join(d, "c%d" % i)
    put(c, b"a", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    put(c, b"b")  # truncating reopen of a node created just now
    want("cat after create+rewrite %d" % i, get(c), b"b")
    os.unlink(c)
    want("exists after unlink %d" % i, os.path.exists(c), False)
    s = os.path.join(d, "s%d" % i)
    os.mkdir(s)
    put(os.path.join(s, "x"), b"y", os.O_WRONLY | os.O_CREAT)
    want("listing after mkdir+create %d" % i, os.listdir(s), ["x"])
print("rounds", n, "bad", len(bad))
for b in bad:
    print("  ", b)
sys.exit(1 if bad else 0)
PY
for mode in --no-read-cache --read-cache; do
	CL_ARGS=("$mode")
	cl_start_all || exit 1
	cl_wait_leader 20 1 2 3 >/dev/null || fail "no leader"
	for k in 1 2 3; do
		out=$(python3 "$T/ryw.py" "$T/m$k" "$N" 2>&1)
		rc=$?
		echo "$out" | sed 's/^/     /'
		eq "$mode: node $k: every read after this mount's own change sees it" "$rc" 0
		rm -rf "$T/m$k/ryw"
	done
	# a watcher woken on node 3 by a write on node 1 reads the new value
	stale=0
	echo w0 >"$T/m1/w"
	cl_sync 3 >/dev/null
	for i in $(seq 1 30); do
		cat "$T/m3/.zk/watch/w" >/dev/null &
		wpid=$!
		QFS_PIDS+=("$wpid")
		wait_for 10 bash -c "ls -l /proc/$wpid/fd 2>/dev/null | grep -q -- 'watch/w'" ||
			fail "watcher did not open"
		echo "w$i" >"$T/m1/w"
		wait_for 20 gone "$wpid" || fail "the watch on node 3 did not fire"
		[[ "$(cat "$T/m3/w")" == "w$i" ]] || stale=$((stale + 1))
	done
	eq "$mode: 30 watchers woken on node 3 read the write of node 1" "$stale" 0
	rm -f "$T/m1/w"
	for k in 1 2 3; do cl_term "$k" || fail "node $k did not stop"; done
done
finish
