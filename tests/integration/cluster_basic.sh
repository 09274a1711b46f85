#!/usr/bin/env bash
# Three daemons on loopback, each mounted (node 3 configured from a zoo.cfg-style file):
#  - a write on node 1 shows on nodes 2 and 3 with the same bytes and version;
#  - after a sync through a node (.zk/sync, quorumctl sync), a read there is exact at once;
#  - .zk/status: one leader everyone agrees on, peers up;
#  - a write through a descriptor whose node was deleted and re-created elsewhere fails;
#  - write latency through the leader's and through a follower's mount;
#  - bad cluster settings are refused at start with a clear message.
. "$(dirname "$0")/cluster_lib.sh"
cl_init 3 "$@"

# --- refusals at start (no daemon stays; "timeout" stops one that would wrongly start)
mkdir -p "$T/x" "$T/mx"
timeout 10 "$QFS" -f --id 1 --peers "$CL_PEERS" --data "$T/x" "$T/mx" 2>"$T/err" && fail "no secret: must refuse"
check "no secret file: refused, says why" grep -q "needs a shared secret" "$T/err"
printf 'short' >"$T/short"
timeout 10 "$QFS" -f --id 1 --peers "$CL_PEERS" --secret-file "$T/short" --data "$T/x" "$T/mx" 2>"$T/err" &&
	fail "short secret: must refuse"
check "a secret under 16 bytes: refused" grep -q "at least 16 bytes" "$T/err"
timeout 10 "$QFS" -f --id 4 --peers "$CL_PEERS" --secret-file "$CL_SECRET" --data "$T/x" "$T/mx" 2>"$T/err" &&
	fail "id not in peers: must refuse"
check "an id not among the peers: refused" grep -q "not in the peer list" "$T/err"
timeout 10 "$QFS" -f --id 1 --peers "1=127.0.0.1:1,2=127.0.0.1:2" --secret-file "$CL_SECRET" --data "$T/x" \
	"$T/mx" 2>"$T/err" && fail "even cluster: must refuse"
check "an even number of nodes: refused" grep -q "odd number" "$T/err"
timeout 10 "$QFS" -f --id 1 --peers "1=no-such-host.invalid:5,2=127.0.0.1:2,3=127.0.0.1:3" \
	--secret-file "$CL_SECRET" --data "$T/x" "$T/mx" 2>"$T/err" && fail "bad host: must refuse"
check "an unresolvable host: refused" grep -q "cannot resolve" "$T/err"
printf 'id=1\nbogus=1\n' >"$T/bad.cfg"
timeout 10 "$QFS" -f --config "$T/bad.cfg" --data "$T/x" "$T/mx" 2>"$T/err" && fail "bad config: must refuse"
check "an unknown config key: refused with file and line" grep -q "bad.cfg:2: unknown setting 'bogus'" "$T/err"
timeout 10 "$QFS" -f --id 1 --secret-file "$CL_SECRET" --data "$T/x" "$T/mx" 2>"$T/err" &&
	fail "--id without --peers: must refuse"
check "cluster settings without --peers: refused (no silent single node)" grep -q "need --peers" "$T/err"
check "nothing mounted by the refused starts" not_mounted "$T/mx"

# --- the cluster: nodes 1 and 2 from the command line, node 3 from a config file
cl_start 1 || exit 1
cl_start 2 || exit 1
{
	echo "# node 3 of the test cluster"
	echo "id=3"
	for k in 1 2 3; do echo "server.$k=localhost:${CL_PORT[k]}"; done
	echo "dataDir=d3"
	echo "secretFile=secret"
	echo "tickTime=50"
	echo "writeTimeout=10000"
} >"$T/n3.cfg"
mkdir -p "$T/m3"
"$QFS" -f --config "$T/n3.cfg" "$T/m3" >>"$T/d3.log" 2>&1 &
CL_PID[3]=$!
QFS_PIDS+=("$!")
QFS_MNTS+=("$T/m3")
wait_for 20 is_mounted "$T/m3" || { fail "node 3 (config file) did not mount"; finish; }
check "the config file's dataDir is relative to the file" test -d "$T/d3"

t0=$(now_ms)
L=$(cl_wait_leader 20 1 2 3) || { fail "no leader agreed by all three"; finish; }
ok "leader elected: node $L ($(elapsed_since "$t0") ms after the last start)"
peers_up() {
	local k
	for k in 1 2 3; do
		[[ $(grep -c '^peer\.[0-9]*=up$' "$T/m$k/.zk/status") == 2 ]] || return 1
	done
}
check "every node sees both peers up" wait_for 10 peers_up
eq "node 3 knows its id" "$(cl_status 3 id)" 3
for k in 1 2 3; do
	r=$(cl_status "$k" role)
	if [[ $k == "$L" ]]; then eq "node $k: role" "$r" leader; else eq "node $k: role" "$r" follower; fi
done
check ".zk lists sync" grep -qx sync <(ls "$T/m1/.zk")

# --- a write on node 1 reaches nodes 2 and 3: same bytes, same version
echo hello >"$T/m1/greeting" || fail "write on node 1"
eq "node 1: own write visible at once (read-your-writes)" "$(cat "$T/m1/greeting"):$(ver "$T/m1/greeting")" "hello:1"
for k in 2 3; do
	t0=$(now_ms)
	same() { [[ "$(cat "$T/m$1/greeting" 2>/dev/null):$(ver "$T/m$1/greeting" 2>/dev/null)" == "hello:1" ]]; }
	if wait_for 10 same "$k"; then ok "node $k: same bytes and version ($(elapsed_since "$t0") ms)"; else
		fail "node $k: got '$(cat "$T/m$k/greeting" 2>&1)' version $(ver "$T/m$k/greeting" 2>&1)"; fi
