#!/usr/bin/env bash
# A crash of the machine undoes the last lazy LMDB commit of a follower after its acceptor log took
# that commit's records (so the follower may already have voted with them). Simulated with the
# test hook QFS_TEST_FAULT=lost:N: the daemon exits instead of committing. Restarted, the node
# writes the log's records again before it reads its state, catches up, and no acknowledged write
# is lost anywhere. Needs a QFS_TEST_HOOKS build.
. "$(dirname "$0")/cluster_lib.sh"
cl_init 3 "$@"
if [[ "${QFS_HOOKS:-0}" != 1 ]]; then
	echo "skip - needs the test hooks (not a QFS_TEST_HOOKS build)"
	finish
fi
cl_start_all || exit 1
L=$(cl_wait_leader 20 1 2 3) || { fail "no leader"; finish; }
V=$((L % 3 + 1))       # the victim: a follower
W=$(((L + 1) % 3 + 1)) # writes go through the other follower
ok "leader: node $L; node $V will lose a commit; writes through node $W"

# restart the victim with the hook armed: its 20th lazy commit after a log append is lost
cl_term "$V" || fail "stop node $V"
QFS_TEST_FAULT=lost:20 cl_start "$V" || { fail "restart of node $V with the hook"; finish; }
wait_for 20 cl_leader_ok 1 2 3 || fail "node $V does not know the leader"
mkdir "$T/m$W/d" || fail "mkdir"

# write until the victim is gone (each write through node W, acknowledged ones recorded)
: >"$T/acked"
for ((i = 1; i <= 400; i++)); do
	if echo "$i" >"$T/m$W/d/n$i" 2>/dev/null; then echo "$i" >>"$T/acked"; fi
	gone "${CL_PID[$V]}" && break
done
wait_for 10 gone "${CL_PID[$V]}" || fail "node $V did not exit"
wait "${CL_PID[$V]}" 2>/dev/null
rc=$?
fusermount3 -uz "$T/m$V" 2>/dev/null || umount -l "$T/m$V" 2>/dev/null
wait_for 5 not_mounted "$T/m$V"
eq "node $V exited where the hook lost its commit (status 86)" "$rc" 86
check "its log says so" grep -q "test hook: this commit is lost" "$T/d$V.log"
n=$(wc -l <"$T/acked")
ok "$n writes acknowledged before node $V went"

# more writes while it is down, then it comes back
for ((i = 401; i <= 420; i++)); do echo "$i" >"$T/m$W/d/n$i" && echo "$i" >>"$T/acked"; done
cl_start "$V" || { fail "restart of node $V"; finish; }
check "at start it wrote the log's records again" \
	grep -q "acceptor log: [0-9]* record(s) the database had lost written again" "$T/d$V.log"
check "wal_replayed > 0 in its .zk/status" test "$(cl_status "$V" wal_replayed)" -gt 0
check "identical trees on the three nodes" cl_wait_same 30 1 2 3 || show_diff "$W" "$V"
lost=0
cl_sync "$V" >/dev/null
while read -r i; do
	for r in 1 2 3; do
		[[ "$(cat "$T/m$r/d/n$i" 2>/dev/null)" == "$i" ]] || {
			lost=$((lost + 1))
			echo "   lost: n$i on node $r" >&2
		}
	done
done <"$T/acked"
eq "every acknowledged write ($(wc -l <"$T/acked")) is on all three nodes" "$lost" 0
echo after >"$T/m$V/d/after" || fail "write through the restarted node"
cl_sync "$L" >/dev/null
eq "a write through it is seen on the leader" "$(cat "$T/m$L/d/after")" after
finish
