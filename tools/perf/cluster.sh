#!/usr/bin/env bash
# A throwaway 3-node quorumfs cluster for measurements: tools/perf/cluster.sh start|stop BUILD DIR
# (DIR: a scratch directory of yours; mounts at DIR/mK, data at DIR/dK, ports QFS_PERF_PORT+1..3).
set -euo pipefail
cmd=$1 build=$2 dir=$3
base=${QFS_PERF_PORT:-29880}
peers="1=127.0.0.1:$((base + 1)),2=127.0.0.1:$((base + 2)),3=127.0.0.1:$((base + 3))"
case $cmd in
start)
	mkdir -p "$dir"
	[[ -f $dir/secret ]] || head -c 32 /dev/urandom | base64 >"$dir/secret"
	for k in 1 2 3; do
		mkdir -p "$dir/d$k" "$dir/m$k"
		"$build/bin/quorumfs" --id $k --peers "$peers" --secret-file "$dir/secret" \
			--data "$dir/d$k" ${QFS_PERF_OPTS:-} "$dir/m$k"
	done
	for _ in $(seq 100); do
		l=$(sed -n 's/^leader=//p' "$dir/m1/.zk/status" 2>/dev/null || true)
		[[ -n $l && $l != 0 ]] && { echo "leader=$l"; exit 0; }
		sleep 0.1
	done
	echo "no leader" >&2; exit 1 ;;
stop)
	for k in 1 2 3; do mountpoint -q "$dir/m$k" && fusermount3 -u "$dir/m$k"; done
	for k in 1 2 3; do
		for _ in $(seq 100); do flock -n "$dir/d$k/LOCK" true 2>/dev/null && break; sleep 0.1; done
	done ;;
esac
