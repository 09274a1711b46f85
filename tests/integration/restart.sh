#!/usr/bin/env bash
# A restart of a tree with 100,000 nodes takes under a second: from starting the daemon to the
# mount answering (the command returns only once mounted) plus reads deep in the tree.
. "$(dirname "$0")/lib.sh"
qfs_init "$@"
MKTREE=$3
M=$T/mnt
D=$T/data
mkdir -p "$D" "$M"
"$MKTREE" "$D" 100 1000 || { fail "building the tree"; finish; }
ok "store holds /bulk: 100 directories x 1000 nodes (100,100 nodes)"

for round in 1 2 3; do
	t0=$(now_ms)
	"$QFS" --data "$D" "$M" || { fail "start"; finish; }
	QFS_MNTS+=("$M")
	DPID=$(lock_holder "$D")
	QFS_PIDS+=("$DPID")
	v=$(cat "$M/bulk/d099/n00999")
	n=$(zk "$M/bulk" numChildren)
	t1=$(now_ms)
	eq "round $round: deep node readable" "$v" "value 99.999"
	eq "round $round: /bulk has 100 children" "$n" 100
	echo "     restart to first reads: $((t1 - t0)) ms"
	check "round $round: restart of a 100,000-node tree under a second ($((t1 - t0)) ms)" test $((t1 - t0)) -lt 1000
	kill -TERM "$DPID"
	wait_for 10 gone "$DPID" || fail "stop"
	wait_for 5 not_mounted "$M"
done
"$QFS" --data "$D" "$M" || { fail "start"; finish; }
DPID=$(lock_holder "$D")
QFS_PIDS+=("$DPID")
eq "a directory of 1000 nodes lists fully" "$(ls "$M/bulk/d042" | wc -l)" 1000
eq "node data through the mount" "$(cat "$M/bulk/d042/n00420")" "value 42.420"
echo changed >"$M/bulk/d042/n00420"
eq "writes after restart" "$(ver "$M/bulk/d042/n00420")" 1
finish
