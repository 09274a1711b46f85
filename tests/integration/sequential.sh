#!/usr/bin/env bash
# Sequential nodes: creating MOUNT/.zk/sequential/PATH creates PATH followed by the parent's
# counter (%010d of its cversion); the creator learns the name through user.zk.path on its open
# descriptor, and quorumctl create -s prints it. Concurrent creators get unique, increasing names.
. "$(dirname "$0")/lib.sh"
qfs_init "$@"
M=$T/mnt
start_fg "$T/data" "$M" || exit 1

eq ".zk lists the creation modes" "$(ls "$M/.zk" | grep -Ex 'ephemeral|ephemeral-sequential|sequential' | tr '\n' ' ')" "ephemeral ephemeral-sequential sequential "
check ".zk/sequential is a directory" test -d "$M/.zk/sequential"
eq ".zk/sequential lists nothing" "$(ls -A "$M/.zk/sequential")" ""

mkdir "$M/app"
echo one >"$M/.zk/sequential/app/job-"
echo two >"$M/.zk/sequential/app/job-"
eq "two creations of one name: two sequential nodes" "$(ls "$M/app" | tr '\n' ' ')" "job-0000000000 job-0000000001 "
eq "data written through the creating descriptor" "$(cat "$M/app/job-0000000001")" two
eq "created then written once: version 1" "$(ver "$M/app/job-0000000001")" 1
eq "a persistent node (no owner)" "$(zk "$M/app/job-0000000001" ephemeralOwner)" 0x0

# the creator learns the name from its open descriptor
name=$(bash -c 'exec 9>"$1/.zk/sequential/app/job-"; getfattr --absolute-names --only-values -n user.zk.path "/proc/$BASHPID/fd/9"' _ "$M")
eq "user.zk.path on the open descriptor names the created node" "$name" /app/job-0000000002
eq "user.zk.path on any node is its path" "$(getfattr --absolute-names --only-values -n user.zk.path "$M/app/job-0000000000")" /app/job-0000000000
eq "getfattr -d still lists only the stat" "$(getfattr -d --absolute-names "$M/app/job-0000000000" | grep -c '^user')" 11

# directories, the root, errors
mkdir "$M/.zk/sequential/app/dir-"
check "mkdir under .zk/sequential makes a sequential directory node" test -d "$M/app/dir-0000000003"
echo r >"$M/.zk/sequential/root-"
check "sequential node at the root" test -f "$M/root-0000000001"
mkdir "$M/app/sub"
echo s >"$M/.zk/sequential/app/sub/x-"
eq "nested directories are reachable" "$(cat "$M/app/sub/x-0000000000")" s
if echo x 2>"$T/err" >"$M/.zk/sequential/missing/x-"; then fail "missing parent"; else
	check "missing parent: ENOENT" grep -q "No such file" "$T/err"; fi
if echo x 2>"$T/err" >"$M/.zk/sequential/app/job-0000000000/x-"; then fail "under a file node"; else
	check "under a file node: refused" grep -Eq "Not a directory|No such file" "$T/err"; fi
if rm "$M/.zk/sequential/app" 2>/dev/null || rmdir "$M/.zk/sequential/app" 2>/dev/null; then fail "remove through .zk"; else ok "nothing is removed through .zk/sequential"; fi
check "... app is still there" test -d "$M/app"

# quorumctl create
out=$("$QFSCTL" create -s "$M/app/job-" hello)
eq "quorumctl create -s prints the created path" "$out" "$M/app/job-0000000005"
eq "... with its data" "$(cat "$out")" hello
eq "quorumctl create: plain" "$("$QFSCTL" create "$M/app/plain" v)" "$M/app/plain"
if "$QFSCTL" create "$M/app/plain" 2>"$T/err"; then fail "create of an existing node"; else
	check "create of an existing node: 'node exists', exit 1" grep -q "node exists" "$T/err"; fi
eq "quorumctl ls" "$("$QFSCTL" ls "$M/app" | tr '\n' ' ')" "dir-0000000003 job-0000000000 job-0000000001 job-0000000002 job-0000000005 plain sub "

# concurrent creators: unique and, for each creator, increasing
mkdir "$M/q"
pids=()
for c in 1 2 3 4; do
	(for i in $(seq 1 25); do "$QFSCTL" create -s "$M/q/n-" "$c" >>"$T/c$c" || echo FAIL >>"$T/c$c"; done) &
	pids+=($!)
done
wait "${pids[@]}"
eq "4 x 25 concurrent creations: 100 nodes" "$(ls "$M/q" | wc -l)" 100
eq "... no failure" "$(cat "$T"/c? | grep -c FAIL)" 0
eq "... 100 distinct names" "$(cat "$T"/c? | sort -u | wc -l)" 100
eq "... numbered 0 to 99" "$(ls "$M/q" | sed 's/n-0*//; s/^$/0/' | sort -n | tr '\n' ' ')" "$(seq 0 99 | tr '\n' ' ')"
inc=1
for c in 1 2 3 4; do sort -c "$T/c$c" 2>/dev/null || inc=0; done
eq "... each creator's names increase" "$inc" 1

# the counter survives a restart (it is the parent's cversion)
stop_pid "$PID" "$M" || fail "stop"
start_fg "$T/data" "$M" || exit 1
eq "after a restart the sequence continues" "$("$QFSCTL" create -s "$M/q/n-")" "$M/q/n-0000000100"
finish
