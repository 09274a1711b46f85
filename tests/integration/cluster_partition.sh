#!/usr/bin/env bash
# A node left in a minority (the two others frozen with SIGSTOP) keeps serving reads, and never
# acknowledges a write: write(2), mkdir and sync fail after the write timeout (2 s here) with
# ETIMEDOUT or EIO. Once the others continue, it converges by itself; the failed write's outcome
# was unknown (applied once or not at all, the same everywhere). Done twice: with the minority
# node a follower, then the leader.
. "$(dirname "$0")/cluster_lib.sh"
cl_init 3 "$@"
CL_ARGS=(--write-timeout 2000)
cl_start_all || exit 1
L=$(cl_wait_leader 20 1 2 3) || { fail "no leader"; finish; }
ok "leader: node $L"

# failed_in LO HI ERRFILE CMD...: CMD fails with ETIMEDOUT or EIO, after LO..HI ms.
failed_in() {
	local lo=$1 hi=$2 err=$3 t0 dt
	shift 3
	t0=$(now_ms)
	if "$@" 2>"$err"; then
		echo "   succeeded" >&2
		return 1
	fi
	dt=$(elapsed_since "$t0")
	echo "     $(head -c 120 "$err" | tr '\n' ' ') after $dt ms"
	grep -q -e "timed out" -e "Input/output error" "$err" || return 1
	((dt >= lo && dt <= hi))
}

round=0
for role in follower leader; do
	round=$((round + 1))
	L=$(cl_wait_leader 20 1 2 3) || { fail "no leader before round $round"; finish; }
	if [[ $role == leader ]]; then M=$L; else M=$((L % 3 + 1)); fi
	O1=$((M % 3 + 1)) O2=$(((M + 1) % 3 + 1))
	echo "# round $round: node $M ($role) cut off: nodes $O1 and $O2 frozen"
	echo "before$round" >"$T/m$M/r$round"
	echo "w-before" >"$T/m$M/w$round"
	v0=$(ver "$T/m$M/w$round")
	cl_sync "$M" >/dev/null
	ls "$T/m$M" >/dev/null
	cl_freeze "$O1" "$O2" || fail "nodes $O1 and $O2 did not stop"

	check "write(2) in the minority fails with ETIMEDOUT/EIO in 2..8 s" \
		failed_in 1500 8000 "$T/err" bash -c "echo minority >'$T/m$M/w$round'"
	check "mkdir in the minority fails the same way" \
		failed_in 1500 8000 "$T/err" mkdir "$T/m$M/d$round"
	check "sync in the minority fails the same way (quorumctl sync)" \
		failed_in 1500 8000 "$T/err" "$QFSCTL" sync "$T/m$M"
	t0=$(now_ms)
	eq "reads still work: data" "$(cat "$T/m$M/r$round")" "before$round"
	eq "reads still work: stat" "$(ver "$T/m$M/r$round")" 1
	check "reads still work: listing" grep -qx "r$round" <(ls "$T/m$M")
	check "reads are fast in the minority ($(elapsed_since "$t0") ms for three)" \
		test "$(elapsed_since "$t0")" -lt 1000
	check "status still answers" grep -q "^id=$M$" "$T/m$M/.zk/status"

	kill -CONT "${CL_PID[$O1]}" "${CL_PID[$O2]}"
	t0=$(now_ms)
	if cl_wait_same 30 1 2 3; then
		ok "healed: identical trees on the three nodes ($(elapsed_since "$t0") ms after SIGCONT)"
	else
		fail "node $M did not converge"
		show_diff "$M" "$O1"
	fi
	w=$(cat "$T/m$M/w$round"):$(ver "$T/m$M/w$round")
	case "$w" in
	"w-before:$v0" | "minority:$((v0 + 1))")
		ok "the timed-out write: applied at most once, the same everywhere ($w)" ;;
	*) fail "the timed-out write: unexpected '$w' (version before: $v0)" ;;
	esac
	eq "same on node $O1" "$(cat "$T/m$O1/w$round"):$(ver "$T/m$O1/w$round")" "$w"
	check "node $M: a directory from the failed mkdir is nowhere or everywhere" \
		test -d "$T/m$M/d$round" -a -d "$T/m$O1/d$round" -o ! -e "$T/m$M/d$round" -a ! -e "$T/m$O1/d$round"
	t0=$(now_ms)
	until echo "after$round" 2>/dev/null >"$T/m$M/a$round"; do
		(($(elapsed_since "$t0") > 20000)) && break
	done
	cl_sync "$O2" >/dev/null
	eq "node $M writes again, seen on node $O2" "$(cat "$T/m$O2/a$round" 2>&1)" "after$round"
done
finish
