#!/usr/bin/env bash
# Concurrent writers on all three nodes, to different nodes and to the same nodes: no write lost
# or applied twice, and every replica ends with the identical tree (paths, data, full stat).
. "$(dirname "$0")/cluster_lib.sh"
cl_init 3 "$@"
cl_start_all || exit 1
L=$(cl_wait_leader 20 1 2 3) || { fail "no leader"; finish; }
ok "leader: node $L"

N=60
mkdir "$T/m1/common" && echo 0 >"$T/m1/common/counter"
for k in 1 2 3; do
	wait_for 10 test -d "$T/m$k/common" || fail "node $k: /common not visible"
done

# writer K: its own subtree, plus the shared node /common/shared and five shared names
writer() {
	local k=$1 m=$T/m$1 i errs=0
	mkdir "$m/own$k" || errs=$((errs + 1))
	for ((i = 1; i <= N; i++)); do
		echo "n$k-$i" >"$m/own$k/n$i" || errs=$((errs + 1))
		echo "s$k-$i" >"$m/common/shared" || errs=$((errs + 1))
		echo "x$k-$i" >"$m/common/x$((i % 5))" || errs=$((errs + 1))
		if ((i % 10 == 0)); then
			mkdir "$m/own$k/d$i" || errs=$((errs + 1))
			echo inner >"$m/own$k/d$i/leaf" || errs=$((errs + 1))
			rm "$m/own$k/n$((i - 5))" || errs=$((errs + 1))
		fi
	done
	echo "$errs" >"$T/errs.$k"
}
t0=$(now_ms)
wpids=()
for k in 1 2 3; do
	writer "$k" 2>"$T/werr.$k" &
	wpids+=("$!")
done
wait "${wpids[@]}" # (not a bare wait: the daemons are children of this shell too)
dt=$(elapsed_since "$t0")
for k in 1 2 3; do
	eq "writer on node $k: no failed call" "$(cat "$T/errs.$k")" 0
	[[ -s "$T/werr.$k" ]] && head -n 3 "$T/werr.$k" >&2
done
echo "     $((3 * N * 3 + 3 * N / 10 * 3)) operations from 3 mounts in $dt ms"

if cl_wait_same 20 1 2 3; then ok "the three trees are identical (paths, data, stat)"; else
	fail "trees differ"
	show_diff 1 2
	show_diff 1 3
fi
eq "dump: nodes listed" "$(grep -c '^[df] ' "$T/dump.1")" \
	"$((1 + 1 + 1 + 1 + 5 + 3 * (1 + N - N / 10 + 2 * N / 10)))"
for k in 1 2 3; do
	eq "node $k: /common/shared written once per write ($((3 * N)) versions)" \
		"$(ver "$T/m$k/common/shared")" "$((3 * N))"
	sum=0
	for x in 0 1 2 3 4; do sum=$((sum + $(ver "$T/m$k/common/x$x"))); done
	# each name: created once (version 0) and written by every write
	eq "node $k: the five shared names hold every write" "$sum" "$((3 * N - 5 + 5))"
	eq "node $k: /common has 1 + 1 + 5 children" "$(zk "$T/m$k/common" numChildren)" 7
done
for k in 1 2 3; do
	eq "own$k: its last value on node $((k % 3 + 1))" "$(cat "$T/m$((k % 3 + 1))/own$k/n$N")" "n$k-$N"
done
finish
