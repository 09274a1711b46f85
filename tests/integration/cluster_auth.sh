#!/usr/bin/env bash
# Peers that must not join are refused at the handshake, logged, and nothing breaks:
#  - a node with the wrong secret; a node of another cluster (--cluster-id); a node speaking another
#    protocol version (test builds); an unknown node id;
#  - garbage bytes and an HTTP request on a peer port;
# meanwhile the two good nodes keep a leader and serve writes, and the refused node never applies
# anything. Finally the third node, started right, joins and agrees.
. "$(dirname "$0")/cluster_lib.sh"
cl_init 3 "$@"
CL_ARGS=(--write-timeout 2000)
cl_start 1 || exit 1
cl_start 2 || exit 1
L=$(cl_wait_leader 20 1 2) || { fail "no leader among nodes 1 and 2"; finish; }
ok "leader of the two good nodes: node $L"
echo ours >"$T/m1/ours"

# logged NODE... PATTERN: one of the nodes' logs has a line matching PATTERN
logged() {
	local pat=${*: -1} k
	for k in "${@:1:$#-1}"; do grep -q -e "$pat" "$T/d$k.log" 2>/dev/null && return 0; done
	return 1
}
peer3_down() { grep -qx 'peer.3=down' "$T/m1/.zk/status" && grep -qx 'peer.3=down' "$T/m2/.zk/status"; }
# refused_node WHAT: node 3 (running) is kept out; a write through it times out; it applied nothing
refused_node() {
	check "$1: nodes 1 and 2 show peer.3=down" peer3_down
	if echo x 2>"$T/err" >"$T/m3/intruder"; then fail "$1: a write through node 3 must fail"; else
		check "$1: a write through node 3 fails (timed out)" grep -q "timed out" "$T/err"
	fi
	eq "$1: node 3 applied nothing" "$(cl_status 3 applied)" 0x0000000000000000
	check "$1: the intruder's write is not on node 1" test ! -e "$T/m1/intruder"
	echo "$1" >"$T/m2/alive" || fail "$1: a write through node 2"
	cl_sync 1 >/dev/null
	eq "$1: the good nodes keep working" "$(cat "$T/m1/alive")" "$1"
}

# --- the wrong secret
head -c 32 /dev/urandom | base64 >"$T/other-secret"
cl_start 3 --secret-file "$T/other-secret" || exit 1
check "wrong secret: refused and logged" wait_for 10 logged 1 2 3 "authentication failed"
refused_node "wrong secret"
cl_term 3 || fail "stop node 3"
rm -rf "$T/d3"

# --- another cluster's id (node 3 on an empty directory, told its cluster id)
cl_start 3 --cluster-id 77777777777777777777777777777777 || exit 1
check "another cluster id: refused and logged" wait_for 10 logged 1 2 3 "cluster id differs"
refused_node "another cluster"
cl_term 3 || fail "stop node 3"
rm -rf "$T/d3"

# --- another protocol version (test builds: QFS_TEST_NET_PROTO makes node 3 advertise version 99)
if [[ "${QFS_HOOKS:-0}" == 1 ]]; then
	QFS_TEST_NET_PROTO=99 cl_start 3 || exit 1
	check "another protocol version: refused and logged by the others" \
		wait_for 10 logged 1 2 "refused a connection from node 3 (protocol 99): protocol version differs"
	check "another protocol version: node 3 logs why it is refused" \
		wait_for 10 logged 3 "protocol version differs"
	refused_node "another protocol version"
	cl_term 3 || fail "stop node 3"
	rm -rf "$T/d3"
else
	echo "skip - another protocol version (not a QFS_TEST_HOOKS build)"
fi

# --- an unknown node id: node 4 of a five-node list that nodes 1..3 do not have
P4=$((CL_PORT[3] + 1))
port_free "$P4" || P4=$((CL_PORT[3] + 2))
mkdir -p "$T/d4" "$T/m4"
"$QFS" -f --id 4 --peers "$CL_PEERS,4=127.0.0.1:$P4,5=127.0.0.1:$((P4 + 1))" --secret-file "$CL_SECRET" \
	--data "$T/d4" "$T/m4" >>"$T/d4.log" 2>&1 &
QFS_PIDS+=("$!")
QFS_MNTS+=("$T/m4")
PID4=$!
wait_for 20 is_mounted "$T/m4" || fail "node 4 did not mount"
check "unknown node id: refused and logged" wait_for 10 logged 1 2 4 "not a member of this cluster"
stop_pid "$PID4" "$T/m4" || fail "stop node 4"

# --- garbage on a peer port
for k in 1 2; do
	head -c 4096 /dev/urandom >"/dev/tcp/127.0.0.1/${CL_PORT[k]}" 2>/dev/null
	printf 'GET / HTTP/1.0\r\n\r\n' >"/dev/tcp/127.0.0.1/${CL_PORT[k]}" 2>/dev/null
done
check "garbage on the peer port: refused and logged" wait_for 10 logged 1 "not a quorumfs peer"
check "node 1 is still running" kill -0 "${CL_PID[1]}"
check "node 2 is still running" kill -0 "${CL_PID[2]}"
echo garbage-survived >"$T/m1/alive" || fail "write after garbage"
cl_sync 2 >/dev/null
eq "after garbage: writes flow" "$(cat "$T/m2/alive")" garbage-survived
check "after garbage: the leader is unchanged" test "$(cl_agreed_leader 1 2)" = "$L"

# --- node 3, started right, joins and agrees
cl_start 3 || exit 1
if cl_wait_same 20 1 2 3; then ok "node 3 with the right secret joins: identical trees"; else
	fail "node 3 did not join"
	show_diff 1 3
fi
eq "node 3 reads what the cluster wrote" "$(cat "$T/m3/ours")" ours
finish
