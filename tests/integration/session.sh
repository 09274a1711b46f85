#!/usr/bin/env bash
# Session expiry decided by the cluster (3 real daemons, session timeout 1000 ms): an ephemeral
# node stays while its node is healthy, also across a kill -9 of the leader; it disappears on the
# other nodes about one timeout after its node is frozen (SIGSTOP), and the frozen node, continued,
# learns it (its open descriptor fails with EKEYEXPIRED) and opens a new epoch; kill -9 of the
# holding process deletes its node at once everywhere.
. "$(dirname "$0")/cluster_lib.sh"
cl_init 3 "$@"
TIMEOUT=1000
mkdir -p "$T/bad"
if "$QFS" -f --id 1 --peers "$CL_PEERS" --secret-file "$CL_SECRET" --data "$T/bad" \
	--min-session-timeout 2000 --max-session-timeout 1000 "$T/bad" 2>"$T/bad.err"; then
	fail "a minimum session timeout above the maximum must be refused"
else
	check "a minimum session timeout above the maximum is refused, with a message" \
		grep -q "minimum session timeout (2000 ms) is above the maximum (1000 ms)" "$T/bad.err"
fi
CL_ARGS=(--session-timeout "$TIMEOUT")
cl_start_all || exit 1
L=$(cl_wait_leader 20 1 2 3) || { fail "no leader"; finish; }
H=$((L % 3 + 1)) O=$(((L + 1) % 3 + 1)) # the holder and the other follower
ok "leader: node $L; ephemerals held through node $H"
epoch_open() { local e; e=$(cl_status "$1" session_epoch) && [[ -n "$e" && "$e" != 0 ]]; }
eq "no session epoch before the first ephemeral (a restart commits nothing)" "$(cl_status "$H" session_epoch)" 0
eq "negotiated timeout shown in .zk/status" "$(cl_status "$H" session_timeout_ms)" "$TIMEOUT"

mkdir "$T/m$L/svc"
cl_sync "$H" >/dev/null
exec 9>"$T/m$H/.zk/ephemeral/svc/h"
echo holder >&9
check "the first ephemeral create opened an epoch" epoch_open "$H"
E0=$(cl_status "$H" session_epoch)
exists_on() { [[ -e "$T/m$1/svc/h" ]]; }
missing_on() { [[ ! -e "$T/m$1/svc/h" ]]; }
check "the ephemeral is seen on node $O" wait_for 10 exists_on "$O"

# stays_for MS K...: the node exists on every node K for MS milliseconds (polled).
stays_for() {
	local until=$(($(now_ms) + $1)) k
	shift
	while (($(now_ms) < until)); do
		for k in "$@"; do exists_on "$k" || return 1; done
		sleep 0.05
	done
}
check "it stays while node $H is healthy (3 timeouts)" stays_for $((3 * TIMEOUT)) "$H" "$O" "$L"

# kill -9 of the leader: the new leader gives every node a full timeout from its election
tk=$(now_ms)
cl_kill9 "$L" || fail "kill -9 of the leader"
NL=$(cl_wait_leader 15 "$H" "$O") || { fail "no new leader"; finish; }
ok "new leader: node $NL, $(elapsed_since "$tk") ms after the kill"
check "no spurious expiry: the ephemeral stays 3 timeouts after the new election" \
	stays_for $((3 * TIMEOUT)) "$H" "$O"
eq "the holder's epoch did not change" "$(cl_status "$H" session_epoch)" "$E0"
cl_start "$L" || fail "restart of node $L"
check "node $L, restarted, sees the ephemeral" wait_for 20 exists_on "$L"

# SIGSTOP of the holder's daemon: the leader expires its epoch
L=$(cl_wait_leader 20 1 2 3) || fail "no leader after the restart"
if [[ "$L" == "$H" ]]; then
	ok "node $H became leader: freezing it costs an election too"
fi
O=$((H % 3 + 1))
P=$(((H + 1) % 3 + 1))
ts=$(now_ms)
cl_freeze "$H" || fail "node $H did not stop"
if wait_for 20 missing_on "$O" && wait_for 5 missing_on "$P"; then
	took=$(elapsed_since "$ts")
	ok "the ephemeral of frozen node $H disappeared on nodes $O and $P ${took} ms after SIGSTOP (timeout $TIMEOUT ms)"
	check "within timeout + 4 s (a loaded machine)" test "$took" -lt $((TIMEOUT + 4000))
else
	fail "the ephemeral of frozen node $H is still there on node $O or $P"
fi
cl_wait_same 20 "$O" "$P" || fail "nodes $O and $P differ after the expiry"
grep -h "expiring its session epoch" "$T"/d*.log | head -n 2 | sed 's/^/     /'
kill -CONT "${CL_PID[$H]}"
expired_seen() { [[ "$(cl_status "$H" sessions_expired)" == 1 ]] && epoch_open "$H"; }
check "node $H, continued, learns the expiry and opens a new epoch" wait_for 20 expired_seen
E1=$(cl_status "$H" session_epoch)
check "its new epoch is above the old one ($E0 -> $E1)" test "$E1" -gt "$E0"
if err=$(echo again 2>&1 >&9); then
	fail "a write on the expired descriptor succeeded"
else
	eq "a write on the expired descriptor fails" "${err##*: }" "Key has expired"
fi
exec 9>&-
check "node $H shows the node gone too" wait_for 10 missing_on "$H"
exec 9>"$T/m$H/.zk/ephemeral/svc/h"
echo back >&9
check "a new ephemeral through node $H is seen on node $O" wait_for 10 exists_on "$O"
exec 9>&-
check "closing it deletes it" wait_for 10 missing_on "$O"

# kill -9 of the holding process: its session closes at once, everywhere
bash -c 'exec 8>"$1"; echo p >&8; exec sleep 300' _ "$T/m$H/.zk/ephemeral/svc/p" &
HP=$!
QFS_PIDS+=("$HP")
pexists() { [[ -e "$T/m$1/svc/p" ]]; }
pmissing() { [[ ! -e "$T/m$1/svc/p" ]]; }
check "the process's ephemeral is seen on node $O" wait_for 10 pexists "$O"
ts=$(now_ms)
kill -KILL "$HP"
if wait_for 10 pmissing "$O" && wait_for 5 pmissing "$P"; then
	ok "kill -9 of the holding process: gone on nodes $O and $P after $(elapsed_since "$ts") ms"
else
	fail "the killed process's ephemeral stays"
fi
finish
