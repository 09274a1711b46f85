#!/usr/bin/env bash
# A/B single-writer write latency of two builds, alternated in the same minutes (the machine is
# shared and noisy): tools/perf/ab.sh BUILD_A BUILD_B [ROUNDS] [SECONDS]
# Each round starts a fresh 3-node cluster per build (tools/perf/cluster.sh, scratch dirs under a
# mktemp -d), runs qfsload --workload write-lat through the leader's mount and through a
# follower's, and stops it. Prints one line per run and the medians per build and mount role.
set -euo pipefail
a=$1 b=$2 rounds=${3:-3} secs=${4:-4}
top=$(mktemp -d /tmp/perf-ab.XXXX)
cur=""
cleanup() { [[ -n $cur ]] && tools/perf/cluster.sh stop "$cur" "$top/c" >/dev/null 2>&1 || true; }
trap cleanup EXIT
cd "$(dirname "$0")/../.."
for r in $(seq "$rounds"); do
	for bld in "$a" "$b"; do
		rm -rf "$top/c"
		cur=$bld
		tools/perf/cluster.sh start "$bld" "$top/c" >/dev/null 2>&1
		l=$(sed -n 's/^leader=//p' "$top/c/m1/.zk/status")
		f=$((l % 3 + 1))
		for role in leader follower; do
			m=$top/c/m$l
			[[ $role == follower ]] && m=$top/c/m$f
			p50=$("$bld/bin/qfsload" --mounts "$m" --workload write-lat --seconds "$secs" \
				--warmup 1 | tr ' ' '\n' | sed -n 's/^p50_us=//p')
			echo "round=$r build=$bld role=$role p50_us=$p50" | tee -a "$top/res"
		done
		tools/perf/cluster.sh stop "$bld" "$top/c" >/dev/null 2>&1
		cur=""
	done
done
for bld in "$a" "$b"; do
	for role in leader follower; do
		grep "build=$bld role=$role " "$top/res" | sed 's/.*p50_us=//' | sort -n |
			awk -v b="$bld" -v r="$role" '{v[NR]=$1} END {printf "median build=%s role=%s p50_us=%s (n=%d)\n", b, r, v[int((NR+1)/2)], NR}'
	done
done
rm -rf "$top"
