# Helpers for the cluster integration tests: N real daemons on 127.0.0.1, each mounted.
# Source it (it sources lib.sh), then call cl_init N "$@" (the CMake arguments: daemon, quorumctl).
#   node K: data $T/dK, log $T/dK.log, mount $T/mK, peer port ${CL_PORT[K]}, daemon ${CL_PID[K]}.
# Every daemon started is recorded for lib.sh's EXIT trap (unmount, stop by PID); stopped
# (SIGSTOP) daemons are continued first. A failing test prints the tail of every node's log; a
# sanitizer report in any node's log fails the test.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CL_N=0
CL_PEERS=""
CL_SECRET=""
CL_ARGS=() # extra daemon options for every start (cl_init's caller may set them)
declare -a CL_PORT CL_PID

cl_cleanup() {
	local rc=$? p k
	for p in "${QFS_PIDS[@]}"; do kill -CONT "$p" 2>/dev/null; done
	# stop the daemons here (not in lib.sh's trap) so that their sanitizer reports at exit are
	# in the logs before they are read
	for p in "${QFS_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${QFS_PIDS[@]}"; do wait_gone "$p" 10 || kill -KILL "$p" 2>/dev/null; done
	for k in "$T"/d*.log; do
		[[ -f "$k" ]] || continue
		if grep -q -e "Sanitizer" -e "runtime error:" "$k"; then
			echo "FAIL - sanitizer report in ${k##*/}:" >&2
			grep -A 12 -e "Sanitizer" -e "runtime error:" "$k" | head -n 40 >&2
			rc=1
		fi
	done
	if ((rc != 0)); then
		for ((k = 1; k <= CL_N; k++)); do
			[[ -f "$T/d$k.log" ]] || continue
			echo "--- tail of node $k's log" >&2
			tail -n 25 "$T/d$k.log" >&2
		done
	fi
	(exit "$rc")
	qfs_cleanup
}

# port_free PORT: nothing listens on PORT (TCP).
port_free() { [[ -z "$(ss -Htln "( sport = :$1 )" 2>/dev/null)" ]]; }

# cl_init N DAEMON QUORUMCTL: N nodes' ports (20000..31999: below the ephemeral range, so that
# no outgoing connection holds one), a shared secret.
cl_init() {
	local n=$1 k p
	shift
	qfs_init "$@"
	trap cl_cleanup EXIT
	CL_N=$n
	CL_PEERS=""
	for ((k = 1; k <= n; k++)); do
		while :; do
			p=$((20000 + RANDOM % 12000))
			[[ " ${CL_PORT[*]} " == *" $p "* ]] && continue
			port_free "$p" && break
		done
		CL_PORT[k]=$p
		CL_PEERS+="${CL_PEERS:+,}$k=127.0.0.1:$p"
	done
	CL_SECRET=$T/secret
	head -c 32 /dev/urandom | base64 >"$CL_SECRET"
	chmod 600 "$CL_SECRET"
}

# cl_start K [ARGS...]: start node K in the foreground (log appended to $T/dK.log), wait for the
# mount. Sets CL_PID[K].
cl_start() {
	local k=$1
	shift
	mkdir -p "$T/d$k" "$T/m$k"
	"$QFS" -f --id "$k" --peers "$CL_PEERS" --secret-file "$CL_SECRET" --data "$T/d$k" \
		"${CL_ARGS[@]}" "$@" "$T/m$k" >>"$T/d$k.log" 2>&1 &
	CL_PID[k]=$!
	QFS_PIDS+=("$!")
	QFS_MNTS+=("$T/m$k")
	if ! wait_for 20 is_mounted "$T/m$k"; then
		echo "node $k did not mount; log:" >&2
		tail -n 30 "$T/d$k.log" >&2
		return 1
	fi
}

# cl_start_all: nodes 1..N.
cl_start_all() {
	local k
	for ((k = 1; k <= CL_N; k++)); do cl_start "$k" || return 1; done
}

# cl_term K: SIGTERM node K, wait for it to exit and unmount.
cl_term() { stop_pid "${CL_PID[$1]}" "$T/m$1"; }

