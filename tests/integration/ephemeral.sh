#!/usr/bin/env bash
# Ephemeral nodes bound to an open file: creating MOUNT/.zk/ephemeral/PATH makes PATH owned by a
# new session; the node is deleted when that open file is closed for the last time (exit, kill -9,
# the last of several processes sharing it), and when the daemon restarts (a crashed node's
# sessions are dead). Ephemeral nodes cannot have children.
. "$(dirname "$0")/lib.sh"
qfs_init "$@"
M=$T/mnt
start_fg "$T/data" "$M" || exit 1
exists() { [[ -e "$1" ]]; }
missing() { [[ ! -e "$1" ]]; }

mkdir "$M/workers"
exec 9>"$M/.zk/ephemeral/workers/w1"
echo "host-a:8080" >&9
check "the ephemeral node exists while its file is open" test -f "$M/workers/w1"
eq "writes on the descriptor set its data" "$(cat "$M/workers/w1")" "host-a:8080"
owner=$(zk "$M/workers/w1" ephemeralOwner)
check "user.zk.ephemeralOwner shows a session id (0x01 in the top byte: node 1)" grep -Eq '^0x1[0-9a-f]{14}$' <<<"$owner"
eq "user.zk.path on the descriptor" "$(getfattr --absolute-names --only-values -n user.zk.path /proc/$$/fd/9)" /workers/w1
if mkdir "$M/workers/w1/child" 2>"$T/err"; then fail "child of an ephemeral node"; else
	check "an ephemeral node cannot have children (ENOTDIR)" grep -q "Not a directory" "$T/err"; fi
if echo x 2>"$T/err" >"$M/.zk/sequential/workers/w1/c-"; then fail "sequential child of an ephemeral node"; else ok "no sequential child either"; fi
if echo x 2>"$T/err" >"$M/.zk/ephemeral/workers/w1"; then fail "second ephemeral of one name"; else
	check "creating an existing ephemeral name: EEXIST" grep -q "File exists" "$T/err"; fi
exec 9>&-
check "closing the file deletes the node" wait_for 5 missing "$M/workers/w1"

# a lock cycle (create, unlink, close) commits twice: the close of a session that owns nothing
# any more has nothing to delete and commits nothing
applied() { grep '^applied=' "$M/.zk/status" | cut -d= -f2; }
exec 9>"$M/.zk/ephemeral/workers/lk"
rm "$M/workers/lk"
a0=$(applied)
exec 9>&-
eq "closing the file of an unlinked ephemeral commits nothing" "$(applied)" "$a0"
exec 9>"$M/.zk/ephemeral/workers/lk"
check "its name can be created again" test -e "$M/workers/lk"
exec 9>&-
check "... and that one is deleted by its close" wait_for 5 missing "$M/workers/lk"

# two sessions, two owners
exec 8>"$M/.zk/ephemeral/workers/a"
exec 7>"$M/.zk/ephemeral/workers/b"
check "two sessions have different ids" test "$(zk "$M/workers/a" ephemeralOwner)" != "$(zk "$M/workers/b" ephemeralOwner)"
exec 8>&-
check "closing one session deletes its node" wait_for 5 missing "$M/workers/a"
check "... only its node" test -e "$M/workers/b"
exec 7>&-
check "... and the other's when closed" wait_for 5 missing "$M/workers/b"

# kill -9 of the holder
bash -c 'exec 9>"$1/.zk/ephemeral/workers/k"; echo held >&9; exec sleep 600' _ "$M" &
holder=$!
check "a holder process creates its node" wait_for 5 exists "$M/workers/k"
kill -9 "$holder"
check "kill -9 of the holder deletes the node" wait_for 5 missing "$M/workers/k"

# shared by fork: the node lives until the LAST process holding the file closes it
bash -c 'exec 9>"$1/.zk/ephemeral/workers/f"; (exec sleep 600) & echo $! >"$2"' _ "$M" "$T/child"
child=$(cat "$T/child")
check "the creator exited, its forked child still holds the file: node stays" exists "$M/workers/f"
kill -9 "$child"
check "the last holder dies: node deleted" wait_for 5 missing "$M/workers/f"

# ephemeral-sequential
n1=$(bash -c 'exec 9>"$1/.zk/ephemeral-sequential/workers/m-"; getfattr --absolute-names --only-values -n user.zk.path /proc/$BASHPID/fd/9' _ "$M")
check "ephemeral-sequential: a sequential name" grep -Eq '^/workers/m-[0-9]{10}$' <<<"$n1"
check "... deleted once its creator exits" wait_for 5 missing "$M$n1"
if mkdir "$M/.zk/ephemeral/workers/dir" 2>"$T/err"; then fail "mkdir ephemeral"; else
	check "mkdir under .zk/ephemeral: EPERM (no open file to hold it)" grep -q "not permitted" "$T/err"; fi

# quorumctl create -e holds the node until told to stop
"$QFSCTL" create -e "$M/workers/svc" "10.0.0.1" >"$T/out" </dev/null
check "create -e with stdin at EOF returns, node gone" wait_for 5 missing "$M/workers/svc"
sleep 600 | "$QFSCTL" create -e "$M/workers/svc" "10.0.0.1" >"$T/out" &
qpid=$!
check "quorumctl create -e: node exists while it runs" wait_for 5 exists "$M/workers/svc"
# (created, then written: the data arrives with the second commit)
check "... with its data" wait_for 5 bash -c "[[ \$(cat '$M/workers/svc') == 10.0.0.1 ]]"
eq "... prints its path" "$(cat "$T/out")" "$M/workers/svc"
pkill -TERM -P $$ -x sleep 2>/dev/null
check "... stdin ends: node deleted" wait_for 5 missing "$M/workers/svc"
wait "$qpid" 2>/dev/null
eq "... exit status 0" "$?" 0

# a daemon restart closes the sessions of its previous run
echo keep >"$M/workers/persistent"
bash -c 'exec 9>"$1/.zk/ephemeral/workers/r"; exec sleep 600' _ "$M" 2>/dev/null &
holder=$!
check "holder of /workers/r" wait_for 5 exists "$M/workers/r"
kill -9 "$PID"
wait_for 5 gone "$PID"
fusermount3 -uz "$M" 2>/dev/null
kill -9 "$holder" 2>/dev/null
start_fg "$T/data" "$M" || exit 1
check "after kill -9 of the daemon and a restart, the dead session's node is gone" missing "$M/workers/r"
eq "persistent nodes are kept" "$(cat "$M/workers/persistent")" keep
exec 9>"$M/.zk/ephemeral/workers/new"
check "new sessions work after the restart" exists "$M/workers/new"
exec 9>&-
check "... and close" wait_for 5 missing "$M/workers/new"
finish
