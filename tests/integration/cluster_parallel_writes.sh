#!/usr/bin/env bash
# Writers of one node through one mount commit side by side when they overwrite it in place (an
# open without O_TRUNC, a write that stays within the node's length): the daemon asks the kernel
# for parallel direct writes (FOPEN_PARALLEL_DIRECT_WRITES), so the kernel does not hold the
# file's inode lock for each write's whole commit. Shown with the followers frozen, so that no
# write can commit: every writer's write must reach the daemon (.zk/status writes_in_flight=),
# where without the flag one would, the others waiting for the lock in the kernel. Then every
# write commits once: the version counts each of them, and the value is one of them. The same for
# transactions written to .zk/multi through one mount, each on its own descriptor.
. "$(dirname "$0")/cluster_lib.sh"
cl_init 3 "$@"
cl_start_all || exit 1
L=$(cl_wait_leader 20 1 2 3) || {
	fail "no leader"
	finish
}
ok "leader: node $L"
F=()
for k in 1 2 3; do ((k == L)) || F+=("$k"); done
M=$T/m$L
W=6

printf '%016d' 0 >"$M/hot" || fail "create /hot"
v0=$(ver "$M/hot")
eq "flight counter idle" "$(cl_status "$L" writes_in_flight)" 0

# writer K: open without O_TRUNC, one write of 16 bytes at offset 0, close; its status to a file
writer() {
	python3 - "$M/hot" "$1" >"$T/w.$1" 2>&1 <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
n = os.pwrite(fd, ("writer-%09d" % int(sys.argv[2])).encode(), 0)
os.close(fd)
print("wrote", n)
EOF
}

in_flight() { (($(cl_status "$L" writes_in_flight) >= W)); }
# all_in_flight WHAT FN: freeze the followers, run FN 1 .. FN W in the background, check that all
# W reach the leader's daemon at once, let the followers go on, wait for every FN.
all_in_flight() {
	local what=$1 fn=$2 i k p pids=()
	cl_freeze "${F[@]}" || fail "followers did not stop"
	for ((i = 1; i <= W; i++)); do
		"$fn" "$i" &
		pids+=("$!")
		QFS_PIDS+=("$!") # stopped by the EXIT trap if the test ends early
	done
	if wait_for 10 in_flight; then
		ok "$W $what through one mount in flight at once"
	else
		fail "$what in flight: $(cl_status "$L" writes_in_flight), want $W"
	fi
	for k in "${F[@]}"; do kill -CONT "${CL_PID[$k]}"; done
	for p in "${pids[@]}"; do wait "$p" || fail "$what: $p exited with $?"; done
}

all_in_flight "writes of one node" writer
for ((i = 1; i <= W; i++)); do
	eq "writer $i" "$(cat "$T/w.$i")" "wrote 16"
done
eq "every write committed once" "$(ver "$M/hot")" "$((v0 + W))"
check "the value is one writer's" grep -qE '^writer-0000000[0-9]{2}$' "$M/hot"
eq "flight counter back to idle" "$(cl_status "$L" writes_in_flight)" 0

# the same node through a follower: every replica agrees
cl_sync "${F[0]}" >/dev/null
eq "replica agrees" "$(cat "$T/m${F[0]}/hot")" "$(cat "$M/hot")"

# .zk/multi: one transaction per descriptor, all in flight at once
mkdir "$M/tx" || fail "mkdir /tx"
multi() {
	python3 - "$M/.zk/multi" "$1" >"$T/x.$1" 2>&1 <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.write(fd, ("create /tx/n%s v%s\nset /tx/n%s w%s\n" % ((sys.argv[2],) * 4)).encode())
print(os.read(fd, 4096).decode(), end="")
os.close(fd)
EOF
}
all_in_flight "transactions on .zk/multi" multi
for ((i = 1; i <= W; i++)); do
	eq "transaction $i" "$(head -n 1 "$T/x.$i")" "ok create /tx/n$i 0"
	eq "transaction $i's node" "$(cat "$M/tx/n$i")" "w$i"
done
eq "flight counter idle again" "$(cl_status "$L" writes_in_flight)" 0
finish
