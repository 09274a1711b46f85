#!/usr/bin/env bash
# Page-cache reads in a cluster (fs__pc_grant): a write on node 1, once applied on node 2 (sync),
# shows in a cat on node 2 even though node 2 served the previous value from its page cache;
# readers on node 2 racing writers on nodes 1 and 3 see only whole values (the changes come
# from the replica, not from node 2's own writers); a watch on node 2 fires for a write on node 1.
. "$(dirname "$0")/cluster_lib.sh"
cl_init 3 "$@"
CL_ARGS=(--read-cache) # the default since session 9; explicit here
cl_start_all || exit 1
cl_wait_leader 20 1 2 3 >/dev/null || fail "no leader"
st2() { sed -n "s/^$1=//p" "$T/m2/.zk/status"; }

echo v0 >"$T/m1/k"
cl_sync 2 >/dev/null
stale=0
c0=$(st2 opens_cached)
for i in $(seq 1 30); do
	case $((i % 3)) in
	0) v="v$i" ;;
	1) v=$(head -c 6000 /dev/zero | tr '\0' q)$i ;;
	2) v=$(head -c 90000 /dev/zero | tr '\0' r)$i ;;
	esac
	cat "$T/m2/k" >/dev/null # the old value, now in node 2's page cache
	printf '%s' "$v" >"$T/m1/k"
	cl_sync 2 >/dev/null
	[[ "$(cat "$T/m2/k")" == "$v" ]] || stale=$((stale + 1))
	[[ "$(cat "$T/m2/k")" == "$v" ]] || stale=$((stale + 1))
done
eq "node 2: 60 cats after 30 writes on node 1 (synced) see each" "$stale" 0
check "node 2 served those through its page cache" test $(($(st2 opens_cached) - c0)) -gt 30

# A descriptor held open on node 2 across writes on node 1: it keeps reading its version, while
# stat, a new cat and the page cache on node 2 go to the new one at once (the name gets a new
# inode, fs__inval_inode_run), not only once the descriptor is closed.
cat >"$T/held.py" <<'PY'
import os, subprocess, sys
m1, m2 = sys.argv[1], sys.argv[2]
old = b"o" * 7000
with open(m1 + "/hk", "wb") as f:
    f.write(old)
open(m2 + "/.zk/sync").read()
r = os.open(m2 + "/hk", os.O_RDONLY)
out = []
out.append(os.pread(r, 1 << 20, 0) == old)
for i, v in enumerate([b"n" * 12000, b"m" * 3, b"p" * 7000]):
    with open(m1 + "/hk", "wb") as f:
        f.write(v)
    open(m2 + "/.zk/sync").read()
    out.append(os.stat(m2 + "/hk").st_size == len(v))
    out.append(open(m2 + "/hk", "rb").read() == v)
    out.append(os.pread(r, 1 << 20, 0) == old)
os.close(r)
print(" ".join("ok" if x else "bad" for x in out))
PY
c0=$(st2 opens_cached)
k0=$(st2 readers_kept_inode)
eq "node 2: a held descriptor keeps its version; stat and cat there show each write on node 1" \
	"$(python3 "$T/held.py" "$T/m1" "$T/m2")" "ok ok ok ok ok ok ok ok ok ok"
for _ in 1 2 3; do cat "$T/m2/hk" >/dev/null; done
check "node 2: cats after the writes go through its page cache again" test $(($(st2 opens_cached) - c0)) -ge 4
check "node 2: .zk/status counts the held reader's inode kept (readers_kept_inode)" \
	test $(($(st2 readers_kept_inode) - k0)) -ge 1

SECS=${QFS_RC_SECS:-4}
cat >"$T/rw.py" <<'PY'
import os, random, sys, time
p, role, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
vals = [bytes([c]) * l for c, l in ((65, 1), (66, 3000), (67, 5000), (68, 70000), (69, 200000))]
ok = set(vals)
end = time.monotonic() + secs
n = bad = 0
while time.monotonic() < end:
    if role == "w":
        v = random.choice(vals)
        fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
        os.write(fd, v)
        os.close(fd)
    elif role == "s":
        os.stat(p)
    else:
        if role == "r":  # fstat for the size, then read to the end
            with open(p, "rb") as f:
                d = f.read()
        else:  # "o": one read(2) of more than any value: a regular file's read returns
            # less only at its end, so the size the kernel holds then decides what comes back
            fd = os.open(p, os.O_RDONLY)
            d = os.read(fd, 1 << 20)
            os.close(fd)
        if d not in ok:
            bad += 1
            if bad < 4:
                print("bad read", len(d), d[:4], d[-4:], file=sys.stderr)
    n += 1
print(role, n, bad)
PY
printf 'A' >"$T/m1/n"
cl_sync 2 >/dev/null
c0=$(st2 opens_cached)
pids=()
# Two writers a node: each commit applied on node 2 queues an invalidation there, which must not
# cost a reader in progress its size (fs__inval_inode_run).
for x in "1 w" "1 w" "3 w" "3 w" "2 r" "2 o" "2 s"; do
	set -- $x
	python3 "$T/rw.py" "$T/m$1/n" "$2" "$SECS" >"$T/out.$2.${#pids[@]}" 2>&1 &
	pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
cat "$T"/out.* | sed 's/^/     /'
eq "all workers ran" "$failed" 0
eq "node 2's readers only ever saw whole values" \
	"$(cat "$T"/out.[ro].* | awk '$1 == "r" || $1 == "o" { s += $3 } END { print s + 0 }')" 0
echo "     node 2 opens through the page cache during the race: $(($(st2 opens_cached) - c0))"

cat "$T/m2/k" >/dev/null
cat "$T/m2/.zk/watch/k" >"$T/ev" &
wpid=$!
QFS_PIDS+=("$wpid")
wait_for 10 bash -c "ls -l /proc/$wpid/fd 2>/dev/null | grep -q -- 'watch/k'" || fail "watcher did not open"
echo after-watch >"$T/m1/k"
wait_for 20 gone "$wpid" || fail "the watch on node 2 did not fire"
eq "watch on node 2 for a write on node 1" "$(cat "$T/ev")" "NodeDataChanged /k"
eq "the woken watcher's cat on node 2" "$(cat "$T/m2/k")" after-watch
finish
