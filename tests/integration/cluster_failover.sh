#!/usr/bin/env bash
# kill -9 of the leader in the middle of a write load (two writers, on the two followers' mounts):
# the survivors elect a new leader, writes resume within a few seconds, no acknowledged write is
# lost; the old leader, restarted, catches up and shows the same tree.
. "$(dirname "$0")/cluster_lib.sh"
cl_init 3 "$@"
CL_ARGS=(--write-timeout 5000)
cl_start_all || exit 1
L=$(cl_wait_leader 20 1 2 3) || { fail "no leader"; finish; }
F1=$((L % 3 + 1)) F2=$(((L + 1) % 3 + 1))
ok "leader: node $L; writers on nodes $F1 and $F2"
mkdir "$T/m$L/load"
cl_sync "$F1" >/dev/null && cl_sync "$F2" >/dev/null

# writer K: creates load/wK-I with data I until $T/stop exists; logs "I START_MS END_MS" of every
# acknowledged write to $T/acked.K, failures to $T/failed.K
writer() {
	local k=$1 i=0 ts
	while [[ ! -e "$T/stop" ]]; do
		i=$((i + 1))
		ts=$(now_ms)
		if echo "$i" 2>>"$T/failed.$k" >"$T/m$k/load/w$k-$i"; then
			echo "$i $ts $(now_ms)" >>"$T/acked.$k"
		else
			echo "   write $i failed at $(now_ms)" >>"$T/failed.$k"
		fi
	done
}
acks() { [[ -f "$T/acked.$1" ]] && wc -l <"$T/acked.$1" || echo 0; }
acks_after() { awk -v t="$2" '$3 > t { n++ } END { print n + 0 }' "$T/acked.$1" 2>/dev/null || echo 0; }
at_least() { (($($1 "${@:3}") >= $2)); }
: >"$T/failed.$F1"
: >"$T/failed.$F2"
writer "$F1" &
W1=$!
writer "$F2" &
W2=$!
wait_for 30 at_least acks 50 "$F1" && wait_for 30 at_least acks 50 "$F2" || fail "writers did not start"

tk=$(now_ms)
cl_kill9 "$L" || fail "kill -9 of the leader"
ok "killed the leader (node $L) with SIGKILL after $(acks "$F1") + $(acks "$F2") acknowledged writes"
NL=$(cl_wait_leader 15 "$F1" "$F2") || { fail "no new leader among $F1 and $F2"; finish; }
ok "new leader: node $NL, known to both survivors $(elapsed_since "$tk") ms after the kill"
if wait_for 20 at_least acks_after 50 "$F1" "$tk" && wait_for 20 at_least acks_after 50 "$F2" "$tk"; then
	ok "writes continue on both survivors (50 more acknowledged on each)"
else
	fail "writes did not resume: $(acks_after "$F1" "$tk") and $(acks_after "$F2" "$tk") after the kill"
fi
for k in "$F1" "$F2"; do
	# the first write begun after the kill, and the longest pause between two acknowledgements
	first=$(awk -v t="$tk" '$2 > t { print $3 - t; exit }' "$T/acked.$k")
	pause=$(awk 'NR > 1 && $3 - p > m { m = $3 - p } { p = $3 } END { print m + 0 }' "$T/acked.$k")
	echo "     node $k: first write begun after the kill acknowledged ${first:-?} ms after it;" \
		"longest pause between acknowledgements $pause ms;" \
		"$(grep -c failed "$T/failed.$k") write(s) failed meanwhile"
	check "node $k: writes resumed within 10 s of the kill" test "${first:-99999}" -lt 10000
	if grep -q failed "$T/failed.$k"; then
		check "node $k: failures are timeouts or I/O errors (outcome unknown)" \
			bash -c "! grep -v -e 'write .* failed' -e 'timed out' -e 'Input/output error' '$T/failed.$k'"
	fi
done
touch "$T/stop"
wait "$W1" "$W2"

# no acknowledged write lost: every one is on both survivors, with its data
lost=0
cl_sync "$F1" >/dev/null
cl_sync "$F2" >/dev/null
for k in "$F1" "$F2"; do
	while read -r i _; do
		for r in "$F1" "$F2"; do
			[[ "$(cat "$T/m$r/load/w$k-$i" 2>/dev/null)" == "$i" ]] || {
				lost=$((lost + 1))
				echo "   lost: w$k-$i on node $r" >&2
			}
		done
	done <"$T/acked.$k"
done
eq "every acknowledged write ($(acks "$F1") + $(acks "$F2")) is on both survivors" "$lost" 0
check "the survivors' trees are identical" cl_wait_same 20 "$F1" "$F2" || show_diff "$F1" "$F2"

# the old leader comes back, catches up and agrees
t0=$(now_ms)
cl_start "$L" || { fail "restart of node $L"; finish; }
if cl_wait_same 30 1 2 3; then
	ok "restarted node $L caught up: identical trees on the three nodes ($(elapsed_since "$t0") ms)"
else
	fail "node $L did not converge"
	show_diff "$F1" "$L"
fi
check "one leader known to all three" wait_for 10 cl_leader_ok 1 2 3
echo back >"$T/m$L/load/after" || fail "write through the restarted node"
cl_sync "$F1" >/dev/null
eq "a write through the restarted node is seen elsewhere" "$(cat "$T/m$F1/load/after")" back

# a restarted node serves reads only once caught up: stop a follower, change a node 200 times,
# restart it: its very first read shows the last value, never an older one
S=$F2
[[ $S == "$(cl_leader_of "$F1")" ]] && S=$L
echo v0 >"$T/m$F1/fresh" || fail "write v0"
cl_sync "$S" >/dev/null
cl_term "$S" || fail "stop node $S"
n0=$(grep -c "caught up (applied slot" "$T/d$S.log")
for ((i = 1; i <= 200; i++)); do echo "v$i" >"$T/m$F1/fresh" || fail "write v$i"; done
cl_start "$S" || { fail "restart of node $S"; finish; }
eq "restarted node $S: its first read shows the last value" "$(cat "$T/m$S/fresh")" v200
eq "restarted node $S: caught_up=1 in .zk/status" "$(cl_status "$S" caught_up)" 1
check "restarted node $S logs that it caught up before serving reads" \
	test "$(grep -c "caught up (applied slot" "$T/d$S.log")" -gt "$n0"
finish
