#!/usr/bin/env bash
# Snapshots (every 50 operations, 10 log entries kept below one):
#  1. a node stopped while the others write far past a compaction installs a snapshot when it is
#     started again, and shows the same tree;
#  2. a node frozen (SIGSTOP) while its mount's kernel caches hold names, attributes and data, its
#     peer connections aborted (ss -K), then continued: it installs a snapshot while running, and
#     its mount shows the new tree at once (deleted names gone, new data and versions), no sync;
#  3. a node that lost its disk, started on an empty directory with --join, catches up.
. "$(dirname "$0")/cluster_lib.sh"
cl_init 3 "$@"
CL_ARGS=(--snapshot-interval 50 --snapshot-keep 10)
cl_start_all || exit 1
L=$(cl_wait_leader 20 1 2 3) || { fail "no leader"; finish; }
S=$((L % 3 + 1)) # the follower that will fall behind
ok "leader: node $L; node $S will fall behind"

# --- 1. stopped, then started
mkdir "$T/m$L/a"
echo first >"$T/m$L/a/keep"
check "the three trees agree before the stop" cl_wait_same 10 1 2 3
cl_term "$S" || fail "stop node $S"
t0=$(now_ms)
for i in $(seq 1 150); do echo "$i" >"$T/m$L/a/n$i" || { fail "write $i"; break; }; done
echo "     300 operations while node $S was down: $(elapsed_since "$t0") ms"
base=$(sed -n 's/^applied_slot=//p' "$T/m$L/.zk/status")
cl_start "$S" || { fail "restart of node $S"; finish; }
t0=$(now_ms)
if cl_wait_same 30 1 2 3; then
	ok "node $S caught up after its restart: identical trees ($(elapsed_since "$t0") ms)"
else
	fail "node $S did not converge after its restart"
	show_diff "$L" "$S"
fi
check "node $S installed a snapshot (status snapshots_installed >= 1)" \
	test "$(cl_status "$S" snapshots_installed)" -ge 1
check "the leader sent one (snapshots_sent >= 1)" test "$(cl_status "$L" snapshots_sent)" -ge 1
eq "node $S: data from before the stop" "$(cat "$T/m$S/a/keep")" first
eq "node $S: the last write" "$(cat "$T/m$S/a/n150"):$(ver "$T/m$S/a/n150")" "150:1"
echo "     the leader's applied slot was $base when node $S restarted"

# --- 2. frozen with warm caches, its connections cut, continued: installs while running, and the
# mount follows
mkdir "$T/m$L/b"
for i in $(seq 1 20); do echo "old$i" >"$T/m$L/b/f$i"; done
mkdir "$T/m$L/b/gone" && echo x >"$T/m$L/b/gone/leaf"
cl_sync "$S" >/dev/null
# warm node S's kernel caches: names, attributes, data
ls -lR "$T/m$S/b" >/dev/null
for i in $(seq 1 20); do cat "$T/m$S/b/f$i" >/dev/null; ver "$T/m$S/b/f$i" >/dev/null; done
eq "node $S sees b/f7 before the freeze" "$(cat "$T/m$S/b/f7"):$(ver "$T/m$S/b/f7")" "old7:1"
installed=$(cl_status "$S" snapshots_installed)
cl_freeze "$S" || fail "node $S did not stop"
# Past a compaction, and more bytes than the socket buffers toward the frozen node hold (16 MiB
# in 64 writes of one node), so that most of it waits in the leader's queue; then abort every
# peer connection (ss -K): what was queued is lost and, once continued, the node is behind the
# compacted log. The others just reconnect.
head -c 262144 /dev/zero | tr '\0' z >"$T/big"
for i in $(seq 1 64); do cp "$T/big" "$T/m$L/a/big" || fail "big write $i"; done
# the changes the frozen node's mount must show (after the bytes that fill its buffers)
for i in $(seq 1 10); do echo "changed$i" >"$T/m$L/b/f$i"; done # changed data
for i in $(seq 11 15); do rm "$T/m$L/b/f$i"; done              # deleted names
rm "$T/m$L/b/gone/leaf" && rmdir "$T/m$L/b/gone"               # a deleted directory
echo fresh >"$T/m$L/b/f99"                                      # a new name
for i in $(seq 1 60); do echo "$i" >"$T/m$L/a/n$i"; done
filter=""
for k in 1 2 3; do filter+="${filter:+ or }sport = :${CL_PORT[k]} or dport = :${CL_PORT[k]}"; done
ss -K "( $filter )" >/dev/null 2>&1 || echo "     (ss -K failed: the node may catch up from the log)"
kill -CONT "${CL_PID[$S]}"
t0=$(now_ms)
installed_more() { (($(cl_status "$S" snapshots_installed) > installed)); }
check "node $S installed a snapshot while running" wait_for 30 installed_more
if wait_for 30 cl_same_applied 1 2 3; then
	ok "node $S caught up while running ($(elapsed_since "$t0") ms after SIGCONT)"
else
	fail "node $S did not catch up"
fi
# no sync: what the kernel cached must have been dropped by the install's invalidation
eq "node $S: changed data and version" "$(cat "$T/m$S/b/f7"):$(ver "$T/m$S/b/f7")" "changed7:2"
eq "node $S: changed size (stat)" "$(stat -c %s "$T/m$S/b/f3")" 9
check "node $S: deleted names are gone" bash -c "! ls '$T/m$S/b/f12' 2>/dev/null"
check "node $S: a deleted directory is gone" bash -c "! test -e '$T/m$S/b/gone'"
eq "node $S: unchanged data" "$(cat "$T/m$S/b/f20"):$(ver "$T/m$S/b/f20")" "old20:1"
eq "node $S: a new name" "$(cat "$T/m$S/b/f99")" fresh
eq "node $S: the directory listing" "$(ls "$T/m$S/b" | LC_ALL=C sort | tr '\n' ' ')" \
	"$(ls "$T/m$L/b" | LC_ALL=C sort | tr '\n' ' ')"
eq "node $S: numChildren of b" "$(zk "$T/m$S/b" numChildren)" 16
if cl_wait_same 20 1 2 3; then ok "identical trees on the three nodes"; else
	fail "trees differ after the running install"
	show_diff "$L" "$S"
fi

# --- 3. node S loses its disk: an empty directory, started with --join, catches up and serves
cl_term "$S" || fail "stop node $S"
rm -rf "$T/d$S"
t0=$(now_ms)
cl_start "$S" --join || { fail "start of node $S on an empty disk with --join"; finish; }
if cl_wait_same 30 1 2 3; then
	ok "node $S on a new disk (--join) caught up: identical trees ($(elapsed_since "$t0") ms)"
else
	fail "node $S on a new disk did not converge"
	show_diff "$L" "$S"
fi
t0=$(now_ms)
until echo rejoined 2>/dev/null >"$T/m$S/b/rejoined"; do
	(($(elapsed_since "$t0") > 20000)) && break
done
cl_sync "$L" >/dev/null
eq "node $S writes again after --join" "$(cat "$T/m$L/b/rejoined" 2>&1)" rejoined
finish