# cl_stopped PID: no thread of PID can run its own code: each is stopped (T), or inside an
# uninterruptible system call (D), at whose end it stops.
cl_stopped() {
	local f k v st
	for f in /proc/"$1"/task/*/status; do
		st=
		while read -r k v _; do
			if [[ $k == State: ]]; then st=$v; break; fi
		done <"$f"
		[[ $st == T || $st == D ]] || return 1
	done
}

# cl_freeze K...: SIGSTOP nodes K..., and wait until each is stopped. kill(2) returns before a
# multi-threaded process has stopped: one of its threads must first run to start the group stop,
# and meanwhile the others go on (on a loaded machine a frozen leader committed a write 1 ms
# after kill returned: FAULTS.md, Found 10).
cl_freeze() {
	local k
	for k in "$@"; do kill -STOP "${CL_PID[$k]}"; done
	for k in "$@"; do wait_for 5 cl_stopped "${CL_PID[$k]}" || return 1; done
}

# cl_kill9 K: SIGKILL node K, wait for it, detach its dead mount.
cl_kill9() {
	local p=${CL_PID[$1]}
	kill -KILL "$p"
	wait_for 10 gone "$p" || return 1
	wait "$p" 2>/dev/null
	fusermount3 -uz "$T/m$1" 2>/dev/null || umount -l "$T/m$1" 2>/dev/null
	wait_for 5 not_mounted "$T/m$1"
}

# cl_status K KEY: the value of KEY in node K's .zk/status.
cl_status() { sed -n "s/^$2=//p" "$T/m$1/.zk/status"; }

# cl_leader_of K: the leader node K knows of (0: none).
cl_leader_of() { cl_status "$1" leader; }

# cl_agreed_leader K...: every node named agrees on one leader, which says role=leader. Prints it.
cl_agreed_leader() {
	local k l first=""
	for k in "$@"; do
		l=$(cl_leader_of "$k") || return 1
		[[ -n "$l" && "$l" != 0 ]] || return 1
		[[ -z "$first" || "$first" == "$l" ]] || return 1
		first=$l
	done
	# the leader must be one of the nodes named, and know it
	[[ " $* " == *" $first "* ]] || return 1
	[[ "$(cl_status "$first" role)" == leader ]] || return 1
	echo "$first"
}
cl_leader_ok() { cl_agreed_leader "$@" >/dev/null; }

# cl_wait_leader SECS K...: wait until nodes K... agree on a leader among them; prints it.
# One check both decides and prints (two could see different leaders: a change in between).
cl_wait_leader() {
	local limit=$(($(now_ms) + $1 * 1000)) l
	shift
	until l=$(cl_agreed_leader "$@"); do
		(($(now_ms) > limit)) && return 1
		sleep 0.02
	done
	echo "$l"
}

# cl_sync K: ZooKeeper's sync through node K's mount (prints zxid=...).
cl_sync() { cat "$T/m$1/.zk/sync"; }

# cl_same_applied K...: the nodes report the same applied zxid.
cl_same_applied() {
	local k a first=""
	for k in "$@"; do
		a=$(cl_status "$k" applied) || return 1
		[[ -z "$first" || "$first" == "$a" ]] || return 1
		first=$a
	done
}

# cl_dump K: node K's whole tree as seen through its mount: every path with its type, a hash of
# its data and its stat (getfattr -d), in a stable order.
cl_dump() {
	(
		cd "$T/m$1" || exit 1
		local -a paths data
		local p
		mapfile -t paths < <(find . -path ./.zk -prune -o -print | LC_ALL=C sort)
		for p in "${paths[@]}"; do
			if [[ -d "$p" ]]; then data+=("$p/.data"); else data+=("$p"); fi
		done
		find . -path ./.zk -prune -o -printf '%y %p %s\n' | LC_ALL=C sort
		sha256sum -- "${data[@]}"
		getfattr -d --absolute-names -- "${paths[@]}"
	)
}

# cl_same_trees K...: after a sync on each, every node's dump is identical to the first's.
# Leaves the dumps in $T/dump.K.
cl_same_trees() {
	local k first=""
	for k in "$@"; do
		cl_sync "$k" >/dev/null || return 1
	done
	for k in "$@"; do
		cl_dump "$k" >"$T/dump.$k" 2>&1 || return 1
		if [[ -n "$first" ]] && ! cmp -s "$T/dump.$first" "$T/dump.$k"; then
			return 1
		fi
		first=$k
	done
}

# cl_wait_same SECS K...: wait until the nodes have applied the same zxid and show the same tree.
cl_wait_same() {
	local secs=$1
	shift
	wait_for "$secs" cl_same_applied "$@" && wait_for "$secs" cl_same_trees "$@"
}

# show_diff A B: the first lines where two dumps differ (for a failure message).
show_diff() { diff "$T/dump.$1" "$T/dump.$2" | head -n 10 >&2; }

# elapsed_since T0: milliseconds since T0 (from now_ms).
elapsed_since() { echo $(($(now_ms) - $1)); }