done
for z in czxid mzxid ctime mtime dataLength; do
	eq "stat $z identical on the three nodes" "$(zk "$T/m2/greeting" $z) $(zk "$T/m3/greeting" $z)" \
		"$(zk "$T/m1/greeting" $z) $(zk "$T/m1/greeting" $z)"
done
printf 'bin\0ary\377' >"$T/m2/bin"
cl_sync 1 >/dev/null
check "binary data byte for byte on node 1" cmp -s <(printf 'bin\0ary\377') "$T/m1/bin"

# --- sync, then an immediate read: exact (no polling)
bad=0
for i in $(seq 1 30); do
	w=$((i % 3 + 1)) r=$(((i + 1) % 3 + 1))
	echo "v$i" >"$T/m$w/s" || bad=$((bad + 1))
	s=$(cl_sync "$r") || { bad=$((bad + 1)); continue; }
	[[ "$s" == zxid=0x* ]] || bad=$((bad + 1))
	got="$(cat "$T/m$r/s"):$(ver "$T/m$r/s")"
	[[ "$got" == "v$i:$i" ]] || { bad=$((bad + 1)); echo "  round $i: node $r read '$got'" >&2; }
done
eq "30 rounds: write on one node, sync + read on another: exact" "$bad" 0
mzxid=$(zk "$T/m1/s" mzxid)
s=$(cl_sync 2)
check "the sync's zxid is at least the last write's ($s >= $mzxid)" test $((${s#zxid=})) -ge $((mzxid))
if "$QFSCTL" --help 2>&1 | grep -q '\bsync\b'; then
	echo viactl >"$T/m3/ctl"
	check "quorumctl sync MOUNT succeeds" "$QFSCTL" sync "$T/m1"
	eq "read after quorumctl sync: exact" "$(cat "$T/m1/ctl")" viactl
else
	echo "skip - quorumctl has no sync subcommand yet"
fi

# --- directories and deletes propagate (the kernel's caches on the other nodes follow)
ls "$T/m2" "$T/m3" >/dev/null
mkdir -p "$T/m3/app/conf" && echo 42 >"$T/m3/app/conf/x"
rm "$T/m1/bin"
cl_sync 2 >/dev/null
eq "node 2: mkdir on node 3 visible" "$(cat "$T/m2/app/conf/x")" 42
check "node 2: delete on node 1 visible" test ! -e "$T/m2/bin"
check "the three trees are identical" cl_wait_same 10 1 2 3 || show_diff 1 2

# --- a listing opened before a remote delete and read after it (READDIRPLUS from opendir's
# snapshot) must not leave the deleted name in node 2's dentry cache past a sync
mkdir "$T/m1/rdp" && for i in 1 2 3; do echo "$i" >"$T/m1/rdp/n$i"; done
cl_sync 2 >/dev/null
out=$(python3 - "$T/m2/rdp" "$T/m1/rdp/n2" "$T/m2/.zk/sync" <<'PY'
import os, sys
d, victim, sync = sys.argv[1:]
fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)   # OPENDIR: the listing is read now
os.unlink(victim)                                  # deleted through node 1
open(sync).read()                                  # node 2 has applied the delete
names = sorted(e.name for e in os.scandir(fd))     # READDIRPLUS of the old listing
open(sync).read()
print(" ".join(names), "exists" if os.path.exists(os.path.join(d, "n2")) else "gone")
PY
)
eq "listing opened before a delete, read after: old names, then the name gone after sync" "$out" "n1 n2 n3 gone"

# --- a descriptor open for writing on node 1 whose node node 2 deleted and created again: its
# next write fails (ENOENT) and never lands in the new node, although that write waits only for
# the deletion and creation to be visible, not for every change of the node (fs__read_ident)
cat >"$T/recreate.py" <<'PY'
import errno, os, sys
a, b, m1, m2 = sys.argv[1:5]  # one node /rc through mounts 1 and 2
bad = 0
for i in range(20):
    fd = os.open(a, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.write(fd, b"first")
    # one transaction through node 2, so that node 1 may not show it yet at the next write
    mfd = os.open(os.path.join(m2, ".zk/multi"), os.O_RDWR)
    os.write(mfd, b"delete /rc\ncreate /rc second\n")
    os.close(mfd)
    try:
        os.write(fd, b"third")
        bad += 1
    except OSError as e:
        bad += e.errno != errno.ENOENT
    os.close(fd)
    bad += open(b, "rb").read() != b"second"
    os.unlink(b)
    open(os.path.join(m1, ".zk/sync")).read()  # node 1 sees the deletion before the next create
print("bad", bad)
PY
eq "20 rounds: a write through a descriptor whose node was deleted and re-created elsewhere fails" \
	"$(python3 "$T/recreate.py" "$T/m1/rc" "$T/m2/rc" "$T/m1" "$T/m2")" "bad 0"

# --- latency of one write (create excluded) through the leader and through a follower
F=$((L % 3 + 1))
for who in "$L:leader" "$F:follower"; do
	k=${who%%:*}
	echo 0 >"$T/m$k/lat$k"
	t0=$(now_ms)
	for i in $(seq 1 200); do echo "$i" >"$T/m$k/lat$k"; done
	dt=$(elapsed_since "$t0")
	eq "200 writes through the $k (${who#*:}): last version" "$(ver "$T/m$k/lat$k")" 201
	echo "     write latency through the ${who#*:}'s mount: $((dt * 1000 / 200)) us per write (200 in $dt ms)"
done
finish
