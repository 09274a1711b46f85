#!/usr/bin/env bash
# quorumctl lock (ZooKeeper's lock recipe over ephemeral-sequential nodes and watch files) and
# quorumctl elect: holders never overlap (a shared counter node and a marker directory); a lock
# is released when its holder is kill -9ed; a leader that loses its node stops its command.
# (Commands that outlive their quorumctl are put on QFS_PIDS: the EXIT trap stops them.)
. "$(dirname "$0")/lib.sh"
qfs_init "$@"
M=$T/mnt
start_fg "$T/data" "$M" || exit 1
exists() { [[ -e "$1" ]]; }



# --- mutual exclusion: 4 processes x 10 critical sections, each a read-increment-write of a node
echo 0 >"$M/counter"
cat >"$T/cs.sh" <<'SH'
M=$1 T=$2
mkdir "$T/inside" 2>/dev/null || echo overlap >>"$T/overlaps"
c=$(cat "$M/counter")
sleep 0.01
echo $((c + 1)) >"$M/counter"
rmdir "$T/inside"
SH
pids=()
for w in 1 2 3 4; do
	(for i in $(seq 1 10); do "$QFSCTL" lock "$M/locks/l" -- bash "$T/cs.sh" "$M" "$T" || echo "lock failed" >>"$T/overlaps"; done) &
	pids+=($!)
done
wait "${pids[@]}"
eq "4 x 10 locked read-increment-writes: counter 40 (no lost update)" "$(cat "$M/counter")" 40
eq "no two holders inside at once" "$(cat "$T/overlaps" 2>/dev/null | wc -l)" 0
eq "every lock node is gone afterwards" "$(ls "$M/locks/l" | wc -l)" 0

# --- a holder killed with -9 releases the lock; waiters wait until then
"$QFSCTL" lock "$M/locks/k" -- bash -c "echo \$\$ >'$T/holder'; exec sleep 600" &
qp1=$!
check "first holder runs its command" wait_for 5 exists "$T/holder"
QFS_PIDS+=("$(cat "$T/holder")")
"$QFSCTL" lock "$M/locks/k" -- touch "$T/got" &
qp2=$!
check "a second holder waits (two lock nodes)" wait_for 5 bash -c "[[ \$(ls '$M/locks/k' | wc -l) == 2 ]]"
check "... and does not run its command" bash -c "! timeout 1 bash -c 'until [[ -e $T/got ]]; do sleep 0.05; done'"
eq "the lock node holds its holder's pid" "$(cat "$M/locks/k/$(ls "$M/locks/k" | head -1)")" "$qp1"
kill -9 "$qp1"
check "kill -9 of the holder: the waiter gets the lock" wait_for 5 exists "$T/got"
wait "$qp2"
eq "... and exits with its command's status" "$?" 0
kill -9 "$(cat "$T/holder")" 2>/dev/null
eq "exit status is the command's" "$("$QFSCTL" lock "$M/locks/k" -- sh -c 'exit 7'; echo $?)" 7

# --- leader election
"$QFSCTL" elect "$M/election" -- bash -c "echo A >'$T/leader'; echo \$\$ >'$T/apid'; exec sleep 600" &
ea=$!
check "the first candidate leads" wait_for 5 exists "$T/apid"
QFS_PIDS+=("$(cat "$T/apid")")
"$QFSCTL" elect "$M/election" -- bash -c "echo B >'$T/leader'; echo \$\$ >'$T/bpid'; exec sleep 600" &
eb=$!
check "the second is a candidate" wait_for 5 bash -c "[[ \$(ls '$M/election' | wc -l) == 2 ]]"
eq "only the leader runs its command" "$(cat "$T/leader")" A
kill -9 "$ea"
kill -9 "$(cat "$T/apid")" 2>/dev/null
check "the leader dies: the other candidate leads" wait_for 5 exists "$T/bpid"
QFS_PIDS+=("$(cat "$T/bpid")")
eq "... B runs" "$(cat "$T/leader")" B
# leadership lost: its candidate node deleted under it
rm "$M/election/$(ls "$M/election" | head -1)"
wait "$eb"
eq "a leader whose node is deleted stops its command and exits 3" "$?" 3
check "... its command got SIGTERM" wait_for 5 bash -c "! kill -0 $(cat "$T/bpid") 2>/dev/null"

# lock lost while its command runs (its node deleted, as a session expiry does): SIGTERM, exit 3
"$QFSCTL" lock "$M/locks/lost" -- bash -c 'echo $$ >"$1/lpid"; exec sleep 600' _ "$T" &
el=$!
check "a lock holder runs its command" wait_for 5 test -s "$T/lpid"
QFS_PIDS+=("$(cat "$T/lpid")")
rm "$M/locks/lost/$(ls "$M/locks/lost" | head -1)"
wait "$el"
eq "a holder whose lock node is deleted stops its command and exits 3" "$?" 3
check "... its command got SIGTERM" wait_for 5 bash -c "! kill -0 $(cat "$T/lpid") 2>/dev/null"

# a path outside any quorumfs mount (e.g. the daemon is gone): a clear message, exit 1
mkdir -p "$T/plain"
if "$QFSCTL" lock "$T/plain/L" -- true 2>"$T/err"; then fail "lock outside a mount"; else
	check "lock outside a mount: 'not inside a quorumfs mount'" grep -q "not inside a quorumfs mount" "$T/err"; fi

finish
